"""Losses: weighted CE, group depth loss, depth-level loss, and that the offset gate learns."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from gssplat_ros.cameras import Cameras, rigid_inverse
from gssplat_ros.model import GSsplatNet, LossConfig, ModelConfig, compute_losses, group_depth_loss, render_targets
from gssplat_ros.model.geometry import pixel_rays, unproject
from gssplat_ros.model.losses import depth_level_loss, weighted_cross_entropy
from gssplat_ros.prediction import OUTPUT_NAMES, Prediction
from tests.test_model_common import make_window, net_inputs, soft_splat_ref

H, W = 16, 24


def run(net: GSsplatNet, batch: dict, cfg=None, with_depth: bool = True):
    out = net(*net_inputs(batch, with_depth))
    for name in ("color_gate_logits", "sem_gate_logits"):
        out[name].retain_grad()
    pred = Prediction.from_outputs({n: out[n] for n in OUTPUT_NAMES})
    renders = soft_splat_ref(pred, batch["target_K"], batch["target_world_from_cam"], H, W)
    total, terms = compute_losses(out, batch, renders, cfg)
    return out, total, terms


# ------------------------------------------------------------------------------------------ CE
def test_weighted_ce_matches_torch_and_handles_ignore():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 21, generator=g)
    labels = torch.randint(0, 21, (50,), generator=g)  # 20 = ignore
    cfg = LossConfig()
    weight = torch.ones(21)
    weight[:2] = 0.8
    ref = F.cross_entropy(logits, labels, weight=weight, ignore_index=20)
    assert torch.allclose(weighted_cross_entropy(logits, labels, cfg), ref, atol=1e-6)
    all_ignored = weighted_cross_entropy(logits, torch.full((50,), 20), cfg)
    assert all_ignored.item() == 0.0


def test_ce_with_fewer_classes_than_the_ignore_label():
    logits = torch.randn(6, 5)
    labels = torch.tensor([0, 4, 20, 1, 2, 20])  # 20 ignored although C = 5
    ref = F.cross_entropy(logits[labels != 20], labels[labels != 20], weight=torch.tensor([0.8, 0.8, 1, 1, 1]))
    assert torch.allclose(weighted_cross_entropy(logits, labels, LossConfig()), ref, atol=1e-6)


def test_ce_label_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="label 7 is outside 0..4"):
        weighted_cross_entropy(torch.randn(3, 5), torch.tensor([0, 7, 1]), LossConfig(), "target_labels")


def test_explicit_class_weights_replace_the_background_weighting():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 4, generator=g)
    labels = torch.randint(0, 5, (40,), generator=g)
    labels[labels == 4] = 20
    weights = (0.6, 1.0, 2.0, 1.4)
    cfg = LossConfig(class_weights=weights)
    keep = labels != 20
    ref = F.cross_entropy(logits[keep], labels[keep], weight=torch.tensor(weights))
    assert torch.allclose(weighted_cross_entropy(logits, labels, cfg), ref, atol=1e-6)
    with pytest.raises(ValueError, match="class_weights has 3 entries but the model predicts 4 classes"):
        weighted_cross_entropy(logits, labels, LossConfig(class_weights=(1.0, 1.0, 1.0)))


# ------------------------------------------------------------------------------------------ group loss
def _plane_views():
    """Two views of one consistent surface: the same pose twice, with the same depth map."""
    batch = make_window(2, H, W, targets=0)
    batch["context_world_from_cam"][1] = batch["context_world_from_cam"][0]
    batch["context_depth"][1] = batch["context_depth"][0]
    depth = batch["context_depth"][:, 0]
    means = unproject(pixel_rays(batch["context_K"], H, W), depth, batch["context_world_from_cam"])
    return batch, depth, means


def test_group_loss_is_zero_for_consistent_centres_and_positive_otherwise():
    batch, depth, means = _plane_views()
    K, cfw = batch["context_K"], rigid_inverse(batch["context_world_from_cam"])
    closed, valid = torch.zeros(2, H, W), torch.ones(2, H, W)
    assert group_depth_loss(means, closed, valid, K, cfw, depth).item() == pytest.approx(0.0, abs=1e-6)
    moved = means + 0.3 * batch["context_world_from_cam"][0, :3, 2]  # 0.3 m further along the view axis
    assert group_depth_loss(moved, closed, valid, K, cfw, depth).item() > 0.01


def test_group_loss_excludes_the_offset_group_and_reaches_the_gate():
    batch, depth, means = _plane_views()
    K, cfw = batch["context_K"], rigid_inverse(batch["context_world_from_cam"])
    valid = torch.ones(2, H, W)
    offset = torch.tensor([0.0, 0.0, 0.3])
    logits = torch.full((2, H, W), -1.0, requires_grad=True)
    soft = torch.sigmoid(logits)
    gate = (soft > 0.5).float() + (soft - soft.detach())  # straight-through, all closed
    loss = group_depth_loss(means + gate[..., None] * offset, gate, valid, K, cfw, depth)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # with every gate open nobody is in the non-offset group: the loss is zero (and finite)
    opened = torch.ones(2, H, W)
    assert group_depth_loss(means + offset, opened, valid, K, cfw, depth).item() == 0.0


# ------------------------------------------------------------------------------------------ totals
def test_compute_losses_terms_sensor_mode():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5))
    batch = make_window(2, H, W, targets=2, num_classes=5)
    batch["target_labels"][0, :2] = 20  # some ignored pixels
    _, total, terms = run(net, batch)
    keys = {"rgb_mse", "rgb", "semantic", "context_semantic", "group_color", "group_semantic", "group", "depth",
            "gate_prior", "total"}  # fmt: skip
    assert set(terms) == keys
    assert all(torch.isfinite(v) for v in terms.values())
    assert terms["depth"].item() == 0.0 and terms["rgb"].item() == pytest.approx(10 * terms["rgb_mse"].item())
    parts = terms["rgb"] + terms["semantic"] + terms["context_semantic"] + terms["group"]
    assert torch.allclose(total.detach(), parts, atol=1e-5)


def test_gate_logits_receive_gradient_from_the_total_loss():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5))
    batch = make_window(2, H, W, targets=2, num_classes=5)
    out, total, _ = run(net, batch)
    total.backward()
    for name in ("color_gate_logits", "sem_gate_logits"):
        grad = out[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # and the gate channel of each head's last conv has a gradient to learn from
    for head in (net.color_head, net.semantic_head):
        assert head.conv2.weight.grad[0].abs().sum() > 0 and head.conv2.bias.grad[0] != 0


def test_gate_learns_from_rendering_alone():
    """Without the group loss the gate still gets gradient, through the rendered offsets."""
    torch.manual_seed(1)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5))
    batch = make_window(2, H, W, targets=1, num_classes=5)
    out, total, _ = run(net, batch, LossConfig(group_weight=0.0))
    total.backward()
    assert out["color_gate_logits"].grad.abs().sum() > 0


def test_soft_gate_and_gate_prior():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5, gate="soft"))
    batch = make_window(2, H, W, targets=1, num_classes=5)
    out, total, terms = run(net, batch, LossConfig(gate_prior_weight=0.1))
    total.backward()
    assert terms["gate_prior"] > 0 and out["sem_gate_logits"].grad.abs().sum() > 0
    assert ((out["sem_gate"] > 0) & (out["sem_gate"] < 1)).all()


def test_estimated_mode_adds_the_depth_loss_and_trains_the_cost_volume():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5, depth_mode="estimated"))
    batch = make_window(2, H, W, targets=1, num_classes=5)
    _, total, terms = run(net, batch, with_depth=False)
    assert terms["depth"] > 0
    total.backward()
    assert net.depth_net.regularize[0].out.weight.grad.abs().sum() > 0


def test_depth_level_loss_uses_valid_pixels_only():
    gt = torch.full((2, 1, 16, 24), 2.0)
    gt[:, :, :8] = 0.0  # top half invalid
    levels = [torch.full((2, 1, 4, 6), 2.0), torch.full((2, 1, 8, 12), 2.0), torch.full((2, 1, 16, 24), 2.0)]
    levels[2][:, :, :8] = 100.0  # wrong only where there is no ground truth
    assert depth_level_loss(levels, gt, LossConfig()).item() == pytest.approx(0.0, abs=1e-6)
    levels[0] = levels[0] + 1.0
    assert depth_level_loss(levels, gt, LossConfig()).item() > 0.1


def test_depth_loss_beta_sets_the_quadratic_zone():
    """A 0.1 m error: smooth-L1 with the released beta (1 m) gives 0.5 * 0.1^2; beta 0.01 m is almost L1."""
    gt = torch.full((1, 1, 8, 8), 2.0)
    levels = [torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 8, 8), 2.1)]
    weights = (0.0, 0.0, 1.0)
    released = depth_level_loss(levels, gt, LossConfig(depth_level_weights=weights)).item()
    near_l1 = depth_level_loss(levels, gt, LossConfig(depth_level_weights=weights, depth_loss_beta_m=0.01)).item()
    assert released == pytest.approx(0.5 * 0.1**2, rel=1e-3)
    assert near_l1 == pytest.approx(0.1 - 0.005, rel=1e-3)


@pytest.mark.skipif(
    importlib.util.find_spec("numba") is None or importlib.util.find_spec("gssplat_ros.render.cpu") is None,
    reason="the CPU rasteriser (numba) is not available",
)
def test_render_targets_with_the_cpu_backend():
    from gssplat_ros.render import RenderSettings

    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5))
    batch = make_window(2, H, W, targets=2, num_classes=5)
    out = net(*net_inputs(batch))
    pred = Prediction.from_outputs({n: out[n] for n in OUTPUT_NAMES})
    cams = Cameras(batch["target_K"], batch["target_world_from_cam"], W, H)
    renders = render_targets(pred, cams, RenderSettings(backend="cpu"))
    assert renders.rgb.shape == (2, H, W, 3) and renders.logits.shape == (2, H, W, 5)
    total, _ = compute_losses(out, batch, renders)
    total.backward()
    assert out["color_means"].grad is None  # non-leaf; the check is that backward ran through the renderer
    assert net.color_head.conv2.weight.grad.abs().sum() > 0


def test_lovasz_softmax_is_zero_when_right_one_when_wrong_and_trains():
    from gssplat_ros.model.losses import lovasz_softmax

    torch.manual_seed(0)
    labels = torch.randint(0, 4, (400,))
    labels[:25] = 20  # ignored
    right = 50.0 * torch.nn.functional.one_hot(labels.clamp(max=3), 4).float()
    assert float(lovasz_softmax(right, labels, 20)) < 1e-6
    assert abs(float(lovasz_softmax(right.roll(1, dims=1), labels, 20)) - 1.0) < 1e-6  # every IoU is 0
    logits = torch.zeros(400, 4, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.5)
    first = None
    for _ in range(50):
        loss = lovasz_softmax(logits, labels, 20)
        first = float(loss) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(lovasz_softmax(logits, labels, 20)) < 0.5 * first
    kept = labels != 20
    assert (logits.argmax(1)[kept] == labels[kept]).float().mean() > 0.9
    assert float(lovasz_softmax(logits, torch.full((400,), 20), 20)) == 0.0  # nothing labelled
