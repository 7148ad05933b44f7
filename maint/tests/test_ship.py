"""maint/ship.py: the copy step that puts a trained checkpoint where shipped weights live."""

from __future__ import annotations

import torch

from gssplat_ros.model import GSsplatNet, ModelConfig
from tests.test_model_common import make_window, net_inputs


def build(seed: int = 0, **overrides) -> GSsplatNet:
    torch.manual_seed(seed)
    return GSsplatNet(ModelConfig.preset("tiny", **overrides)).eval()


def test_closing_gates_of_an_open_network_puts_centres_on_the_depth(tmp_path):
    from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
    from maint.ship import ship

    net = build(gate_bias_init=50.0)  # every gate open: centres move off the unprojected depth
    batch = make_window(2, 32, 48, targets=0)
    images, K, wfc, cfw, depth = net_inputs(batch)
    with torch.no_grad():
        before = net(images, K, wfc, cfw, depth)
    assert not torch.allclose(before["sem_means"], before["means0"], atol=1e-6)
    save_checkpoint(tmp_path / "open", net)
    ship(str(tmp_path / "open"), str(tmp_path / "shipped"), close_gates=True, note="test")
    closed, _ = load_model(tmp_path / "shipped")
    with torch.no_grad():
        after = closed(images, K, wfc, cfw, depth)
    for prefix in ("color", "sem"):
        assert torch.equal(after[f"{prefix}_gate"], torch.zeros_like(after[f"{prefix}_gate"]))
        assert torch.allclose(after[f"{prefix}_means"], after["means0"], atol=1e-6)
    assert torch.equal(after["sem_logits"], before["sem_logits"])  # nothing but the gates changed
    assert read_checkpoint_meta(tmp_path / "shipped")["extra"]["offset_gates_closed"] is True
