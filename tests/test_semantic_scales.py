"""Multi-scale semantics: scale parsing, the auto rule, and the fused logits against passes run by hand."""

import json

import pytest
import torch
import torch.nn.functional as F

from gssplat_ros.bench.encoder import synthetic_inputs
from gssplat_ros.runtime import TorchRuntime, make_runtime
from gssplat_ros.runtime.semantic_scales import (
    AUTO,
    MultiScaleSemantics,
    downscale_inputs,
    parse_scales,
    reference_width,
    resolve_scales,
)
from tests.ros_harness import random_checkpoint


def test_parse_scales_accepts_auto_lists_and_strings():
    assert parse_scales("auto") == AUTO and parse_scales(" auto ") == AUTO
    assert parse_scales("1.0 0.5") == (1.0, 0.5) == parse_scales("1, 0.5") == parse_scales([1, 0.5])
    assert parse_scales("0.25") == (0.25,)


@pytest.mark.parametrize("bad", ["", "0.3", "0", "1.5", "-0.5", "half", "1 1", [], [0.75]])
def test_parse_scales_rejects_what_is_not_one_over_n(bad):
    with pytest.raises(ValueError, match="semantic_scales"):
        parse_scales(bad)


def test_auto_adds_one_pass_at_the_reference_width():
    assert resolve_scales("auto", 160, 320, 240) == (1.0, 0.5)
    assert resolve_scales("auto", 160, 640, 480) == (1.0, 0.25)
    assert resolve_scales("auto", 160, 480, 360) == (1.0, 0.5)  # 240 >= 160 > 120
    assert resolve_scales("auto", 160, 160, 120) == (1.0,)  # at the reference size itself: one pass
    assert resolve_scales("auto", 160, 304, 240) == (1.0,)  # 152 < 160
    assert resolve_scales("auto", None, 320, 240) == (1.0,)  # a checkpoint without a reference width
    assert resolve_scales("auto", 160, None, None) == (1.0,)
    assert resolve_scales("1 0.5", None, 160, 120) == (1.0, 0.5)  # explicit scales are used as given
    assert resolve_scales("auto", 160, 324, 240) == (1.0,)  # 162 is not divisible by 4: no pass at half size
    assert resolve_scales("auto", 160, 320, 244) == (1.0,)  # nor is 122


def test_fused_logits_are_the_mean_of_the_full_and_upsampled_half_pass(tmp_path):
    base = make_runtime("torch", random_checkpoint(tmp_path), "sensor", "cpu")
    inputs = synthetic_inputs(2, 64, 48, True)
    multi = MultiScaleSemantics(base, (1.0, 0.5))
    fused = multi(inputs)
    full = base(inputs)
    half = base(downscale_inputs(inputs, 2))["sem_logits"]  # [V, 24, 32, C]
    assert half.shape[1:3] == (24, 32)
    up = F.interpolate(half.permute(0, 3, 1, 2), size=(48, 64), mode="bilinear", align_corners=False)
    expect = 0.5 * (full["sem_logits"] + up.permute(0, 2, 3, 1))
    torch.testing.assert_close(fused["sem_logits"], expect, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fused["sem_logits"], full["sem_logits"], atol=1e-3)  # the half pass matters
    for name, value in full.items():  # every Gaussian but the class logits is the full-size pass's
        if name != "sem_logits":
            assert torch.equal(fused[name], value), name
    assert multi.net is base.net  # attributes fall through to the base (eval's ablations use `net`)


def test_downscaled_window_keeps_pixels_on_the_same_rays():
    inputs = synthetic_inputs(2, 64, 48, True)
    small = downscale_inputs(inputs, 2)
    assert small.images.shape == (2, 3, 24, 32) and small.depth.shape == (2, 1, 24, 32)
    # the centre of small pixel (u, v) is the centre of the 2x2 block it averages: same viewing ray
    u, v = 5, 7
    ray_small = torch.linalg.solve(small.K[0], torch.tensor([u + 0.5, v + 0.5, 1.0]))
    ray_full = torch.linalg.solve(inputs.K[0], torch.tensor([2 * u + 1.0, 2 * v + 1.0, 1.0]))
    torch.testing.assert_close(ray_small, ray_full)
    depth = inputs.depth.clone()
    depth[:, :, :2, :2] = torch.tensor([[0.0, 2.0], [4.0, 0.0]])  # invalid pixels do not drag the mean
    assert downscale_inputs(type(inputs)(inputs.images, inputs.K, inputs.world_from_cam, inputs.cam_from_world,
                                         depth), 2).depth[0, 0, 0, 0] == 3.0  # fmt: skip


def test_make_runtime_auto_reads_the_reference_width_from_the_checkpoint(tmp_path):
    stem = random_checkpoint(tmp_path)
    assert reference_width(stem) is None
    assert isinstance(make_runtime("torch", stem, "sensor", "cpu", 2, 320, 240, semantic_scales="auto"), TorchRuntime)
    meta_path = tmp_path / "random_sensor.json"
    meta = json.loads(meta_path.read_text())
    meta["extra"]["semantic_reference_width"] = 160
    meta_path.write_text(json.dumps(meta))
    assert reference_width(stem) == 160
    multi = make_runtime("torch", stem, "sensor", "cpu", 2, 320, 240, semantic_scales="auto")
    assert isinstance(multi, MultiScaleSemantics) and multi.scales == (1.0, 0.5)
    assert isinstance(make_runtime("torch", stem, "sensor", "cpu", 2, 160, 120, semantic_scales="auto"), TorchRuntime)
    with pytest.raises(ValueError, match="divisible"):  # 0.25 of 200x120 is 50x30
        make_runtime("torch", stem, "sensor", "cpu", 2, 200, 120, semantic_scales="1 0.25")


def test_the_shipped_models_name_their_reference_width():
    from gssplat_ros.weights import default_checkpoint

    assert reference_width(default_checkpoint("sensor")) == reference_width(default_checkpoint("estimated")) == 160
