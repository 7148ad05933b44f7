"""gssplat_ros: live semantic 3D Gaussian splatting (GSsplat) for ROS 2.

The core (Gaussians, cameras, model, renderer, keyframe window, pipeline) imports without rclpy;
the ROS shell lives in `gssplat_ros.ros`.
"""

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import Gaussians

__version__ = "0.1.0"
__all__ = ["Cameras", "Gaussians", "__version__"]
