"""Checkpoint IO: safetensors + JSON round trip, config mismatches as one-line CheckpointErrors."""

from __future__ import annotations

import json

import pytest
import torch

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model import GSsplatNet, ModelConfig, load_model, load_weights, save_checkpoint
from tests.test_model_common import make_window, net_inputs


def _net(**overrides) -> GSsplatNet:
    torch.manual_seed(0)
    return GSsplatNet(ModelConfig.preset("tiny", **overrides)).eval()


def test_round_trip_same_outputs(tmp_path):
    net = _net(num_classes=7, depth_mode="estimated")
    stem = save_checkpoint(tmp_path / "ckpt" / "tiny_est.safetensors", net, extra={"step": 12})
    assert stem.with_suffix(".safetensors").exists() and stem.with_suffix(".json").exists()
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["extra"] == {"step": 12} and meta["config"]["num_classes"] == 7
    loaded, cfg = load_model(stem.with_suffix(".json"))
    assert cfg == net.cfg and not loaded.training
    args = net_inputs(make_window(2, 32, 48, targets=0), with_depth=False)
    with torch.no_grad():
        a, b = net(*args), loaded(*args)
    assert torch.equal(a["sem_logits"], b["sem_logits"]) and torch.equal(a["depth"], b["depth"])


def test_tiny_checkpoint_is_small(tmp_path):
    stem = save_checkpoint(tmp_path / "t", _net(depth_mode="estimated"))
    assert stem.with_suffix(".safetensors").stat().st_size < 10e6


def test_class_count_mismatch_names_both_counts(tmp_path):
    stem = save_checkpoint(tmp_path / "c20", _net(num_classes=20))
    with pytest.raises(CheckpointError, match="has 20 classes, config asks for 13"):
        load_model(stem, expect=ModelConfig.preset("tiny", num_classes=13))
    with pytest.raises(CheckpointError, match="has 20 classes, config asks for 13"):
        load_weights(_net(num_classes=13), stem)


def test_other_config_mismatch_names_the_field(tmp_path):
    stem = save_checkpoint(tmp_path / "s", _net())
    with pytest.raises(CheckpointError, match="depth_mode 'sensor', config asks for depth_mode 'estimated'"):
        load_model(stem, expect=ModelConfig.preset("tiny", depth_mode="estimated"))
    # class names are labels only: a different naming is not a mismatch
    load_model(stem, expect=ModelConfig.preset("tiny", class_names=tuple(f"c{i}" for i in range(20))))


def test_weights_that_do_not_fit(tmp_path):
    stem = save_checkpoint(tmp_path / "w", _net(num_classes=20))
    stem.with_suffix(".json").unlink()  # no config to compare: the tensor shapes catch it
    with pytest.raises(CheckpointError, match="shape"):
        load_weights(_net(num_classes=13), stem)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nothing")
    stem = save_checkpoint(tmp_path / "x", _net())
    stem.with_suffix(".safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(stem)
    stem.with_suffix(".json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(stem)
    stem.with_suffix(".json").write_text(json.dumps({"config": {"num_classes": 5, "bogus": 1}}))
    with pytest.raises(CheckpointError, match="bogus"):
        load_model(stem)
