"""`colour_gaussians: observed`: the colour set keeps what the cameras saw, by construction."""

from __future__ import annotations

import pytest
import torch

from gssplat_ros.cameras import Cameras, rigid_inverse
from gssplat_ros.gaussians import Gaussians, rgb_to_sh_dc
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.prediction import Prediction
from gssplat_ros.render import NORMALIZE_MIN_ALPHA, RenderSettings, colour_settings, render

V, H, W = 3, 24, 32
FOCAL, DEPTH_M, STEP_M = 40.0, 2.0, 0.1  # each camera 0.1 m to the right: 2 px at 2 m


def plane_window(texture: torch.Tensor):
    """V cameras in a row looking at a fronto-parallel plane at 2 m whose colours are `texture` [3, H, W + 2V]:
    view v sees columns 2v .. 2v + W, so the views agree wherever they overlap."""
    images = torch.stack([texture[:, :, 2 * v:2 * v + W] for v in range(V)])  # [V, 3, H, W]
    K = torch.tensor([[FOCAL, 0.0, W / 2], [0.0, FOCAL, H / 2], [0.0, 0.0, 1.0]]).expand(V, 3, 3).contiguous()
    world_from_cam = torch.eye(4).repeat(V, 1, 1)
    world_from_cam[:, 0, 3] = torch.arange(V, dtype=torch.float32) * STEP_M
    depth = torch.full((V, 1, H, W), DEPTH_M)
    return images, K, world_from_cam, depth


def predict(cfg: ModelConfig, images, K, world_from_cam, depth) -> Prediction:
    torch.manual_seed(0)
    net = GSsplatNet(cfg).eval()
    with torch.no_grad():
        out = net(images, K, world_from_cam, rigid_inverse(world_from_cam), depth)
    return Prediction.from_outputs(out, cfg.colour_gaussians)


def render_colour(pred: Prediction, K, world_from_cam) -> torch.Tensor:
    cams = Cameras(K, world_from_cam, W, H)
    return render(pred.color, cams, colour_settings(RenderSettings(backend="cpu"), pred.observed_colour)).rgb


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def observed_config(**overrides) -> ModelConfig:
    return ModelConfig.preset("tiny", colour_gaussians="observed", **overrides)


def test_context_views_render_back_to_what_the_cameras_saw():
    texture = torch.rand(3, H, W + 2 * V, generator=torch.Generator().manual_seed(1))  # changes every pixel
    window = plane_window(texture)
    images, K, world_from_cam, _ = window
    observed = render_colour(predict(observed_config(), *window), K, world_from_cam)
    learned = render_colour(predict(ModelConfig.preset("tiny"), *window), K, world_from_cam)
    truth = images.permute(0, 2, 3, 1)
    for v in range(V):
        assert psnr_db(observed[v], truth[v]) > 60.0
    assert psnr_db(learned, truth) < 30.0  # a pixel-wide learned footprint blurs this texture


def test_colour_statistics_do_not_matter():
    """Permuted channels, another white balance, an inverted palette: the re-render follows exactly."""
    texture = torch.rand(3, H, W + 2 * V, generator=torch.Generator().manual_seed(2))
    variants = {"permuted": texture[[2, 0, 1]], "white-balance": (texture * torch.tensor([1.3, 1.0, 0.65])[:, None, None]
                                                                  ).clamp(0, 1), "palette": 1.0 - texture}
    for name, varied in variants.items():
        images, K, world_from_cam, depth = plane_window(varied)
        rendered = render_colour(predict(observed_config(), images, K, world_from_cam, depth), K, world_from_cam)
        assert psnr_db(rendered, images.permute(0, 2, 3, 1)) > 60.0, name


def test_a_view_between_the_cameras_is_covered_and_interpolated():
    """Half a pixel off every context pixel: normalised sub-pixel footprints still cover every pixel, and a
    linear ramp comes back within a quarter of one column's step of linear (alpha compositing weighs the
    first-blended of two equidistant neighbours a little more, so it is not their exact mean)."""
    ramp = (torch.arange(W + 2 * V, dtype=torch.float32) / (W + 2 * V))[None, None].expand(3, H, -1).contiguous()
    window = plane_window(ramp)
    pred = predict(observed_config(), *window)
    K, world_from_cam = window[1][:1], window[2][:1].clone()
    world_from_cam[0, 0, 3] = 0.5 * STEP_M / 2  # 0.5 px to the right of view 0
    cams = Cameras(K, world_from_cam, W, H)
    out = render(pred.color, cams, colour_settings(RenderSettings(backend="cpu"), True))
    inner = (slice(2, H - 2), slice(2, W - 2))
    assert bool((out.alpha[0][inner] >= NORMALIZE_MIN_ALPHA).all())
    u = torch.arange(W, dtype=torch.float32) + 0.5  # view 0's texture column at pixel u is u - 0.5 + 0.5 px
    expected = ((u - 0.5 + 0.5) / (W + 2 * V))[None, :, None].expand(H, W, 3)
    assert torch.allclose(out.rgb[0][inner], expected[inner], atol=0.25 / (W + 2 * V))


