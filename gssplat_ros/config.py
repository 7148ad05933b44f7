"""Typed configs: YAML is a serialised dataclass, loaded in one function.

Usage:
    cfg = load_typed_config("config/train/tiny_sensor/2_full_losses.yaml", TrainConfig, overrides=["optim.lr=1e-3"])
Unknown keys, wrong types and bad override syntax raise ConfigError naming the key.

Settings that users set (the node's parameters, PipelineConfig) are declared with `setting(...)`: the field
carries its description, allowed values and range, so ROS parameter declarations, config/gssplat.yaml and
docs/parameters.md are all generated from the dataclass (one source for each fact).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from gssplat_ros.errors import GssplatError


class ConfigError(GssplatError):
    """A config file or override that does not fit its dataclass."""


@dataclass(frozen=True)
class SettingSpec:
    """What a `setting(...)` field declares: the one description of a user-facing setting."""

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple = ()  # allowed values, empty = any
    limits: Optional[tuple] = None  # (min, max) for numbers, inclusive
    dynamic: bool = False  # may change while running (the node applies it on set); others are read-only


def setting(default=dataclasses.MISSING, doc: str = "", *, choices=(), limits=None, dynamic=False,
            default_factory=dataclasses.MISSING):
    """A dataclass field with its description, allowed values, range and run-time mutability."""
    meta = {"doc": doc, "choices": tuple(choices), "limits": limits, "dynamic": dynamic}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def setting_specs(cls) -> list[SettingSpec]:
    """The `setting(...)` fields of dataclass `cls`, in declaration order (nested dataclasses excluded)."""
    hints = typing.get_type_hints(cls)
    specs = []
    instance = cls()
    for f in dataclasses.fields(cls):
        if "doc" not in f.metadata:
            continue
        specs.append(SettingSpec(f.name, hints[f.name], getattr(instance, f.name), f.metadata["doc"],
                                 f.metadata["choices"], f.metadata["limits"], f.metadata["dynamic"]))
    return specs


def check_settings(cfg) -> None:
    """Raise ConfigError naming the first `setting(...)` field whose value is not allowed or out of range."""
    for spec in setting_specs(type(cfg)):
        value = getattr(cfg, spec.name)
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"'{spec.name}' must be one of {list(spec.choices)}, got {value!r}")
        if spec.limits is not None:
            lo, hi = spec.limits
            if not lo <= value <= hi:
                raise ConfigError(f"'{spec.name}' = {value} is out of range [{lo}, {hi}]")


def check_partial(cls, values: dict, what: str) -> dict:
    """Check that `values` names fields of dataclass `cls` with values of their types (overrides)."""
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{what}' must be a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) in '{what}': {unknown}; known: {sorted(hints)}")
    checked = {}
    for name, value in values.items():
        tp = hints[name]
        if typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)  # YAML has no tuples
        checked[name] = _check_type(value, tp, f"{what}.{name}")
    return checked


@dataclass
class DataConfig:
    root: str = "runs/data/train"  # scene folder of the training split
    val_root: str = ""  # "" = the same root (its val split)
    format: str = "scannet"  # scannet | replica
    views: int = 4  # V context views
    targets: int = 2  # rendered target views per step
    width: int = 160
    height: int = 120
    pool_factor: float = 2.5  # random contexts come from the ceil(pool_factor * (V + T - 1)) nearest frames
    num_workers: int = 1
    val_context_stride: int = 1  # validation contexts: the V nearest frames (1) or GSNeRF's every-5th (5)
    # more training sets mixed in, each {root, width, height[, repeat]} (its train split), e.g. another
    # image size for multi-scale training; windows are drawn from all sets in proportion to their frame
    # counts, an extra set's counted `repeat` times (default 1)
    extra: list = field(default_factory=list)
    val_width: int = 0  # validation size; 0 = width x height
    val_height: int = 0
    # training windows only (never validation): mirror a window's world and images with this chance, and
    # jitter its colours by factors in [1 - s, 1 + s] (gssplat_ros.data.augment)
    flip_prob: float = 0.0
    color_jitter: float = 0.0


@dataclass
class OptimConfig:
    lr: float = 1e-3
    steps: int = 3000  # stop after this many optimiser steps ...
    max_minutes: float = 0.0  # ... or after this many minutes (0 = no time limit)
    warmup_steps: int = 50
    final_lr_fraction: float = 0.05  # cosine decay to lr * this
    grad_clip: float = 0.5
    # > 0: also keep an exponential moving average of the weights (decay per step, e.g. 0.998); then
    # validation, `best` and the `ema` checkpoint use the average, `last` stays the raw weights
    ema_decay: float = 0.0


@dataclass
class TrainConfig:
    model_preset: str = "tiny"  # tiny | paper
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields, e.g. {depth_mode: estimated}
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss_overrides: dict = field(default_factory=dict)  # LossConfig fields
    out_dir: str = "runs/train/tiny_sensor"
    seed: int = 0
    val_every: int = 300
    val_windows: int = 16  # validation windows (one target each) per evaluation
    ckpt_every: int = 300
    log_every: int = 10
    render_backend: str = "cpu"
    threads: int = 0  # torch threads; 0 = torch's default
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # where the network, the windows and the renders live
    # bf16: the encoder's forward runs under CUDA autocast in bfloat16; its outputs return to float32 before
    # the Gaussians are rendered (projection and blending stay fp32). none: fp32 throughout
    amp: Literal["none", "bf16"] = "none"
    init_from: str = ""  # start from these weights (checkpoint stem); missing keys keep their initialisation
    # full: render losses; semantic2d: the context views' 2D labels only; depth: the cost volume's depth loss only
    # (estimated mode); the last two skip rendering
    stage: Literal["full", "semantic2d", "depth"] = "full"
    trainable: list[str] = field(default_factory=list)  # module-name prefixes to train (others frozen); [] = all
    # > 0: the semantic2d loss and validation fuse the semantic-Gaussian logits of the full-size pass and one
    # pass at this width's power-of-two fraction of the window (as `semantic_scales: auto` does at inference
    # for a checkpoint with this semantic_reference_width); windows narrower than twice it stay single-scale
    semantic_reference_width: int = 0
    # the share of training windows whose semantic branch runs without its world-geometry cues (height,
    # tilt), as `gssplat eval --ablate-geometry` does: the branch has to learn appearance as well
    geometry_dropout: float = 0.0


def _check_type(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"config key '{key}' must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
        return _check_type(value, next(a for a in typing.get_args(tp) if a is not type(None)), key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    base = origin or tp
    if isinstance(base, type) and not isinstance(value, base):
        raise ConfigError(f"config key '{key}' must be {getattr(base, '__name__', base)}, got {value!r}")
    return value


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a dict, recursively; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(value, tp, prefix + name)
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a.b=value` (value parsed as YAML) into a nested dict."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_typed_config(path: Optional[Union[str, Path]], cls, overrides: Optional[list[str]] = None):
    """YAML file (or None for defaults) + overrides -> dataclass instance of `cls`."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return from_dict(cls, apply_overrides(data, overrides or []))
