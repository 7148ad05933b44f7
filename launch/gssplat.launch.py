"""Launch gssplat_node: `ros2 launch gssplat_ros gssplat.launch.py image_topic:=/camera/color/image_raw`.

Arguments: params_file, namespace, use_sim_time, autostart and the input topic remaps. Works on Humble and Jazzy.
gssplat_node is a lifecycle node: with autostart:=true (the default, as yolo_ros and Nav2 do) it configures and
activates itself; with autostart:=false it waits unconfigured for a lifecycle manager or
`ros2 lifecycle set /gssplat configure` then `activate`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("gssplat_ros"), "config", "gssplat.yaml")
    args = [
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameter YAML"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate at start; false: managed (ros2 lifecycle set)"),
        DeclareLaunchArgument("image_topic", default_value="image", description="colour image input"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info", description="camera_info input"),
        DeclareLaunchArgument("pose_topic", default_value="pose", description="PoseStamped of the optical frame"),
        DeclareLaunchArgument("odom_topic", default_value="odom", description="Odometry (pose_source:=odom)"),
        DeclareLaunchArgument("depth_topic", default_value="depth", description="depth input (32FC1 or 16UC1)"),
    ]
    node = LifecycleNode(
        package="gssplat_ros",
        executable="gssplat_node",
        name="gssplat",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
             "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)},
        ],
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
            ("pose", LaunchConfiguration("pose_topic")),
            ("odom", LaunchConfiguration("odom_topic")),
            ("depth", LaunchConfiguration("depth_topic")),
        ],
    )
    return LaunchDescription(args + [node])
