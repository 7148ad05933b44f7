"""Checkpoint IO with safetensors only: `X.safetensors` (weights) + `X.json` (config and extras).

Usage:
    save_checkpoint("runs/a/tiny_sensor", net, cfg, extra={"step": 1000})
    net, cfg = load_model("runs/a/tiny_sensor")                         # stem, .safetensors or .json
    net, cfg = load_model(path, expect=ModelConfig.preset("tiny", num_classes=13))   # CheckpointError on mismatch
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.model.network import GSsplatNet

log = logging.getLogger(__name__)

FORMAT = "gssplat_ros.model/1"


def _stem(path: Union[str, Path]) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save_checkpoint(
    path: Union[str, Path], net: GSsplatNet, cfg: Optional[ModelConfig] = None, extra: Optional[dict] = None
) -> Path:
    """Write `<stem>.safetensors` and `<stem>.json`; returns the stem.

    Args:
        path: stem (an `.safetensors` / `.json` suffix is dropped).
        net: the network; its state dict is saved (tensors made contiguous, on the CPU).
        cfg: the config to embed; defaults to net.cfg (must match it).
        extra: JSON-serialisable metadata (step, metrics, git hash, ...).
    """
    cfg = cfg or net.cfg
    if cfg.diff(net.cfg):
        raise CheckpointError(f"save_checkpoint: config differs from the network's in {', '.join(cfg.diff(net.cfg))}")
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(stem.with_suffix(".safetensors")), metadata={"format": FORMAT})
    meta = {
        "format": FORMAT,
        "config": cfg.to_dict(),
        "num_parameters": int(sum(p.numel() for p in net.parameters())),
        "extra": extra or {},
    }
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return stem


def read_checkpoint_meta(path: Union[str, Path]) -> dict[str, Any]:
    """The JSON side of a checkpoint (format, config dict, extra)."""
    stem = _stem(path)
    meta_path = stem.with_suffix(".json")
    if not meta_path.exists():
        raise CheckpointError(f"checkpoint config not found: {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint config {meta_path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise CheckpointError(f"{meta_path}: not a gssplat_ros checkpoint config (no 'config' entry)")
    return meta


def _describe(field: str, value: Any) -> str:
    return f"{value} classes" if field == "num_classes" else f"{field} {value!r}"


def check_compatible(found: ModelConfig, expect: ModelConfig, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first field where `found` and `expect` differ (class names aside)."""
    for field in found.diff(expect):
        if field == "class_names":
            continue
        a, b = getattr(found, field), getattr(expect, field)
        raise CheckpointError(f"{where} has {_describe(field, a)}, config asks for {_describe(field, b)}")


def load_model(
    path: Union[str, Path], expect: Optional[ModelConfig] = None, device: Union[str, torch.device] = "cpu"
) -> tuple[GSsplatNet, ModelConfig]:
    """Build the network from a checkpoint's config and load its weights (eval mode).

    Args:
        path: stem, `.safetensors` or `.json` path.
        expect: when given, the checkpoint's config must equal it (class names aside).
        device: where to put the network.

    Raises:
        CheckpointError: missing files, unreadable data, a config mismatch, or weights that do not fit.
    """
    stem = _stem(path)
    meta = read_checkpoint_meta(stem)
    try:
        cfg = ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{stem.with_suffix('.json')}: bad model config: {exc}") from None
    if expect is not None:
        check_compatible(cfg, expect, where=f"checkpoint {stem.name}")
    net = GSsplatNet(cfg)
    load_weights(net, stem)
    return net.to(device).eval(), cfg


def load_weights(net: GSsplatNet, path: Union[str, Path]) -> None:
    """Load `<stem>.safetensors` into an existing network (strict; mismatches raise CheckpointError)."""
    stem = _stem(path)
    weights_path = stem.with_suffix(".safetensors")
    if not weights_path.exists():
        raise CheckpointError(f"checkpoint weights not found: {weights_path}")
    meta_path = stem.with_suffix(".json")
    if meta_path.exists():
        cfg = ModelConfig.from_dict(read_checkpoint_meta(stem)["config"])
        check_compatible(cfg, net.cfg, where=f"checkpoint {stem.name}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {weights_path}: {exc}") from None
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path}: weights do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{weights_path}: {name} has shape {tuple(tensor.shape)}, the network expects {tuple(own[name].shape)}"
            )
    net.load_state_dict(state, strict=True)
