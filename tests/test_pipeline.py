"""The ROS-free Pipeline: warm-up and the optional semantic pass, with the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from gssplat_ros.pipeline import UNLABELED, Pipeline, PipelineConfig  # noqa: E402


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(PipelineConfig(device="cpu", depth_mode="auto", window_size=2, model_width=32, model_height=24))


def test_warm_up_runs_every_loaded_runtime(pipe):
    assert set(pipe._runtimes) == {"sensor", "estimated"}
    assert pipe.warm_up() > 0


def test_semantic_pass_can_be_skipped_without_changing_rgb_or_depth(pipe):
    from gssplat_ros.cameras import Cameras
    from gssplat_ros.prediction import EncoderInputs, Prediction

    K = torch.tensor([[32.0, 0, 16], [0, 32.0, 12], [0, 0, 1]]).expand(2, 3, 3).contiguous()
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[1, 0, 3] = 0.1
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 24, 32, generator=g)
    depth = torch.full((2, 1, 24, 32), 1.5)
    inputs = EncoderInputs.from_cameras(images, Cameras(K, poses, 32, 24), depth)
    with torch.inference_mode():
        pred = Prediction.from_outputs(pipe._runtimes["sensor"](inputs))
    full = pipe.render(pred, K[0].numpy(), poses[0].numpy(), 32, 24)
    rgb_only = pipe.render(pred, K[0].numpy(), poses[0].numpy(), 32, 24, semantic=False)
    np.testing.assert_array_equal(full.rgb, rgb_only.rgb)
    np.testing.assert_array_equal(full.depth, rgb_only.depth)
    assert (rgb_only.labels == UNLABELED).all() and (full.labels != UNLABELED).any()
    assert "render_semantic" in full.timings_ms and "render_semantic" not in rgb_only.timings_ms
