"""world_check: plausible z-up poses pass; y-up worlds, body-frame poses and wrong floor heights are named."""

import numpy as np
from scipy.spatial.transform import Rotation

from gssplat_ros.transforms import LINK_FROM_OPTICAL
from gssplat_ros.world_check import WorldCheckConfig, check_world_convention, up_tilt_deg


def camera_pose(height_m: float, pitch_down_deg: float = 0.0, yaw_deg: float = 30.0) -> np.ndarray:
    """world_from_cam of a camera_link at `height_m`, yawed, pitched down, with REP 103 optical axes."""
    world_from_link = np.eye(4)
    # Rotation about the link's y axis by +pitch tilts x (forward) down in a z-up frame.
    world_from_link[:3, :3] = Rotation.from_euler("ZY", [yaw_deg, pitch_down_deg], degrees=True).as_matrix()
    world_from_link[:3, 3] = [1.0, 2.0, height_m]
    return world_from_link @ LINK_FROM_OPTICAL


def test_level_and_pitched_robot_cameras_pass():
    assert check_world_convention(camera_pose(0.6)) is None
    assert check_world_convention(camera_pose(1.4, pitch_down_deg=40)) is None
    assert abs(up_tilt_deg(camera_pose(1.0, pitch_down_deg=40)) - 40) < 1e-6
    assert check_world_convention(camera_pose(1.6, pitch_down_deg=10), floor_z_m=1.0) is None


def test_y_up_world_is_flagged():
    z_up_to_y_up = np.eye(4)
    z_up_to_y_up[:3, :3] = Rotation.from_euler("x", -90, degrees=True).as_matrix()  # z -> y
    reason = check_world_convention(z_up_to_y_up @ camera_pose(0.6))
    assert reason is not None and "z-up" in reason and "y-up" in reason


def test_body_frame_pose_taken_as_optical_is_flagged():
    world_from_body = np.eye(4)
    world_from_body[:3, 3] = [0.0, 0.0, 0.5]  # base_link axes read as optical: image-up is the robot's right
    assert "z-up" in check_world_convention(world_from_body)


def test_height_against_the_floor():
    reason = check_world_convention(camera_pose(0.6), floor_z_m=1.5)
    assert reason is not None and "-0.90 m above the floor" in reason and "floor_z_m" in reason
    assert "above the floor" in check_world_convention(camera_pose(12.0))
    assert check_world_convention(camera_pose(12.0), config=WorldCheckConfig(max_height_m=20.0)) is None
    assert "finite" in check_world_convention(np.full((4, 4), np.nan))
