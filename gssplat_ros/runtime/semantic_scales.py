"""Multi-scale semantics: class logits averaged over encoder passes at several image scales.

Usage:
    runtime = MultiScaleSemantics(make_runtime("torch"), scales=(1.0, 0.5))
    outputs = runtime(inputs)      # the base runtime's outputs; sem_logits = mean over the scales
    scales = resolve_scales("auto", reference_width=160, width=320)      # -> (1.0, 0.5)
    make_runtime("torch", semantic_scales="auto", width=320, height=240)   # what eval and the node do

The window is always encoded at full size, which gives every Gaussian (both sets' means, scales,
rotations, opacities and the SH colour) exactly as the base runtime does. Each further scale s < 1
encodes the window again with the images area-averaged by 1/s, the depth averaged over its valid
pixels (sensor mode) and the intrinsics scaled by s; its per-pixel class logits are upsampled
bilinearly to full size and the semantic Gaussians get the mean of the logits of every listed scale.

Why: the semantic branch sees a fixed neighbourhood at H/4, so at 320x240 it sees half as much of
each object as at 160x120, one of its training sizes. On validation rooms at 320x240 the pair
(1.0, 0.5) labels significantly better than the full size alone, while (0.5,) alone, a third scale or a
mirrored window as the second pass do no better; at the training size itself a smaller pass hurts,
hence the reference width below. Each extra scale s costs one more encoder pass at s^2 of the pixels
(docs/results.md has the figures).

`auto` (the default of `gssplat eval` and the node) therefore fuses the full size with one pass at
the checkpoint's `semantic_reference_width` (its `extra` metadata; the shipped models: 160, the
smaller of their semantic training sizes): scales (1, 1/f) for the largest power of two f with
width / f >= that width, and (1.0,) alone when f = 1 or the checkpoint names no reference width
(a model trained at one size, such as the paper preset at 320x240, keeps single-scale inference).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from gssplat_ros.model.config import reference_downscale
from gssplat_ros.model.semantic_scales import check_scaled_size, downscale_inputs, fuse_semantic_logits
from gssplat_ros.prediction import EncoderInputs

# the maths (shared with training) is in gssplat_ros/model/semantic_scales.py; re-exported for callers
__all__ = ["AUTO", "REFERENCE_WIDTH_KEY", "MultiScaleSemantics", "check_scaled_size", "downscale_inputs",
           "fuse_semantic_logits", "parse_scales", "reference_width", "resolve_scales"]

AUTO = "auto"
REFERENCE_WIDTH_KEY = "semantic_reference_width"  # in a checkpoint's `extra` metadata


def parse_scales(scales: Union[str, Sequence[float]]) -> Union[str, tuple[float, ...]]:
    """AUTO, or validated scales: each in (0, 1] with 1/s a whole number (an exact area-average factor).

    A string is AUTO or numbers separated by commas or spaces ("1.0, 0.5"); ValueError otherwise.
    """
    if isinstance(scales, str):
        text = scales.strip()
        if text == AUTO:
            return AUTO
        try:
            scales = [float(t) for t in text.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"semantic_scales: expected 'auto' or numbers such as '1.0 0.5', got {text!r}") from None
    out = tuple(float(s) for s in scales)
    if not out:
        raise ValueError("semantic_scales: give at least one scale (1.0 = the window's own size only)")
    for s in out:
        if not 0.0 < s <= 1.0 or abs(1.0 / s - round(1.0 / s)) > 1e-6:
            raise ValueError(f"semantic_scales: {s:g} is not 1/n for a whole n (use 1.0, 0.5, 0.25, ...)")
    if len(set(out)) != len(out):
        raise ValueError(f"semantic_scales: {list(out)} lists a scale twice")
    return out


def reference_width(checkpoint_stem: Union[str, Path, None]) -> Optional[int]:
    """The checkpoint's `semantic_reference_width` (None when absent or unreadable)."""
    if checkpoint_stem is None:
        return None
    from gssplat_ros.model.checkpoint import read_checkpoint_meta  # lazy: no model import for parsing

    try:
        value = read_checkpoint_meta(checkpoint_stem).get("extra", {}).get(REFERENCE_WIDTH_KEY)
    except Exception:  # noqa: BLE001 - loading the model reports a bad checkpoint properly
        return None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def resolve_scales(scales: Union[str, Sequence[float]], reference_width: Optional[int],
                   width: Optional[int], height: Optional[int] = None) -> tuple[float, ...]:  # fmt: skip
    """The scales to run: explicit ones validated, AUTO by the rule in the module docstring (a size
    the smaller pass cannot take, not divisible by 4 there, keeps the larger scale)."""
    parsed = parse_scales(scales)
    if parsed != AUTO:
        return parsed
    if not reference_width or not width:
        return (1.0,)
    factor = reference_downscale(width, height or 0, reference_width)
    return (1.0,) if factor == 1 else (1.0, 1.0 / factor)


class MultiScaleSemantics:
    """An EncoderRuntime whose semantic-Gaussian logits are the mean over `scales` (module docstring)."""

    def __init__(self, base, scales: Sequence[float]):
        self.base = base
        self.scales = parse_scales(scales)
        self.info = base.info

    def __getattr__(self, name: str):
        # everything else (the torch runtime's `net`, onnxruntime's `onnx_paths`, ...) is the base's
        return getattr(self.__dict__["base"], name)

    def warm(self, views: int, width: int, height: int) -> None:
        """Build the base runtime's sessions or engines for every scale's shape (those that have any)."""
        check_scaled_size(self.scales, width, height)
        warm = getattr(self.base, "warm", None)
        if warm is None:
            return
        for s in sorted(set(self.scales) | {1.0}, reverse=True):
            factor = round(1.0 / s)
            warm(views, width // factor, height // factor)

    @torch.inference_mode()
    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]:
        height, width = inputs.images.shape[-2:]
        check_scaled_size(self.scales, width, height)
        out = self.base(inputs)
        logits = []
        for s in self.scales:
            if s == 1.0:
                logits.append(out["sem_logits"])  # [V, H, W, C]
            else:
                logits.append(self.base(downscale_inputs(inputs, round(1.0 / s)))["sem_logits"])  # [V, H/f, W/f, C]
        out = dict(out)
        out["sem_logits"] = fuse_semantic_logits(logits, height, width)
        return out
