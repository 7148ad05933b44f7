"""Training: typed config, a few real steps with checkpoints and logs, resume, DDP with 2 gloo processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gssplat_ros.config import ConfigError, TrainConfig, load_typed_config


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("scenes")
    generate_dataset(GenerateConfig(out=str(root), scenes=2, frames=8, width=64, height=48, seed=5))
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("scene0000_00\n")
    (root / "splits" / "val.txt").write_text("scene0001_00\n")
    return root


def write_config(path: Path, scenes: Path, out: Path, steps: int, depth_mode: str = "sensor", **extra) -> Path:
    text = (f"model_preset: tiny\nmodel_overrides: {{depth_mode: {depth_mode}}}\n"
            f"data: {{root: {scenes}, views: 2, targets: 1, width: 64, height: 48, num_workers: 0}}\n"
            f"optim: {{steps: {steps}, warmup_steps: 1}}\nout_dir: {out}\nval_every: 2\nckpt_every: 2\n"
            f"log_every: 1\nval_windows: 1\nthreads: 1\n")
    path.write_text(text + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def test_config_errors_name_the_key(tmp_path):
    (tmp_path / "a.yaml").write_text("optim: {lrr: 1}\n")
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_typed_config(tmp_path / "a.yaml", TrainConfig)
    (tmp_path / "b.yaml").write_text("seed: many\n")
    with pytest.raises(ConfigError, match="seed"):
        load_typed_config(tmp_path / "b.yaml", TrainConfig)
    with pytest.raises(ConfigError, match="not found"):
        load_typed_config(tmp_path / "none.yaml", TrainConfig)
    cfg = load_typed_config(None, TrainConfig, ["optim.lr=0.002", "data.views=3"])
    assert cfg.optim.lr == 0.002 and cfg.data.views == 3 and isinstance(cfg.optim.lr, float)


def test_stage_names_are_checked_and_overrides_repeat(tmp_path):
    import argparse

    from gssplat_ros.commands.train_cmd import add_arguments

    with pytest.raises(ConfigError, match="'stage' must be one of"):
        load_typed_config(None, TrainConfig, ["stage=depht"])
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", "c.yaml", "--override", "seed=1", "stage=depth", "--override", "threads=2"])
    cfg = load_typed_config(None, TrainConfig, args.override)
    assert (cfg.seed, cfg.stage, cfg.threads) == (1, "depth", 2)


def test_shipped_configs_load():
    recipes = sorted((Path(__file__).resolve().parents[1] / "config" / "train").rglob("*.yaml"))
    assert len(recipes) > 2
    for f in recipes:
        load_typed_config(f, TrainConfig)


def test_train_writes_checkpoints_logs_and_resumes(tmp_path, scenes):
    from gssplat_ros.model.checkpoint import load_model
    from gssplat_ros.train import train

    out = tmp_path / "run"
    cfg = load_typed_config(write_config(tmp_path / "c.yaml", scenes, out, steps=3), TrainConfig)
    metrics = train(cfg)
    assert metrics["step"] == 3 and 0 <= metrics["miou"] <= 1 and metrics["psnr"] > 0
    for name in ("last.safetensors", "last.json", "best.safetensors", "last_state.pt", "log.csv", "config.yaml",
                 "run.json", "metrics.json"):
        assert (out / name).exists(), name
    assert any((out / "tb").iterdir())
    net, mcfg = load_model(out / "last")
    assert mcfg.depth_mode == "sensor"
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) >= 4
    cfg2 = load_typed_config(write_config(tmp_path / "c2.yaml", scenes, out, steps=5), TrainConfig)
    metrics = train(cfg2, resume=True)
    assert metrics["step"] == 5
    assert json.loads((out / "run.json").read_text())["resumed_at_step"] == 3
    assert [r.split(",")[0] for r in (out / "log.csv").read_text().splitlines()].count("step") == 1
    train(load_typed_config(write_config(tmp_path / "c3.yaml", scenes, out, steps=1), TrainConfig))  # fresh run
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == ["1"]


@pytest.mark.slow  # seconds of real processes: left out of make test-fast
def test_ddp_two_gloo_processes(tmp_path, scenes):
    out = tmp_path / "ddp"
    config = write_config(tmp_path / "d.yaml", scenes, out, steps=2)
    torchrun = Path(sys.executable).parent / "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29571", "-m",
                        "gssplat_ros.commands.train_cmd", "--config", str(config)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["step"] == 2
    assert (out / "last.safetensors").exists()


def test_semantic_warmup_stage_and_partial_init(tmp_path, scenes):
    import torch

    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.train import init_from_checkpoint, train

    out = tmp_path / "warm"
    cfg = load_typed_config(write_config(tmp_path / "w.yaml", scenes, out, steps=2, stage="semantic2d"), TrainConfig)
    metrics = train(cfg)
    assert metrics["step"] == 2
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert all(float(r.split(",")[4]) == 0.0 for r in rows)  # no rendered-RGB loss in the 2D stage
    est = GSsplatNet(ModelConfig.preset("tiny", depth_mode="estimated"))
    copied = init_from_checkpoint(est, out / "last")
    own = est.state_dict()
    assert 0 < copied < len(own)  # the shared encoder and heads, not the depth network
    from safetensors.torch import load_file

    src = load_file(str(out / "last.safetensors"))
    shared = next(k for k in src if k in own and own[k].shape == src[k].shape)
    assert torch.equal(own[shared], src[shared])


def test_trainable_prefixes_freeze_everything_else(tmp_path, scenes):
    """A semantic-branch fine-tune changes the semantic modules only; the colour weights stay bit-identical."""
    from safetensors.torch import load_file

    from gssplat_ros.train import train

    base = tmp_path / "base"
    train(load_typed_config(write_config(tmp_path / "b.yaml", scenes, base, steps=1, stage="semantic2d"), TrainConfig))
    out = tmp_path / "ft"
    cfg = load_typed_config(write_config(tmp_path / "f.yaml", scenes, out, steps=2, stage="semantic2d",
                                         init_from=base / "last", trainable="[semantic_decoder, semantic_head]"),
                            TrainConfig)
    train(cfg)
    before, after = load_file(str(base / "last.safetensors")), load_file(str(out / "last.safetensors"))
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed and all(k.startswith(("semantic_decoder.", "semantic_head.")) for k in changed)
    assert any(k.startswith("semantic_head.") for k in changed)
    with pytest.raises(ConfigError, match="no parameters under 'colour_head'"):
        train(load_typed_config(write_config(tmp_path / "x.yaml", scenes, tmp_path / "x", steps=1,
                                             trainable="[colour_head]"), TrainConfig))


def test_depth_stage_trains_only_the_cost_volume(tmp_path, scenes):
    """Stage `depth`: no rendering, the cascade-level loss only; only depth_net weights move; AbsRel validated."""
    from safetensors.torch import load_file

    from gssplat_ros.train import train

    base = tmp_path / "base"
    train(load_typed_config(write_config(tmp_path / "b.yaml", scenes, base, steps=1, depth_mode="estimated",
                                         stage="semantic2d"), TrainConfig))
    out = tmp_path / "depth"
    metrics = train(load_typed_config(write_config(tmp_path / "d.yaml", scenes, out, steps=2, depth_mode="estimated",
                                                   stage="depth", init_from=base / "last", trainable="[depth_net]"),
                                      TrainConfig))
    assert metrics["step"] == 2 and 0 < metrics["depth_absrel"] < 10
    header, *rows = (out / "log.csv").read_text().splitlines()
    columns = header.split(",")
    assert "val_depth_absrel" in columns
    for row in rows:
        values = dict(zip(columns, row.split(",")))
        assert float(values["rgb"]) == 0.0 and float(values["depth"]) > 0.0
    before, after = load_file(str(base / "last.safetensors")), load_file(str(out / "last.safetensors"))
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed and all(k.startswith("depth_net.") for k in changed)
    with pytest.raises(ConfigError, match="depth_mode: estimated"):
        train(load_typed_config(write_config(tmp_path / "s.yaml", scenes, tmp_path / "s", steps=1, stage="depth"),
                                TrainConfig))


def test_extra_sets_mix_image_sizes(tmp_path, scenes):
    """data.extra adds another training set (here the same scenes at twice the size): windows of both
    sizes are drawn, each whole; a malformed entry is one ConfigError."""
    from gssplat_ros.train import training_windows

    cfg = load_typed_config(write_config(tmp_path / "m.yaml", scenes, tmp_path / "m", steps=1), TrainConfig,
                            [f"data.extra=[{{root: {scenes}, width: 128, height: 96}}]"])
    mixed = training_windows(cfg.data, seed=0)
    small, large = mixed.datasets
    assert len(mixed) == len(small) + len(large) == 16
    sizes = {tuple(mixed[i]["context_images"].shape[-2:]) for i in range(len(mixed))}
    assert sizes == {(48, 64), (96, 128)}
    assert tuple(mixed[len(small)]["context_images"].shape[-2:]) == (96, 128)  # the first item of the extra set
    mixed.set_epoch(3)
    assert small.epoch == large.epoch == 3
    with pytest.raises(IndexError):
        mixed[len(mixed)]
    bad = load_typed_config(write_config(tmp_path / "b.yaml", scenes, tmp_path / "b", steps=1), TrainConfig,
                            ["data.extra=[{path: x}]"])
    with pytest.raises(ConfigError, match=r"data.extra\[0\]"):
        training_windows(bad.data, seed=0)
    # repeat: the extra set is drawn twice as often (listed twice); a bad count is one ConfigError
    twice = load_typed_config(write_config(tmp_path / "r.yaml", scenes, tmp_path / "r", steps=1), TrainConfig,
                              [f"data.extra=[{{root: {scenes}, width: 128, height: 96, repeat: 2}}]"])
    mixed = training_windows(twice.data, seed=0)
    assert len(mixed) == 24 and len(mixed.datasets) == 3
    sizes = [tuple(mixed[i]["context_images"].shape[-2:]) for i in range(len(mixed))]
    assert sizes.count((96, 128)) == 16 and sizes.count((48, 64)) == 8
    zero = load_typed_config(write_config(tmp_path / "z.yaml", scenes, tmp_path / "z", steps=1), TrainConfig,
                             [f"data.extra=[{{root: {scenes}, repeat: 0}}]"])
    with pytest.raises(ConfigError, match=r"repeat"):
        training_windows(zero.data, seed=0)


def test_augmentation_is_switched_on_by_the_data_config(tmp_path, scenes):
    """data.flip_prob / data.color_jitter wrap the training windows (never validation); bad values are one
    ConfigError."""
    from gssplat_ros.data.augment import AugmentedWindows
    from gssplat_ros.train import training_windows

    path = write_config(tmp_path / "a.yaml", scenes, tmp_path / "a", steps=1)
    plain = training_windows(load_typed_config(path, TrainConfig).data, seed=0)
    assert not isinstance(plain, AugmentedWindows)
    flipped = training_windows(load_typed_config(path, TrainConfig, ["data.flip_prob=1.0"]).data, seed=0)
    assert isinstance(flipped, AugmentedWindows) and len(flipped) == len(plain)
    assert torch.equal(flipped[0]["context_labels"], plain[0]["context_labels"].flip(-1))
    with pytest.raises(ConfigError, match="flip_prob"):
        training_windows(load_typed_config(path, TrainConfig, ["data.color_jitter=1.5"]).data, seed=0)


def test_weight_average_is_validated_saved_and_resumed(tmp_path, scenes):
    """optim.ema_decay keeps an average of the raw weights: trained tensors move less than `last`, frozen ones
    stay bit-identical, `best` comes from the average, and --resume continues the average instead of
    restarting it from the raw weights."""
    from safetensors.torch import load_file

    from gssplat_ros.train import train

    base = tmp_path / "base"
    train(load_typed_config(write_config(tmp_path / "b.yaml", scenes, base, steps=1, stage="semantic2d"), TrainConfig))
    out = tmp_path / "ema"

    def config(steps):
        path = write_config(tmp_path / f"e{steps}.yaml", scenes, out, steps=steps, stage="semantic2d",
                            init_from=base / "last", trainable="[semantic_head]")
        path.write_text(path.read_text().replace("warmup_steps: 1}", "warmup_steps: 1, lr: 0.01, ema_decay: 0.5}"))
        return load_typed_config(path, TrainConfig)

    train(config(4))
    start, last, ema = (load_file(str(p)) for p in (base / "last.safetensors", out / "last.safetensors",
                                                    out / "ema.safetensors"))
    trained = [k for k in start if not (start[k] == last[k]).all()]
    assert trained and all(k.startswith("semantic_head.") for k in trained)
    assert all((ema[k] == start[k]).all() for k in start if k not in trained)
    assert any(not (ema[k] == last[k]).all() for k in trained)  # the average lags the raw weights
    assert all((ema[k] - start[k]).abs().sum() <= (last[k] - start[k]).abs().sum() + 1e-6 for k in trained)

    train(config(5), resume=True)
    last5, ema5 = load_file(str(out / "last.safetensors")), load_file(str(out / "ema.safetensors"))
    for k in trained:  # decay 0.5: one more step blends half of the new raw weights into the old average
        assert torch.allclose(ema5[k], 0.5 * ema[k] + 0.5 * last5[k], atol=1e-6), k


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without CUDA gives")
def test_cuda_device_without_cuda_is_a_clear_error(tmp_path, scenes):
    from gssplat_ros.train import train

    cfg = load_typed_config(write_config(tmp_path / "c.yaml", scenes, tmp_path / "run", steps=1, device="cuda"),
                            TrainConfig)  # fmt: skip
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train(cfg)


@pytest.mark.parametrize("text, key", [("amp: fp8\n", "amp"), ("device: tpu\n", "device")])
def test_amp_and_device_names_are_checked(tmp_path, text, key):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_typed_config(tmp_path / "a.yaml", TrainConfig)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_cuda_training_steps_write_a_cpu_loadable_checkpoint(tmp_path, scenes, amp):
    from gssplat_ros.model.checkpoint import load_model
    from gssplat_ros.render import gsplat_usable
    from gssplat_ros.train import train

    backend = "gsplat" if gsplat_usable()[0] else "cpu"
    if backend == "cpu":
        pytest.skip("the CPU renderer needs CPU tensors; this run would need gsplat")
    out = tmp_path / "run"
    cfg = load_typed_config(write_config(tmp_path / "c.yaml", scenes, out, steps=3, device="cuda", amp=amp,
                                         render_backend=backend), TrainConfig)  # fmt: skip
    metrics = train(cfg)
    assert metrics["step"] == 3 and metrics["psnr"] > 0
    losses = [float(r.split(",")[3]) for r in (out / "log.csv").read_text().splitlines()[1:]]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    net, _ = load_model(out / "last")
    assert next(net.parameters()).device.type == "cpu"
