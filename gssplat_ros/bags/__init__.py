"""rosbag2 tools without rclpy: scene -> bag, bag -> synced frames, offline pipeline -> bag (rosbags).

Usage:
    from gssplat_ros.bags.scene_bag import write_scene_bag      # gssplat bag write-scene
    from gssplat_ros.bags.frames import iter_frames              # synced Frame stream from a bag
    from gssplat_ros.bags.process import process_bag            # gssplat process
Playing a bag over DDS needs rclpy and lives in gssplat_ros/ros/bag.py.
"""
