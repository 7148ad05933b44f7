"""maint.average: the weighted mean of checkpoints of one network."""

import pytest
import torch

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
from maint.average import average, main


def _save(tmp_path, name, seed, **overrides):
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("tiny", **overrides)
    return str(save_checkpoint(tmp_path / name, GSsplatNet(cfg).eval(), cfg, {"note": name, "semantic_reference_width": 160}))


def test_average_is_the_weighted_mean_of_every_weight(tmp_path):
    a, b = _save(tmp_path, "a", 1), _save(tmp_path, "b", 2)
    average([a, b], str(tmp_path / "soup"), weights=[0.25, 0.75], note="soup")
    soup, _ = load_model(tmp_path / "soup")
    net_a, _ = load_model(a)
    net_b, _ = load_model(b)
    sa, sb, ss = net_a.state_dict(), net_b.state_dict(), soup.state_dict()
    differing = 0
    for key, value in ss.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.25 * sa[key] + 0.75 * sb[key], msg=key)
            differing += int(not torch.equal(sa[key], sb[key]))
        else:
            assert torch.equal(value, sa[key]), key
    assert differing > 10  # the two sources really differ, so the mean is a new network
    extra = read_checkpoint_meta(tmp_path / "soup")["extra"]
    assert extra["average_weights"] == [0.25, 0.75] and extra["note"] == "soup"
    assert extra["semantic_reference_width"] == 160  # the first source's metadata is kept


def test_checkpoints_that_cannot_be_averaged_are_clear_errors(tmp_path, capsys):
    a = _save(tmp_path, "a", 1)
    other = _save(tmp_path, "other", 2, num_classes=5, class_names=())
    with pytest.raises(CheckpointError, match="num_classes"):
        average([a, other], str(tmp_path / "x"))
    with pytest.raises(CheckpointError, match="sum to 1"):
        average([a, a], str(tmp_path / "x"), weights=[0.5, 0.7])
    assert main([a, str(tmp_path / "missing"), str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.startswith("average: error:")
    assert not (tmp_path / "x.json").exists()
