"""One encoder-runtime interface: torch (here), onnxruntime and TensorRT (runtime/*.py).

Usage:
    runtime = make_runtime("torch", checkpoint="", depth_mode="sensor", device="cpu")
    outputs = runtime(EncoderInputs.from_cameras(images, cams, depth))   # name -> [V, H, W, ...]

Every runtime returns the tensors named in `gssplat_ros.prediction.OUTPUT_NAMES` on `runtime.device`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Protocol, Union

import torch
from torch import Tensor

from gssplat_ros.prediction import OUTPUT_NAMES, EncoderInputs

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "int8")  # of the exported graph; auto: the runtime's default; torch runs fp32


@dataclass
class RuntimeInfo:
    name: str  # torch | onnxruntime | tensorrt
    depth_mode: str  # sensor | estimated
    num_classes: int
    class_names: tuple[str, ...]
    device: torch.device


class EncoderRuntime(Protocol):
    info: RuntimeInfo

    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]: ...


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


class TorchRuntime:
    """Eager PyTorch: the reference runtime, and the one used for training and evaluation."""

    def __init__(self, net: torch.nn.Module, model_cfg, device: torch.device):
        self.net = net.to(device).eval()
        # oneDNN convolutions run ~15% faster on CPU with NHWC weights (sensor model, V=4 160x120:
        # 169 -> 145 ms per window); activations follow the weights' layout. Conv2d only: the cost
        # volume's 3-D layers keep their layout.
        self.channels_last = device.type == "cpu"
        if self.channels_last:
            for module in self.net.modules():
                if isinstance(module, torch.nn.Conv2d):
                    module.to(memory_format=torch.channels_last)
        self.cfg = model_cfg
        names = tuple(getattr(model_cfg, "class_names", ()) or ())
        self.info = RuntimeInfo("torch", model_cfg.depth_mode, model_cfg.num_classes, names, device)

    @torch.inference_mode()
    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]:
        inputs = inputs.to(self.info.device)
        if self.channels_last:
            inputs.images = inputs.images.contiguous(memory_format=torch.channels_last)
        depth = inputs.depth if self.info.depth_mode == "sensor" else None
        out = self.net(inputs.images, inputs.K, inputs.world_from_cam, inputs.cam_from_world, depth)
        return {name: out[name] for name in OUTPUT_NAMES}


# runtime name -> "module:factory"; factory(checkpoint_stem, model_cfg, device, **kw) -> EncoderRuntime
_EXTRA_RUNTIMES = {
    "onnxruntime": "gssplat_ros.runtime.onnx_runtime:make_onnxruntime",
    "tensorrt": "gssplat_ros.runtime.tensorrt_runtime:make_tensorrt",
}


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
    export/quantize.py). torch runs fp32 and takes only "auto" or "fp32".
    """
    from gssplat_ros.model.checkpoint import load_model  # lazy: keeps `import runtime` light
    from gssplat_ros.weights import checkpoint_stem, default_checkpoint

    stem = checkpoint_stem(checkpoint) if checkpoint else default_checkpoint(depth_mode)
    if semantic_scales != (1.0,):
        from gssplat_ros.runtime.semantic_scales import (
            MultiScaleSemantics,
            check_scaled_size,
            reference_width,
            resolve_scales,
        )

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
                module, factory = _EXTRA_RUNTIMES[candidate].split(":")
                try:
                    return getattr(importlib.import_module(module), factory)(
                        stem, dev, views=views, width=width, height=height, **precision_kw
                    )
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
    module, factory = _EXTRA_RUNTIMES[name].split(":")
    return getattr(importlib.import_module(module), factory)(stem, dev, views=views, width=width, height=height,
                                                             **precision_kw)  # fmt: skip


def _auto_chain(first: str) -> list[str]:
    """tensorrt -> onnxruntime (when its CUDA provider exists) -> torch, starting at `first`."""
    chain = ["tensorrt"] if first == "tensorrt" else []
    try:
        import onnxruntime

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
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                return "onnxruntime"
        except ImportError:
            pass
    log.info("runtime 'auto' -> torch on %s", device)
    return "torch"
