"""Class-bias calibration: the fitted offsets raise the fitting views' mIoU, folding them into the semantic
head gives exactly the labels the offline argmax predicted, and the command writes a loadable checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.ros_harness import random_checkpoint


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("calscenes")
    generate_dataset(GenerateConfig(out=str(root), scenes=2, frames=8, width=64, height=48, seed=11))
    return root


def _cfg(data, checkpoint):
    from gssplat_ros.evaluate import EvalConfig

    return EvalConfig(data=str(data), split="all", views=2, width=64, height=48, checkpoint=str(checkpoint),
                      device="cpu", max_targets=2)  # fmt: skip


def test_view_miou_follows_the_metrics_rule():
    from gssplat_ros.metrics import semantic_metrics
    from maint.calibrate import ViewLogits, view_miou

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 5)).astype(np.float32)
    alpha = rng.uniform(0.2, 1.0, 500).astype(np.float32)
    labels = rng.integers(0, 4, 500)  # class 4 never in the GT
    bias = np.array([0.3, -0.2, 0.0, 0.5, -1.0], np.float32)
    view = ViewLogits(logits, alpha, labels, "s")
    pred = np.argmax(logits + alpha[:, None] * bias, axis=1)
    assert view_miou(view, bias, 5) == pytest.approx(semantic_metrics(pred, labels, 5, 20)["miou"])


def test_fit_improves_and_never_raises_an_absent_class():
    from maint.calibrate import ViewLogits, fit_class_bias

    rng = np.random.default_rng(1)
    views = []
    for _ in range(4):  # a model biased towards class 0: its logit is 1.5 too high everywhere
        labels = rng.integers(0, 3, 400)
        logits = rng.normal(size=(400, 4)).astype(np.float32)
        logits[np.arange(400), labels] += 2.0
        logits[:, 0] += 1.5
        views.append(ViewLogits(logits, np.ones(400, np.float32), labels, "s"))
    bias, before, after = fit_class_bias(views, 4)
    assert after > before + 0.05
    assert bias[0] < 0 and bias[3] <= 0  # class 0 pushed down; class 3 (absent) never pushed up


def test_folded_offsets_give_the_offline_labels(tmp_path, scenes):
    from gssplat_ros.model.checkpoint import load_model, save_checkpoint
    from maint.calibrate import collect_view_logits, fold_class_bias, mean_miou

    stem = random_checkpoint(tmp_path)
    views, num_classes = collect_view_logits(_cfg(scenes, stem))
    assert len(views) == 2 and views[0].logits.shape[1] == num_classes
    bias = np.linspace(-1.0, 1.0, num_classes).astype(np.float32)
    net, model_cfg = load_model(stem)
    fold_class_bias(net, bias)
    save_checkpoint(tmp_path / "folded", net, model_cfg, {})
    folded, _ = collect_view_logits(_cfg(scenes, tmp_path / "folded"))
    for v, f in zip(views, folded):  # the renderer composites l + b * alpha
        np.testing.assert_allclose(f.logits, v.logits + v.alpha[:, None] * bias[None, :], atol=2e-4)
    zero = np.zeros(num_classes, np.float32)
    assert mean_miou(folded, zero, num_classes) == pytest.approx(mean_miou(views, bias, num_classes), abs=1e-3)


def test_calibrate_command_writes_a_checkpoint_and_fails_in_one_line(tmp_path, scenes):
    stem = random_checkpoint(tmp_path)
    out = tmp_path / "cal"

    def gssplat(*args):
        return subprocess.run([sys.executable, "-m", "maint.calibrate_cmd", *map(str, args)],
                              capture_output=True, text=True)  # fmt: skip

    r = gssplat("--checkpoint", stem, "--data", scenes, "--split", "all", "--views", 2, "--size", "64x48",
                "--device", "cpu", "--max-targets", 2, "--out", out, "--json", tmp_path / "summary.json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["views"] == 2 and summary["miou_after"] >= summary["miou_before"]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert len(meta["extra"]["class_bias"]) == len(summary["bias"]) and "calibration_data" in meta["extra"]
    r = gssplat("--checkpoint", stem, "--data", tmp_path / "nope", "--split", "all", "--out", out)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_calibrate_refuses_to_write_its_summary_over_the_checkpoint_metadata(tmp_path):
    r = subprocess.run([sys.executable, "-m", "maint.calibrate_cmd", "--data", str(tmp_path), "--out",
                        str(tmp_path / "cal"), "--json", str(tmp_path / "cal.json")], capture_output=True, text=True)
    assert r.returncode == 1 and "overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
