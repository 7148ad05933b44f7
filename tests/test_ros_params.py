"""Parameters at run time over real DDS: dynamic ones apply on set, read-only ones are refused."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402

from tests.ros_harness import Harness, random_checkpoint  # noqa: E402

W, H = 64, 48


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _set(h: Harness, client: AsyncParameterClient, *params: Parameter):
    future = client.set_parameters(list(params))
    assert h.wait_for(future.done, 10), "set_parameters did not answer"
    return future.result().results


def test_dynamic_parameters_apply_and_read_only_ones_are_refused(ckpt):
    h = Harness({"checkpoint": ckpt, "device": "cpu", "depth_mode": "sensor", "window_size": 2,
                 "model_width": W, "model_height": H})
    try:
        client = AsyncParameterClient(h.peer, f"{h.ns}/gssplat")
        assert h.wait_for(lambda: client.services_are_ready(), 10)
        ok, = _set(h, client, Parameter("keyframe_translation_m", value=0.5))
        assert ok.successful, ok.reason
        assert h.node.cfg.pipeline.keyframe_translation_m == 0.5
        assert h.node.pipeline.window.min_translation_m == 0.5  # the running window uses it
        ok, = _set(h, client, Parameter("cloud_min_opacity", value=0.3))
        assert ok.successful and h.node.pipeline.cfg.min_opacity == 0.3

        refused, = _set(h, client, Parameter("world_frame", value="odom"))
        assert not refused.successful and h.node.cfg.world_frame == "map"
        refused, = _set(h, client, Parameter("keyframe_rotation_deg", value=500.0))  # out of range
        assert not refused.successful and h.node.cfg.pipeline.keyframe_rotation_deg == 5.0
    finally:
        h.close()
