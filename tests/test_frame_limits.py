"""Frame validity in the ROS-free core (window.py): depth that is NaN, zero, absurd or too sparse, and poses
outside the world box, are FrameErrors with a diagnostics reason, for the node and `gssplat process` alike."""

import numpy as np
import pytest

from gssplat_ros.pipeline import Pipeline, PipelineConfig
from gssplat_ros.window import Frame, FrameError, FrameLimits, KeyframeWindow, resize_frame, validate_frame

H, W = 24, 32


def frame(depth=None, x=0.0):
    pose = np.eye(4)
    pose[0, 3] = x
    K = np.array([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    return Frame(1, np.zeros((H, W, 3), np.uint8), K, pose, depth)


@pytest.mark.parametrize("value", [np.nan, 0.0, 1e30, -1.0, np.inf, 0.01])
def test_depth_with_no_valid_pixels_is_dropped(value):
    with pytest.raises(FrameError) as err:
        validate_frame(frame(np.full((H, W), value, np.float32)), FrameLimits())
    assert err.value.reason == "depth_invalid"


def test_sparse_depth_below_the_fraction_is_dropped_and_enough_passes():
    d = np.full((H, W), np.nan, np.float32)
    d.flat[: int(0.04 * d.size)] = 2.0  # 4 % valid
    with pytest.raises(FrameError, match="valid"):
        validate_frame(frame(d), FrameLimits(min_valid_depth_fraction=0.05))
    d.flat[: int(0.5 * d.size)] = 2.0
    validate_frame(frame(d), FrameLimits(min_valid_depth_fraction=0.05))


def test_out_of_range_depth_becomes_invalid_in_the_keyframe():
    d = np.full((H, W), 2.0, np.float32)
    d[0, 0], d[0, 1] = 1e30, 0.01
    kf = resize_frame(frame(d), W, H, FrameLimits())
    assert kf.depth[0, 0, 0] == 0 and kf.depth[0, 0, 1] == 0 and kf.depth[0, 5, 5] == 2.0


@pytest.mark.parametrize("x", [1e30, -2e5])
def test_pose_outside_the_world_box_is_dropped(x):
    with pytest.raises(FrameError, match="world box") as err:
        KeyframeWindow(size=2, width=W, height=H).offer(frame(x=x))
    assert err.value.reason == "bad_pose"


def test_estimated_depth_mode_ignores_bad_depth(monkeypatch):
    import gssplat_ros.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "make_runtime", lambda *a, **k: object())  # no model needed here
    pipe = Pipeline(PipelineConfig(depth_mode="estimated", model_width=W, model_height=H, render_backend="cpu"))
    assert pipe.add_frame(frame(np.full((H, W), np.nan, np.float32)))
    pipe = Pipeline(PipelineConfig(depth_mode="sensor", model_width=W, model_height=H, render_backend="cpu"))
    with pytest.raises(FrameError, match="valid"):
        pipe.add_frame(frame(np.full((H, W), np.nan, np.float32)))
