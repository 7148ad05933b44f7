"""Class-bias calibration: one logit offset per class, fitted on labelled validation views, folded into the
semantic head so that the calibrated checkpoint needs no new inference code.

Usage:
    python -m maint.calibrate_cmd --data runs/data/val --split all --out runs/cal/tiny_sensor [--checkpoint CKPT]

A trained network's argmax can favour some classes over others (class-weighted losses, a training set
whose class mix differs from the deployment's). Adding b_c to class c's logit of every semantic Gaussian
shifts the rendered logits by b_c * alpha (the renderer composites sum_i w_i (l_i + b) = l + b * alpha),
so labels become argmax(l + alpha b). The offsets are found by coordinate search on the protocol's
mean per-image mIoU over the fitting views (each class in turn tries +-step; the step halves when no
class improves), then added to the bias of the semantic head's logit channels. The fitted score is
in-sample: judge a calibration on views it was not fitted on (`gssplat eval` + `gssplat compare`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from gssplat_ros.evaluate import EvalConfig, open_runtime, render_queries
from gssplat_ros.metrics import Protocol, metrics_from_confusion

log = logging.getLogger(__name__)


@dataclass
class ViewLogits:
    """One query view's rendered semantics on its scored pixels (ignore label and unlabelled dropped)."""

    logits: np.ndarray  # [P, C] float32 rendered logits
    alpha: np.ndarray  # [P] float32 rendered opacity
    labels: np.ndarray  # [P] int64 ground-truth class ids in 0..C-1
    scene: str


def collect_view_logits(cfg: EvalConfig) -> tuple[list[ViewLogits], int]:
    """(views, number of classes): the rendered logits of every query of `cfg` (eval's protocol)."""
    runtime = open_runtime(cfg)
    num_classes = runtime.info.num_classes
    ignore = Protocol(num_classes=num_classes).ignore_index
    views = []
    for b, _pred, _color, sem, _ms in render_queries(cfg, runtime):
        if sem.features is None:
            raise ValueError("the renderer returned no semantic features")
        gt = b["target_labels"][0].numpy().astype(np.int64).ravel()  # [H*W]
        keep = (gt != ignore) & (gt >= 0) & (gt < num_classes)
        logits = sem.features[0].float().cpu().numpy().reshape(-1, num_classes)[keep]
        alpha = sem.alpha[0].float().cpu().numpy().ravel()[keep]
        views.append(ViewLogits(np.ascontiguousarray(logits), alpha, gt[keep], b["scene"]))
    return views, num_classes


def view_miou(view: ViewLogits, bias: np.ndarray, num_classes: int) -> float:
    """The protocol's mIoU of one view with `bias` added (metrics_from_confusion: classes present in the GT).

    The confusion matrix comes from one bincount over the pre-filtered pixels (the search calls this
    thousands of times, so metrics.confusion_matrix's per-call filtering is skipped)."""
    pred = np.argmax(view.logits + view.alpha[:, None] * bias[None, :], axis=1)
    conf = np.zeros((num_classes, num_classes + 1), np.int64)  # last column: ids outside 0..C-1 (none here)
    conf[:, :num_classes] = np.bincount(view.labels * num_classes + pred,
                                        minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    return metrics_from_confusion(conf)["miou"]


def mean_miou(views: list[ViewLogits], bias: np.ndarray, num_classes: int) -> float:
    scores = [view_miou(v, bias, num_classes) for v in views]
    return float(np.nanmean(scores)) if scores else float("nan")


def fit_class_bias(
    views: list[ViewLogits], num_classes: int, step: float = 1.0, min_step: float = 0.06, max_abs: float = 4.0
) -> tuple[np.ndarray, float, float]:
    """(bias [C], mIoU before, mIoU after) by coordinate search on the mean per-image mIoU of `views`."""
    if not views:
        raise ValueError("no views to calibrate on")
    bias = np.zeros(num_classes, np.float32)
    before = best = mean_miou(views, bias, num_classes)
    present = np.unique(np.concatenate([v.labels for v in views]))
    while step >= min_step:
        improved = False
        for c in range(num_classes):
            for delta in (step, -step):
                # a class absent from every view can only be pushed down (fewer false positives)
                if c not in present and delta > 0:
                    continue
                trial = bias.copy()
                trial[c] = np.clip(trial[c] + delta, -max_abs, max_abs)
                if trial[c] == bias[c]:
                    continue
                score = mean_miou(views, trial, num_classes)
                if score > best + 1e-6:
                    bias, best, improved = trial, score, True
                    break
        if not improved:
            step /= 2.0
        log.info("calibrate: step %.3g, mIoU %.4f", step, best)
    return bias, before, best


def fold_class_bias(net, bias: np.ndarray) -> None:
    """Add `bias` [C] to the semantic head's logit channels (the last C outputs of its second conv)."""
    conv = net.semantic_head.conv2
    num_classes = len(bias)
    with torch.no_grad():
        conv.bias[-num_classes:] += torch.as_tensor(bias, dtype=conv.bias.dtype, device=conv.bias.device)


def calibrate_checkpoint(cfg: EvalConfig, out: str) -> dict:
    """Fit class biases on `cfg`'s views, write the calibrated checkpoint to `out`; returns a summary."""
    from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
    from gssplat_ros.weights import default_checkpoint

    source = cfg.checkpoint or str(default_checkpoint(cfg.depth))
    views, num_classes = collect_view_logits(cfg)
    bias, before, after = fit_class_bias(views, num_classes)
    net, model_cfg = load_model(source)
    fold_class_bias(net, bias)
    extra = dict(read_checkpoint_meta(source).get("extra", {}))
    prior = np.asarray(extra.get("class_bias", np.zeros(num_classes)), np.float32)
    extra.update({"class_bias": (prior + bias).tolist(), "calibrated_from": source,
                  "calibration_data": f"{cfg.data} ({cfg.split}, {len(views)} views, V={cfg.views}, "
                                      f"{cfg.width}x{cfg.height})"})  # fmt: skip
    save_checkpoint(out, net, model_cfg, extra)
    names = list(model_cfg.class_names or map(str, range(num_classes)))
    return {"source": source, "out": out, "views": len(views), "miou_before": before, "miou_after": after,
            "bias": dict(zip(names, (round(float(b), 3) for b in bias)))}  # fmt: skip
