"""Test markers, declared once here, and which test files carry them.

    make test        # everything but `long` (CI)
    make test-fast   # -m "not slow and not long": the edit loop (no export, quantisation or long ROS runs)
    make test-long   # -m long

slow: ONNX export, int8 quantisation, onnxruntime sessions, long ROS runs (each file below, or a test's own
      @pytest.mark.slow). ros: talks over real DDS (rclpy). gpu: needs CUDA (skips without it).
long: minutes-long runs, deselected by `make test`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

MARKERS = {
    "slow": "exports, quantises or runs long ROS graphs; left out of `make test-fast`",
    "ros": "uses real rclpy over DDS (tests/ros_harness.py)",
    "gpu": "needs a CUDA GPU (skips without one)",
    "long": "minutes-long; deselected by `make test` (run with `make test-long`)",
}

# file name -> markers for every test in it
FILE_MARKERS = {
    "test_export.py": ("slow",),
    "test_quantize.py": ("slow",),
    "test_runtime_onnx.py": ("slow",),
    "test_trt_ops.py": ("slow",),
    "test_depth_reference.py": ("slow",),
    "test_host_refine.py": ("slow",),
    "test_runtime_tensorrt.py": ("slow", "gpu"),
    "test_render_gsplat.py": ("gpu",),
    "test_ros_node.py": ("ros", "slow"),
    "test_ros_load.py": ("ros", "slow"),
    "test_ros_process.py": ("ros", "slow"),
    "test_runtime_node.py": ("ros", "slow"),
    "test_bag_play.py": ("ros", "slow"),
    "test_launch.py": ("ros",),
    "test_ros_lifecycle.py": ("ros", "slow"),
    "test_ros_faults.py": ("ros", "slow"),
    "test_ros_inputs.py": ("ros", "slow"),
    "test_ros_params.py": ("ros", "slow"),
    "test_robot_inputs_dds.py": ("ros", "slow"),
    "test_bag_integrity.py": ("slow",),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in FILE_MARKERS.get(Path(str(item.fspath)).name, ()):
            item.add_marker(getattr(pytest.mark, name))