def test_normalised_render_keeps_the_background_where_nothing_landed():
    half_px = 0.5 * DEPTH_M / FOCAL  # on the centre of pixel (W / 2, H / 2)
    g = Gaussians(means=torch.tensor([[half_px, half_px, DEPTH_M]]), quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                  scales=torch.full((1, 3), 0.2 * DEPTH_M / FOCAL), opacities=torch.tensor([0.5]),
                  sh=rgb_to_sh_dc(torch.tensor([[[0.2, 0.6, 0.9]]])))
    cams = Cameras(torch.tensor([[[FOCAL, 0.0, W / 2], [0.0, FOCAL, H / 2], [0.0, 0.0, 1.0]]]), torch.eye(4)[None], W, H)
    settings = RenderSettings(backend="cpu", background=(1.0, 0.0, 0.0))
    out = render(g, cams, colour_settings(settings, True))
    centre = out.rgb[0, H // 2, W // 2]
    assert torch.allclose(centre, torch.tensor([0.2, 0.6, 0.9]), atol=1e-4)  # alpha 0.5, colour kept whole
    assert torch.allclose(out.rgb[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    plain = render(g, cams, settings)
    assert not torch.allclose(plain.rgb[0, H // 2, W // 2], torch.tensor([0.2, 0.6, 0.9]), atol=1e-2)


def test_observed_settings_are_checked_and_old_configs_stay_learned():
    with pytest.raises(ValueError, match="colour_gaussians"):
        ModelConfig.preset("tiny", colour_gaussians="painted")
    with pytest.raises(ValueError, match="observed_opacity"):
        ModelConfig.preset("tiny", colour_gaussians="observed", observed_opacity=0.0)
    old = ModelConfig.preset("tiny").to_dict()
    for key in ("colour_gaussians", "observed_footprint_px", "observed_opacity"):
        old.pop(key)
    assert ModelConfig.from_dict(old).colour_gaussians == "learned"
    assert colour_settings(RenderSettings(), False) == RenderSettings()


def test_cracks_are_filled_from_their_neighbours():
    """A pixel no footprint reached (a depth-sensor hole) takes the mean of its covered 3x3 neighbours."""
    images, K, world_from_cam, depth = plane_window(torch.rand(3, H, W + 2 * V, generator=torch.Generator().manual_seed(3)))
    depth[:, 0, 10, 12 - 2 * torch.arange(V)] = 0.0  # the same surface point: a hole in every view
    pred = predict(observed_config(), images, K, world_from_cam, depth)
    cams = Cameras(K[:1], world_from_cam[:1], W, H)
    out = render(pred.color, cams, colour_settings(RenderSettings(backend="cpu"), True))
    assert float(out.alpha[0, 10, 12]) < NORMALIZE_MIN_ALPHA  # nothing landed there ...
    neighbours = images[0, :, 9:12, 11:14].reshape(3, 9)
    expected = (neighbours.sum(1) - images[0, :, 10, 12]) / 8
    assert torch.allclose(out.rgb[0, 10, 12], expected, atol=1e-3)  # ... and it is filled
    unfilled = render(pred.color, cams, RenderSettings(backend="cpu", eps2d=0.0, normalize_rgb=True))
    assert torch.allclose(unfilled.rgb[0, 10, 12], torch.zeros(3))


def test_ship_switches_a_checkpoint_to_the_observed_colour_set(tmp_path):
    from gssplat_ros.model.checkpoint import load_model, save_checkpoint
    from maint.ship import main as ship_main

    cfg = ModelConfig.preset("tiny", num_classes=5)
    net = GSsplatNet(cfg)
    save_checkpoint(str(tmp_path / "learned"), net, cfg, {})
    assert ship_main([str(tmp_path / "learned"), str(tmp_path / "observed"), "--colour-gaussians", "observed",
                      "--observed-footprint-px", "0.5", "--observed-opacity", "0.3"]) == 0
    shipped, shipped_cfg = load_model(str(tmp_path / "observed"))
    assert (shipped_cfg.colour_gaussians, shipped_cfg.observed_footprint_px, shipped_cfg.observed_opacity) == (
        "observed", 0.5, 0.3)
    for name, tensor in net.state_dict().items():  # no weight changes
        assert torch.equal(tensor, shipped.state_dict()[name]), name
