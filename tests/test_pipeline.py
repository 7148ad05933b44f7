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


def test_floor_height_moves_the_world_for_the_encoder_and_back():
    """floor_z_m = 1 on a window lifted by 1 m gives the Gaussians of the unlifted window, lifted by 1 m
    (the shipped semantic model's height cues then see the floor at 0 in both cases)."""
    from gssplat_ros.window import Keyframe, Window

    def window(lift_m: float) -> Window:
        g = torch.Generator().manual_seed(3)
        frames = []
        for i in range(2):
            pose = torch.eye(4)
            pose[:3, :3] = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # level camera looking along +y
            pose[0, 3], pose[2, 3] = 0.1 * i, 1.4 + lift_m
            frames.append(Keyframe(i, torch.rand(3, 24, 32, generator=g),
                                   torch.tensor([[32.0, 0, 16], [0, 32.0, 12], [0, 0, 1]]), pose,
                                   torch.rand(1, 24, 32, generator=g) + 1.0))
        return Window(tuple(frames))

    cfg = dict(device="cpu", depth_mode="sensor", window_size=2, model_width=32, model_height=24)
    plain = Pipeline(PipelineConfig(**cfg)).predict(window(0.0))
    lifted = Pipeline(PipelineConfig(**cfg, floor_z_m=1.0)).predict(window(1.0))
    naive = Pipeline(PipelineConfig(**cfg)).predict(window(1.0))
    lift = torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(lifted.color.means, plain.color.means + lift, atol=1e-5)
    assert torch.allclose(lifted.semantic.means, plain.semantic.means + lift, atol=1e-5)
    assert ((lifted.color.quats - plain.color.quats).abs().amax(-1) < 1e-4).float().mean() > 0.99
    same = (lifted.semantic.features - plain.semantic.features).abs().amax(-1) < 1e-3  # [N]
    assert same.float().mean() > 0.99  # all but voxel-hash collisions, which depend on the world origin
    # without the setting, the lifted window's semantics differ (the cues see the floor 1 m too low)
    assert (naive.semantic.features - plain.semantic.features).abs().amax(-1).mean() > 10 * (
        (lifted.semantic.features - plain.semantic.features).abs().amax(-1).mean() + 1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_render_of_a_cuda_prediction_on_cuda():
    # every tensor the render path makes (camera checks, labels, depth) must live on the prediction's device
    from gssplat_ros.bench.encoder import synthetic_inputs
    from gssplat_ros.prediction import Prediction
    from gssplat_ros.render import gsplat_usable

    pipe = Pipeline(PipelineConfig(device="cuda", depth_mode="sensor", model_width=64, model_height=48,
                                   window_size=2, render_backend="gsplat" if gsplat_usable()[0] else "auto"))
    inputs = synthetic_inputs(2, 64, 48, True).to("cuda")
    pred = Prediction.from_outputs(pipe._runtime_for("sensor")(inputs))
    out = pipe.render(pred, inputs.K[0].cpu().numpy(), inputs.world_from_cam[0].cpu().numpy(), 64, 48)
    assert out.rgb.shape == (48, 64, 3) and out.labels.shape == (48, 64)
