"""maint.compose: a sensor model's network on an estimated model's depth, as one checkpoint."""

import pytest
import torch

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.checkpoint import load_model, save_checkpoint
from maint.compose import compose, main
from tests.test_model_common import make_window, net_inputs


def _save(tmp_path, name, **overrides):
    torch.manual_seed(len(name))
    cfg = ModelConfig.preset("tiny", **overrides)
    return str(save_checkpoint(tmp_path / name, GSsplatNet(cfg).eval(), cfg, {"note": name}))


@pytest.mark.parametrize("reference_width", [0, 32])  # the cascade at the input size, or at half of it
def test_composed_model_is_the_sensor_network_on_the_estimated_depth(tmp_path, reference_width):
    sensor = _save(tmp_path, "sensor", semantic_geometry=True)
    estimated = _save(tmp_path, "estimated", depth_mode="estimated", photometric_cost=True, semantic_geometry=True,
                      depth_reference_width=reference_width, depth_refine_planes=9)
    compose(sensor, estimated, str(tmp_path / "both"))
    both, cfg = load_model(tmp_path / "both")  # strict load: every weight is there, none extra
    assert cfg.depth_mode == "estimated" and cfg.depth_encoder and cfg.depth_refine_planes == 9
    sensor_net, _ = load_model(sensor)
    estimated_net, _ = load_model(estimated)
    images, K, wfc, cfw, _ = net_inputs(make_window(num_views=3, height=48, width=64), with_depth=False)
    with torch.no_grad():
        got = both(images, K, wfc, cfw)
        depth = estimated_net(images, K, wfc, cfw)["depth"]  # [V, H, W]
        expect = sensor_net(images, K, wfc, cfw, depth[:, None])
    torch.testing.assert_close(got["depth"], depth)  # the estimated model's depth, refinement included
    for name in ("color_means", "color_sh", "sem_logits", "sem_scales", "sem_opacities"):
        torch.testing.assert_close(got[name], expect[name], msg=name)  # the sensor network on that depth


def test_sources_that_do_not_fit_together_are_clear_errors(tmp_path, capsys):
    sensor = _save(tmp_path, "sensor")
    estimated = _save(tmp_path, "estimated", depth_mode="estimated")
    other_classes = _save(tmp_path, "other", depth_mode="estimated", num_classes=5, class_names=())
    with pytest.raises(CheckpointError, match="num_classes"):
        compose(sensor, other_classes, str(tmp_path / "x"))
    with pytest.raises(CheckpointError, match="sensor-depth and an estimated-depth"):
        compose(estimated, sensor, str(tmp_path / "x"))
    assert main([sensor, str(tmp_path / "missing"), str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.startswith("compose: error:")
    assert not (tmp_path / "x.json").exists()


def test_init_from_a_composed_model_needs_a_depth_encoder(tmp_path):
    from gssplat_ros.train import init_from_checkpoint

    sensor = _save(tmp_path, "sensor")
    estimated = _save(tmp_path, "estimated", depth_mode="estimated")
    compose(sensor, estimated, str(tmp_path / "both"))
    plain = GSsplatNet(ModelConfig.preset("tiny", depth_mode="estimated"))
    with pytest.raises(ValueError, match="composed model"):
        init_from_checkpoint(plain, tmp_path / "both")
    composed = GSsplatNet(ModelConfig.preset("tiny", depth_mode="estimated", depth_encoder=True))
    assert init_from_checkpoint(composed, tmp_path / "both") == len(composed.state_dict())
