"""Multi-scale semantics: scale parsing, the auto rule, and the fused logits against passes run by hand."""

import json

import pytest
import torch
import torch.nn.functional as F

from gssplat_ros.bench.encoder import synthetic_inputs
from gssplat_ros.runtime import TorchRuntime
from gssplat_ros.runtime.semantic_scales import (
    AUTO,
    MultiScaleSemantics,
    downscale_inputs,
    parse_scales,
    reference_width,
    resolve_scales,
)
from gssplat_ros.runtime_factory import make_runtime
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


def test_training_loss_fits_the_logits_that_inference_fuses(tmp_path):
    """semantic_reference_width in the semantic2d stage: the loss is the CE of exactly the fused logits that
    MultiScaleSemantics renders, gradients reach the weights through the half-size pass too, and a window
    narrower than twice the reference width keeps the single-scale loss."""
    from gssplat_ros.model.losses import LossConfig, weighted_cross_entropy
    from gssplat_ros.train import SemanticOnly, semantic_2d_loss

    base = make_runtime("torch", random_checkpoint(tmp_path), "sensor", "cpu")
    net = base.net
    inputs = synthetic_inputs(2, 64, 48, True)
    labels = torch.randint(0, net.cfg.num_classes, (2, 48, 64))
    batch = {"context_images": inputs.images, "context_K": inputs.K, "context_world_from_cam": inputs.world_from_cam,
             "context_depth": inputs.depth, "context_labels": labels}
    loss_cfg = LossConfig()
    fused = MultiScaleSemantics(base, (1.0, 0.5))(inputs)["sem_logits"]  # [V, H, W, C]
    context_logits, _ = net.semantic_logits(inputs.images, inputs.K, inputs.world_from_cam, inputs.cam_from_world,
                                            inputs.depth)
    ce_2d = weighted_cross_entropy(context_logits.permute(0, 2, 3, 1).reshape(-1, net.cfg.num_classes), labels,
                                   loss_cfg, "labels")
    ce_fused = weighted_cross_entropy(fused.reshape(-1, net.cfg.num_classes), labels, loss_cfg, "labels")

    model = SemanticOnly(net)
    total, terms = semantic_2d_loss(model, batch, net.cfg, loss_cfg, semantic_reference_width=32)  # 64 = 2 x 32
    torch.testing.assert_close(terms["semantic"], ce_fused.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total.detach(), (ce_2d + ce_fused).detach(), rtol=1e-5, atol=1e-6)
    single, single_terms = semantic_2d_loss(model, batch, net.cfg, loss_cfg, semantic_reference_width=64)
    plain, plain_terms = semantic_2d_loss(model, batch, net.cfg, loss_cfg)
    torch.testing.assert_close(single_terms["semantic"], plain_terms["semantic"])  # 64 < 2 x 64: one scale
    full = base(inputs)["sem_logits"]  # [V, H, W, C]
    ce_full = weighted_cross_entropy(full.reshape(-1, net.cfg.num_classes), labels, loss_cfg, "labels")
    torch.testing.assert_close(single_terms["semantic"], ce_full.detach(), rtol=1e-5, atol=1e-6)

    # the half pass is differentiated: the semantic head's gradient is not the full pass's alone
    def head_grads(loss):
        net.zero_grad()
        loss.backward()
        return [p.grad.clone() for n, p in net.named_parameters() if n.startswith("semantic_head")]

    fused_grads, plain_grads = head_grads(total), head_grads(plain)
    assert fused_grads and all(torch.isfinite(g).all() for g in fused_grads)
    assert any(not torch.allclose(a, b) for a, b in zip(fused_grads, plain_grads))


def test_lovasz_term_is_taken_per_image_on_the_fused_logits(tmp_path):
    from dataclasses import replace

    from gssplat_ros.model.losses import LossConfig, lovasz_softmax
    from gssplat_ros.train import SemanticOnly, semantic_2d_loss

    base = make_runtime("torch", random_checkpoint(tmp_path), "sensor", "cpu")
    net = base.net
    inputs = synthetic_inputs(2, 64, 48, True)
    labels = torch.randint(0, net.cfg.num_classes, (2, 48, 64))
    batch = {"context_images": inputs.images, "context_K": inputs.K, "context_world_from_cam": inputs.world_from_cam,
             "context_depth": inputs.depth, "context_labels": labels}
    model = SemanticOnly(net)
    plain, plain_terms = semantic_2d_loss(model, batch, net.cfg, LossConfig(), semantic_reference_width=32)
    total, terms = semantic_2d_loss(model, batch, net.cfg, replace(LossConfig(), lovasz_weight=0.5), 32)
    fused = MultiScaleSemantics(base, (1.0, 0.5))(inputs)["sem_logits"]  # [V, H, W, C]
    expect = torch.stack([lovasz_softmax(fused[v].reshape(-1, net.cfg.num_classes), labels[v], 20) for v in range(2)])
    torch.testing.assert_close(terms["lovasz"], expect.mean().detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total.detach(), (plain + 0.5 * expect.mean()).detach(), rtol=1e-5, atol=1e-6)
    assert "lovasz" not in plain_terms
