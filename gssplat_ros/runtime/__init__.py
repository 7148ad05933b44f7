"""One encoder-runtime interface: torch (here), onnxruntime and TensorRT (runtime/*.py). Runtimes load
artifacts and never build them: gssplat_ros.runtime_factory.make_runtime picks one and asks
gssplat_ros.export for a missing graph or engine.

Usage:
    runtime = make_runtime("torch", checkpoint="", depth_mode="sensor", device="cpu")   # runtime_factory
    outputs = runtime(EncoderInputs.from_cameras(images, cams, depth))   # name -> [V, H, W, ...]

Every runtime returns the tensors named in `gssplat_ros.prediction.OUTPUT_NAMES` on `runtime.device`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

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
    colour_gaussians: str = "learned"  # the model's ModelConfig.colour_gaussians (how its colour set renders)


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
        self.info = RuntimeInfo("torch", model_cfg.depth_mode, model_cfg.num_classes, names, device,
                                model_cfg.colour_gaussians)

    @torch.inference_mode()
    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]:
        inputs = inputs.to(self.info.device)
        if self.channels_last:
            inputs.images = inputs.images.contiguous(memory_format=torch.channels_last)
        depth = inputs.depth if self.info.depth_mode == "sensor" else None
        out = self.net(inputs.images, inputs.K, inputs.world_from_cam, inputs.cam_from_world, depth)
        return {name: out[name] for name in OUTPUT_NAMES}
