"""The one place that picks an encoder runtime for a checkpoint and asks gssplat_ros.export to build a
missing artifact (an ONNX graph, a TensorRT engine): runtimes only load, the exporter only builds.

Usage:
    runtime = make_runtime("torch", checkpoint="", depth_mode="sensor", device="cpu")
    runtime = make_runtime("onnxruntime", device="cpu", views=4, width=160, height=120)   # exports on first use
    outputs = runtime(EncoderInputs.from_cameras(images, cams, depth))   # name -> [V, H, W, ...]
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import torch

from gssplat_ros.errors import CheckpointError
from gssplat_ros.export.onnx_cache import onnx_for_checkpoint
from gssplat_ros.export.tensorrt_build import BuildConfig, build_engine
from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.runtime import PRECISIONS, EncoderRuntime, TorchRuntime, resolve_device
from gssplat_ros.runtime.engine_cache import default_cache_dir
from gssplat_ros.runtime.onnx_runtime import OnnxRuntimeEncoder
from gssplat_ros.runtime.semantic_scales import MultiScaleSemantics, check_scaled_size, reference_width, resolve_scales
from gssplat_ros.runtime.tensorrt_runtime import TensorRTEncoder, require_tensorrt
from gssplat_ros.weights import checkpoint_stem, default_checkpoint

log = logging.getLogger(__name__)


def make_runtime(
    name: str = "torch",
    checkpoint: str = "",
    depth_mode: str = "sensor",
    device: str = "auto",
    views: Optional[int] = None,
    width: Optional[int] = None,
    height: Optional[int] = None,
    semantic_scales: Union[str, Sequence[float]] = (1.0,),
    precision: str = "auto",
) -> EncoderRuntime:
    """Build an encoder runtime from a checkpoint ("" = the shipped weights for `depth_mode`).

    `views`, `width`, `height` fix the shape for runtimes whose engines are shape-specialised.
    `semantic_scales` other than (1.0,) averages the class logits over several image scales, "auto"
    picks them from the checkpoint and `width` (runtime/semantic_scales.py); ValueError for scales
    the window size cannot take. `precision` picks the exported graph's: "auto" (each runtime's default:
    fp32, TensorRT fp16), "fp32", "fp16" (onnxruntime, TensorRT), "int8" (onnxruntime on the CPU:
    gssplat_ros/export/quantize.py). torch runs fp32 and takes only "auto" or "fp32".
    """
    stem = checkpoint_stem(checkpoint) if checkpoint else default_checkpoint(depth_mode)
    if semantic_scales != (1.0,):
        scales = resolve_scales(semantic_scales, reference_width(stem), width, height)  # checked before loading a model
        if scales != (1.0,):
            if width and height:
                check_scaled_size(scales, width, height)
            inner = make_runtime(name, checkpoint, depth_mode, device, views, width, height, precision=precision)
            return MultiScaleSemantics(inner, scales)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dev = resolve_device(device)
    precision_kw = {} if precision == "auto" else {"precision": precision}
    if name == "auto":
        name = _pick_auto(dev)
        if name != "torch":  # auto *tries*: a failed engine build or session falls through to the next runtime
            for candidate in _auto_chain(name):
                try:
                    return _EXTRA_RUNTIMES[candidate](stem, dev, views=views, width=width, height=height,
                                                      **precision_kw)  # fmt: skip
                except Exception as exc:  # noqa: BLE001
                    log.warning("runtime 'auto': %s failed (%s: %s); trying the next", candidate, type(exc).__name__, exc)
            name = "torch"
        if precision not in ("auto", "fp32"):
            log.warning("runtime 'auto' fell back to torch, which runs fp32 (precision %s not applied)", precision)
            precision = "fp32"
    if name == "torch":
        if precision not in ("auto", "fp32"):
            needs = "onnxruntime (on the CPU)" if precision == "int8" else "onnxruntime or tensorrt"
            raise ValueError(f"the torch runtime runs fp32; {precision} needs runtime {needs}")
        net, cfg = load_model(stem)
        return TorchRuntime(net, cfg, dev)
    if name not in _EXTRA_RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose torch, onnxruntime, tensorrt or auto")
    return _EXTRA_RUNTIMES[name](stem, dev, views=views, width=width, height=height, **precision_kw)


def _auto_chain(first: str) -> list[str]:
    """tensorrt -> onnxruntime (when its CUDA provider exists) -> torch, starting at `first`."""
    chain = ["tensorrt"] if first == "tensorrt" else []
    try:
        import onnxruntime  # lazy: optional; only asked which providers it has

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            chain.append("onnxruntime")
    except ImportError:
        pass
    return chain


def _pick_auto(device: torch.device) -> str:
    """auto: TensorRT, then onnxruntime with CUDA, then torch."""
    if device.type == "cuda":
        if importlib.util.find_spec("tensorrt") is not None:
            return "tensorrt"
        try:
            import onnxruntime  # lazy: optional; only asked which providers it has

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                return "onnxruntime"
        except ImportError:
            pass
    log.info("runtime 'auto' -> torch on %s", device)
    return "torch"


def make_onnxruntime(
    checkpoint_stem: Path,
    device: torch.device,
    views: Optional[int] = None,
    width: Optional[int] = None,
    height: Optional[int] = None,
    precision: str = "fp32",
    cache_dir: Union[str, Path, None] = None,
    threads: Optional[int] = None,
    onnx_path: Union[str, Path, None] = None,
) -> OnnxRuntimeEncoder:
    """The onnxruntime encoder for a checkpoint (make_runtime("onnxruntime", ...)); graphs exported on demand.

    With views, width and height the graph is exported and loaded now (a bad checkpoint fails at
    start-up); otherwise on the first window.
    """
    try:
        import onnxruntime  # noqa: F401  # lazy: optional; checked here for one clear error
    except ImportError:
        raise RuntimeError("runtime 'onnxruntime' needs the onnxruntime package (pip install onnxruntime)") from None
    try:
        cfg = ModelConfig.from_dict(read_checkpoint_meta(checkpoint_stem)["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(checkpoint_stem).with_suffix('.json')}: bad model config: {exc}") from None
    def onnx_for_shape(views: int, width: int, height: int, precision: str, scatter: str) -> Path:
        return onnx_for_checkpoint(checkpoint_stem, views, width, height, precision, cache_dir, scatter)

    runtime = OnnxRuntimeEncoder(onnx_for_shape, cfg, device, precision, threads, onnx_path)
    if views and width and height:
        runtime.warm(views, width, height)
    return runtime


def make_tensorrt(
    checkpoint_stem: Path,
    device: torch.device,
    views: Optional[int] = None,
    width: Optional[int] = None,
    height: Optional[int] = None,
    precision: Optional[str] = None,
    cache_dir: Union[str, Path, None] = None,
    workspace_mb: int = 2048,
    force_rebuild: Optional[bool] = None,
) -> TensorRTEncoder:
    """The TensorRT encoder for a checkpoint (make_runtime("tensorrt", ...)); builds the engine now when the
    shape is given (so a start-up either has its engine or fails), otherwise on the first window."""
    require_tensorrt()  # the one clear error, before touching the checkpoint
    cfg = ModelConfig.from_dict(read_checkpoint_meta(checkpoint_stem)["config"])
    precision = precision or os.environ.get("GSSPLAT_TRT_PRECISION", "fp16")
    if force_rebuild is None:
        force_rebuild = os.environ.get("GSSPLAT_FORCE_ENGINE_UPDATE", "") not in ("", "0", "false")
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()

    def onnx_for_shape(views: int, width: int, height: int) -> Path:
        return onnx_for_checkpoint(checkpoint_stem, views, width, height, "fp32", cache_root)

    def build(onnx_path: Path, engine_path: Path, precision: str, workspace_mb: int, timing_cache: Path) -> None:
        build_engine(onnx_path, engine_path, BuildConfig(precision, workspace_mb, timing_cache))

    runtime = TensorRTEncoder(checkpoint_stem, onnx_for_shape, build, cfg, device, precision, cache_root, workspace_mb,
                              force_rebuild)  # fmt: skip
    if views and width and height:
        runtime.warm(views, width, height)
    return runtime


# runtime name -> factory(checkpoint_stem, device, views=, width=, height=[, precision=]) -> EncoderRuntime
_EXTRA_RUNTIMES = {"onnxruntime": make_onnxruntime, "tensorrt": make_tensorrt}
