"""TensorRT encoder: a cached, shape-specialised engine per window shape, run on torch CUDA memory.

Usage:
    runtime = make_runtime("tensorrt", checkpoint="runs/a/tiny_sensor", device="cuda", views=4,
                           width=160, height=120)
    outputs = runtime(EncoderInputs.from_cameras(images, cams, depth))    # name -> [V, H, W, ...] on cuda

First use of a shape asks the runtime factory's callbacks for the fp32 ONNX (exported by
gssplat_ros/export/onnx_cache.py) and an engine built from it (gssplat_ros/export/tensorrt_build.py; minutes,
logged before it starts) that is cached under the key (ONNX sha256,
TensorRT version, GPU name, precision, shape): later starts reuse it. Precision defaults to fp16 (FP16
trunk, fp32 geometry); GSSPLAT_TRT_PRECISION=fp32 overrides, and GSSPLAT_FORCE_ENGINE_UPDATE=1
rebuilds. Without TensorRT, construction raises one TensorRTUnavailable error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from gssplat_ros.prediction import OUTPUT_NAMES, EncoderInputs
from gssplat_ros.runtime import RuntimeInfo
from gssplat_ros.runtime.engine_cache import EngineCache, EngineKey, default_cache_dir, file_sha256

log = logging.getLogger(__name__)

Shape = tuple[int, int, int]  # (V, H, W)
# (onnx path, engine path, precision, workspace MB, timing cache path) -> None; writes the engine file
EngineBuilder = Callable[[Path, Path, str, int, Path], None]
GRAPH_TO_CONTRACT = {("depth_out" if n == "depth" else n): n for n in OUTPUT_NAMES}


class TensorRTUnavailable(RuntimeError):
    """TensorRT (the `tensorrt` Python package, 10.x) is not installed or cannot load."""



def require_tensorrt():
    """Import and return the `tensorrt` module, or raise TensorRTUnavailable with one clear message."""
    try:
        import tensorrt as trt  # lazy: TensorRT is optional (CUDA machines only)
    except ImportError as exc:
        raise TensorRTUnavailable(
            "TensorRT is not available (cannot import 'tensorrt': "
            f"{exc}); install TensorRT 10 (pip install tensorrt) on a machine with an NVIDIA GPU, "
            "or use the onnxruntime or torch runtime"
        ) from None
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} found; gssplat_ros needs TensorRT 10 or newer")
    return trt


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int64: torch.int64,
             trt.bool: torch.bool, trt.int8: torch.int8, trt.uint8: torch.uint8}  # fmt: skip
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise TypeError(f"unsupported TensorRT tensor type {dtype}")
    return table[dtype]


class _Engine:
    """One deserialized engine with its execution context and I/O names."""

    def __init__(self, trt, runtime, path: Path, device: torch.device):
        with torch.cuda.device(device):
            self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                raise RuntimeError(f"TensorRT could not deserialize {path}")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        self.shapes = {n: tuple(self.engine.get_tensor_shape(n)) for n in names}
        unknown = [n for n in self.outputs if n not in GRAPH_TO_CONTRACT]
        if unknown:
            raise RuntimeError(f"engine {path.name} has outputs {unknown} outside the encoder contract")
        self.path = path


class TensorRTEncoder:
    """EncoderRuntime over TensorRT engines, one per window shape."""

    def __init__(
        self,
        checkpoint_stem: Path,
        onnx_for_shape: Callable[[int, int, int], Path],
        build_engine: EngineBuilder,
        model_cfg,
        device: torch.device,
        precision: str = "fp16",
        cache_dir: Union[str, Path, None] = None,
        workspace_mb: int = 2048,
        force_rebuild: bool = False,
    ):
        """onnx_for_shape(views, width, height) -> the fp32 ONNX path; build_engine(onnx_path, engine_path,
        precision, workspace_mb, timing_cache): both from gssplat_ros.export, passed in by the runtime factory."""
        self.trt = trt = require_tensorrt()
        if device.type != "cuda":
            raise ValueError(f"runtime 'tensorrt' needs a CUDA device, got {device}")
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"TensorRT precision must be fp32 or fp16, got {precision!r}")
        self.stem = Path(checkpoint_stem)
        self.onnx_for_shape = onnx_for_shape
        self.build_engine = build_engine
        self.cfg = model_cfg
        self.precision = precision
        self.cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache = EngineCache(self.cache_root / "engines")
        self.workspace_mb = workspace_mb
        self.force_rebuild = force_rebuild
        names = tuple(model_cfg.class_names or ())
        self.info = RuntimeInfo("tensorrt", model_cfg.depth_mode, model_cfg.num_classes, names, device,
                                model_cfg.colour_gaussians)
        self.logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")  # the ScatterElements-with-reduction plugin
        self.runtime = trt.Runtime(self.logger)
        self.gpu_name = torch.cuda.get_device_name(device)
        self._engines: dict[Shape, _Engine] = {}

    # ------------------------------------------------------------------ engines
    def _timing_cache(self) -> Path:
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.gpu_name}_trt{self.trt.__version__}")
        return self.cache.root / f"timing_{tag}.cache"

    def engine(self, shape: Shape) -> _Engine:
        if shape not in self._engines:
            num_views, height, width = shape
            onnx_path = self.onnx_for_shape(num_views, width, height)
            key = EngineKey(file_sha256(onnx_path), str(self.trt.__version__), self.gpu_name, self.precision,
                            num_views, width, height)  # fmt: skip
            timing_cache = self._timing_cache()

            def build(out: Path) -> None:
                self.build_engine(onnx_path, out, self.precision, self.workspace_mb, timing_cache)

            path, built = self.cache.get_or_build(self.stem.name, key, build, force=self.force_rebuild)
            try:
                self._engines[shape] = _Engine(self.trt, self.runtime, path, self.info.device)
            except RuntimeError:
                if built:
                    raise
                log.warning("cached engine %s does not load; rebuilding it", path)
                path, _ = self.cache.get_or_build(self.stem.name, key, build, force=True)
                self._engines[shape] = _Engine(self.trt, self.runtime, path, self.info.device)
        return self._engines[shape]

    def warm(self, views: int, width: int, height: int) -> None:
        self.engine((views, height, width))

    # ------------------------------------------------------------------ inference
    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]:
        device = self.info.device
        num_views, _, height, width = inputs.images.shape
        eng = self.engine((num_views, height, width))
        feeds = inputs.as_dict()
        keep = []
        for name in eng.inputs:
            if name not in feeds:
                raise ValueError(f"the {self.info.depth_mode}-depth engine needs input '{name}'")
            t = feeds[name].to(device=device, dtype=eng.dtypes[name]).contiguous()
            if tuple(t.shape) != eng.shapes[name]:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, the engine takes {eng.shapes[name]}")
            keep.append(t)  # alive until the stream has consumed it
            eng.context.set_tensor_address(name, t.data_ptr())
        outs = {}
        for name in eng.outputs:
            t = torch.empty(eng.shapes[name], dtype=eng.dtypes[name], device=device)
            outs[name] = t
            eng.context.set_tensor_address(name, t.data_ptr())
        stream = torch.cuda.current_stream(device)
        if not eng.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution failed for engine {eng.path.name}")
        return {GRAPH_TO_CONTRACT[n]: outs[n].float() for n in eng.outputs}
