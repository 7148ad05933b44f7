"""Per-image evaluation metrics (S-Ray / GSNeRF protocol) and averaging.

Usage:
    from gssplat_ros.metrics import image_metrics, semantic_metrics, average_metrics, describe_protocol
    m = image_metrics(pred_rgb, gt_rgb, valid=gt_depth > 0)   # {"psnr": dB, "ssim": 0..1}
    s = semantic_metrics(pred_labels, gt_labels)             # {"miou", "total_accuracy", "class_average_accuracy",
                                                             #  "ious" (per class, NaN if absent), "num_pixels"}
    summary = average_metrics(per_image_dicts)               # NaN-skipping means of the scalar entries
    print(describe_protocol(Protocol()))

Images are [H, W, 3] or [3, H, W] (numpy or torch) in 0-1; labels are integer [H, W].

Protocol (the choices are fields of `Protocol`; `describe_protocol` prints them):
- Both images are rounded to 8 bits first (S-Ray scores uint8 images), `quantize=True`.
- PSNR: 10 log10(1 / MSE) with the MSE over the valid pixels (all three channels); S-Ray's PSNR is over all
  pixels, which equals ours with `valid=None`.
- SSIM: Wang et al. with an 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, reflect
  padding, the 5-pixel border cropped and channels averaged, i.e. skimage's
  `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.
  `ssim_window="uniform"` gives skimage's default 11x11 box window with sample covariance, which is what
  S-Ray's code calls. Masks: invalid pixels of the prediction are replaced by the ground truth (so they
  add no error to the windows around them), then the SSIM map is averaged over the valid pixels only.
- Semantics (S-Ray / Semantic-NeRF `IoU`): per image, pixels whose ground truth is the ignore label are
  dropped; mIoU and class-average accuracy average over the classes present in that image's ground
  truth; total accuracy is correct / valid pixels. A predicted id outside 0..C-1 (e.g. 255 "unlabelled")
  counts as wrong, where sklearn's `confusion_matrix(labels=range(C))` in S-Ray silently drops the pixel.
  An image without valid ground truth gives NaN (S-Ray gives 0); `average_metrics` skips NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

NUM_CLASSES = 20
IGNORE_INDEX = 20


@dataclass(frozen=True)
class Protocol:
    quantize: bool = True  # round images to 8 bits before scoring
    ssim_window: str = "gaussian"  # "gaussian" (11, sigma 1.5) or "uniform" (11x11, sample covariance)
    num_classes: int = NUM_CLASSES
    ignore_index: int = IGNORE_INDEX


DEFAULT_PROTOCOL = Protocol()


def describe_protocol(p: Protocol = DEFAULT_PROTOCOL) -> str:
    window = ("11x11 gaussian sigma 1.5" if p.ssim_window == "gaussian" else "11x11 uniform, sample covariance")
    return (f"PSNR/SSIM on valid-depth pixels ({'8-bit quantised' if p.quantize else 'float'} images; SSIM "
            f"{window}, invalid pixels filled with GT and excluded from the mean); mIoU / total / class-average "
            f"accuracy per image over the {p.num_classes} classes present in the GT, label {p.ignore_index} "
            f"ignored, out-of-range predictions wrong; means over images skip NaN")


# ------------------------------------------------------------------------------------------ helpers
def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _hwc(img, name: str) -> np.ndarray:
    a = _np(img).astype(np.float64)
    if a.ndim == 3 and a.shape[-1] != 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"{name} must be [H, W, 3] or [3, H, W], got shape {a.shape}")
    return a


def _prepare(pred, gt, valid, quantize: bool):
    p, g = _hwc(pred, "pred"), _hwc(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    if quantize:
        p = np.round(np.clip(p, 0.0, 1.0) * 255.0) / 255.0
        g = np.round(np.clip(g, 0.0, 1.0) * 255.0) / 255.0
    if valid is None:
        v = np.ones(p.shape[:2], bool)
    else:
        v = _np(valid).astype(bool)
        if v.shape != p.shape[:2]:
            raise ValueError(f"valid must be [H, W] = {p.shape[:2]}, got {v.shape}")
    return p, g, v


# ------------------------------------------------------------------------------------------ image
def psnr(pred, gt, valid=None, quantize: bool = True) -> float:
    """PSNR in dB over the valid pixels (inf for identical images, NaN without valid pixels)."""
    p, g, v = _prepare(pred, gt, valid, quantize)
    if not v.any():
        return float("nan")
    mse = float(np.mean((p[v] - g[v]) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def ssim_map(p: np.ndarray, g: np.ndarray, window: str = "gaussian") -> np.ndarray:
    """[H, W, 3] SSIM map of two HWC float images with data range 1 (reflect-padded filters)."""
    from scipy import ndimage

    if window == "gaussian":
        filt = lambda x: ndimage.gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")  # noqa: E731
        cov_norm = 1.0
    elif window == "uniform":
        filt = lambda x: ndimage.uniform_filter(x, size=11, mode="reflect")  # noqa: E731
        cov_norm = 121.0 / 120.0
    else:
        raise ValueError(f"ssim window must be 'gaussian' or 'uniform', got {window!r}")
    c1, c2 = 0.01**2, 0.03**2
    out = np.empty_like(p)
    for c in range(p.shape[-1]):
        x, y = p[..., c], g[..., c]
        ux, uy = filt(x), filt(y)
        vx = cov_norm * (filt(x * x) - ux * ux)
        vy = cov_norm * (filt(y * y) - uy * uy)
        vxy = cov_norm * (filt(x * y) - ux * uy)
        out[..., c] = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return out


def ssim(pred, gt, valid=None, quantize: bool = True, window: str = "gaussian") -> float:
    """Mean SSIM over the valid pixels outside the 5-pixel border (see the module docstring)."""
    p, g, v = _prepare(pred, gt, valid, quantize)
    p = np.where(v[..., None], p, g)
    s = ssim_map(p, g, window).mean(axis=-1)
    pad = 5
    if s.shape[0] <= 2 * pad or s.shape[1] <= 2 * pad:
        raise ValueError(f"SSIM needs images larger than 11x11, got {s.shape[1]}x{s.shape[0]}")
    s, v = s[pad:-pad, pad:-pad], v[pad:-pad, pad:-pad]
    return float(s[v].mean()) if v.any() else float("nan")


def image_metrics(pred, gt, valid=None, protocol: Protocol = DEFAULT_PROTOCOL) -> dict:
    """{"psnr", "ssim"} of one rendered image against its ground truth.

    Args:
        pred, gt: [H, W, 3] or [3, H, W] RGB in [0, 1] (numpy or torch).
        valid: optional [H, W] bool, e.g. gt_depth > 0; None scores every pixel.

    Example:
        >>> round(image_metrics(np.zeros((32, 32, 3)), np.full((32, 32, 3), 0.1))["psnr"], 2)  # 0.1 -> 26/255
        19.83
    """
    return {
        "psnr": psnr(pred, gt, valid, protocol.quantize),
        "ssim": ssim(pred, gt, valid, protocol.quantize, protocol.ssim_window),
    }


# ------------------------------------------------------------------------------------------ semantics
def confusion_matrix(pred, gt, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """int64 [C, C + 1]: rows = GT class, columns = predicted class, last column = predicted id outside 0..C-1.

    Pixels whose GT is `ignore_index` (or outside 0..C-1) are dropped.
    """
    p, g = _np(pred).astype(np.int64).ravel(), _np(gt).astype(np.int64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"pred and gt label shapes differ: {_np(pred).shape} vs {_np(gt).shape}")
    keep = (g != ignore_index) & (g >= 0) & (g < num_classes)
    p, g = p[keep], g[keep]
    p = np.where((p >= 0) & (p < num_classes), p, num_classes)
    return np.bincount(g * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1)).reshape(
        num_classes, num_classes + 1)


def metrics_from_confusion(conf: np.ndarray) -> dict:
    """mIoU, accuracies and per-class IoU from a [C, C + 1] confusion matrix (classes present in GT)."""
    C = conf.shape[0]
    tp = np.diag(conf[:, :C]).astype(np.float64)
    gt_n = conf.sum(axis=1).astype(np.float64)
    pred_n = conf[:, :C].sum(axis=0).astype(np.float64)
    present = gt_n > 0
    n = float(gt_n.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        ious = np.where(present, tp / (gt_n + pred_n - tp), np.nan)
        acc = np.where(present, tp / gt_n, np.nan)
    if n == 0:
        nan = float("nan")
        return {"miou": nan, "total_accuracy": nan, "class_average_accuracy": nan, "ious": ious.tolist(),
                "num_pixels": 0}
    return {
        "miou": float(np.mean(ious[present])),
        "total_accuracy": float(tp.sum() / n),
        "class_average_accuracy": float(np.mean(acc[present])),
        "ious": ious.tolist(),
        "num_pixels": int(n),
    }


def semantic_metrics(pred, gt, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX) -> dict:
    """Per-image mIoU, total accuracy and class-average accuracy (see the module docstring).

    Args:
        pred: [H, W] integer predicted class ids (anything outside 0..C-1 is wrong).
        gt: [H, W] integer ground-truth ids; `ignore_index` pixels are not scored.

    Example:
        >>> semantic_metrics(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 20]]))["miou"]
        0.5
    """
    return metrics_from_confusion(confusion_matrix(pred, gt, num_classes, ignore_index))


# ------------------------------------------------------------------------------------------ averaging
def average_metrics(items: Iterable[Mapping]) -> dict:
    """Mean of each scalar entry over the items, skipping NaN; adds "count" (items seen).

    Per-class lists ("ious") are averaged element-wise over the images where the class is present.
    """
    items = list(items)
    out: dict = {"count": len(items)}
    keys: list[str] = []
    for it in items:
        keys += [k for k in it if k not in keys]
    for k in keys:
        vals = [it[k] for it in items if k in it]
        if all(isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) for v in vals):
            arr = np.array(vals, dtype=np.float64)
            arr = arr[~np.isnan(arr)]
            out[k] = float(arr.mean()) if len(arr) else float("nan")
        elif all(isinstance(v, (list, tuple, np.ndarray)) for v in vals) and len({len(v) for v in vals}) == 1:
            arr = np.array(vals, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                cnt = (~np.isnan(arr)).sum(0)
                mean = np.where(cnt > 0, np.nansum(arr, 0) / np.maximum(cnt, 1), np.nan)
            out[k] = mean.tolist()
    return out


def optional_mask(depth) -> Optional[np.ndarray]:
    """[H, W] bool valid-depth mask (depth > 0 and finite), or None when depth is None."""
    if depth is None:
        return None
    d = _np(depth)
    return np.isfinite(d) & (d > 0)
