"""The ROS-free pipeline: keyframe window -> encoder runtime -> Gaussians -> renderer.

Usage:
    pipe = Pipeline(PipelineConfig(window_size=4, model_width=160, model_height=120))
    for frame in frames:                       # gssplat_ros.window.Frame
        if pipe.add_frame(frame) and pipe.window_ready():
            pred = pipe.predict(pipe.snapshot())
            out = pipe.render(pred, frame.K, frame.world_from_cam, 320, 240)   # RenderResult
The node calls exactly these methods; `predict` and `render` are the heavy ones (worker thread).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from gssplat_ros.cameras import Cameras
from gssplat_ros.config import ConfigError, check_settings, setting
from gssplat_ros.gaussian_map import GaussianMap
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.prediction import EncoderInputs, Prediction
from gssplat_ros.render import RenderSettings, check_backend, colour_settings, render
from gssplat_ros.runtime.semantic_scales import AUTO, check_scaled_size, parse_scales
from gssplat_ros.runtime_factory import make_runtime
from gssplat_ros.window import Frame, FrameError, FrameLimits, KeyframeWindow, Window

log = logging.getLogger(__name__)

UNLABELED = 255  # label id for pixels with no semantic Gaussian coverage

__all__ = ["Frame", "FrameError", "Pipeline", "PipelineConfig", "RenderResult", "Window"]


@dataclass
class PipelineConfig:
    """Every setting of the ROS-free pipeline; the node exposes each one as a parameter of the same name."""

    checkpoint: str = setting("", "model checkpoint (X.safetensors + X.json); empty = the shipped weights for the "
                                  "depth mode")
    device: str = setting("auto", "where the encoder runs", choices=("cpu", "cuda", "auto"))
    depth_mode: str = setting("auto", "sensor, estimated or auto (sensor when every keyframe carries depth)",
                              choices=("sensor", "estimated", "auto"))
    runtime: str = setting("torch", "encoder runtime", choices=("torch", "onnxruntime", "tensorrt", "auto"))
    precision: str = setting("auto", "exported encoder precision: auto (the runtime's default: fp32, TensorRT "
                                     "fp16), fp32, fp16 (onnxruntime, TensorRT) or int8 (onnxruntime on the CPU, "
                                     "quantised at first use); torch runs fp32",
                             choices=("auto", "fp32", "fp16", "int8"))
    render_backend: str = setting("auto", "renderer: cpu (numba), gsplat (CUDA) or auto",
                                  choices=("auto", "cpu", "gsplat"))
    window_size: int = setting(4, "V, the number of keyframes in the window", limits=(2, 32))
    # images are resized to the model size (intrinsics scaled)
    model_width: int = setting(160, "model input width, pixels (divisible by 4)", limits=(8, 4096))
    model_height: int = setting(120, "model input height, pixels (divisible by 4)", limits=(8, 4096))
    keyframe_translation_m: float = setting(0.05, "new keyframe after this much translation, metres",
                                            limits=(0.0, 100.0))
    keyframe_rotation_deg: float = setting(5.0, "new keyframe after this much rotation, degrees",
                                           limits=(0.0, 180.0))
    max_input_pixels: int = setting(4096 * 2160, "larger input images are dropped (a 4K frame still passes)",
                                    limits=(1024, 100_000_000))
    max_abs_position_m: float = setting(100_000.0, "frames whose camera is further than this from the world "
                                                   "origin (any axis) are dropped (bad_pose), metres",
                                        limits=(1.0, 1e9))
    min_depth_m: float = setting(0.05, "input depth below this is invalid, metres", limits=(0.0, 1000.0))
    max_depth_m: float = setting(100.0, "input depth above this is invalid, metres", limits=(0.01, 100_000.0))
    min_valid_depth_fraction: float = setting(0.05, "frames with a smaller fraction of valid depth pixels are "
                                                    "dropped (depth_invalid)", limits=(0.0, 1.0))
    min_opacity: float = setting(0.05, "Gaussians below this opacity are left out of clouds and the fused map",
                                 limits=(0.0, 1.0))
    label_min_alpha: float = setting(0.5, "rendered pixels below this alpha are unlabelled (255)",
                                     limits=(0.0, 1.0))
    near_m: float = setting(0.05, "renderer near plane, metres", limits=(0.0, 1000.0))
    far_m: float = setting(100.0, "renderer far plane, metres", limits=(0.001, 100000.0))
    fuse_map: bool = setting(False, "merge windows into a bounded global map")
    map_voxel_m: float = setting(0.05, "fused-map de-duplication voxel, metres", limits=(0.001, 10.0))
    map_max_gaussians: int = setting(500_000, "fused-map size cap (oldest evicted first)",
                                     limits=(1000, 100_000_000))
    # the semantic height cues assume the floor at z = 0 (docs/results.md, "Floor height"); the encoder sees
    # the world moved by -floor_z_m, outputs are moved back
    floor_z_m: float = setting(0.0, "world z of the floor, metres: the shipped semantic models assume a z-up "
                                    "world with the floor at 0", limits=(-10000.0, 10000.0))
    semantic_scales: str = setting("auto", "average the class logits over encoder passes at these image scales "
                                           "('1.0 0.5'); auto: the checkpoint's semantic_reference_width decides "
                                           "(one scale at 160x120)")

    def validate(self) -> PipelineConfig:
        """Raise ConfigError naming the first setting that is not allowed; returns self."""
        check_settings(self)
        if self.model_width % 4 or self.model_height % 4:
            raise ConfigError(f"model size must be divisible by 4, got {self.model_width}x{self.model_height}")
        if self.min_depth_m >= self.max_depth_m:
            raise ConfigError(f"min_depth_m ({self.min_depth_m}) must be below max_depth_m ({self.max_depth_m})")
        if self.near_m >= self.far_m:
            raise ConfigError(f"near_m ({self.near_m}) must be below far_m ({self.far_m})")
        try:
            scales = parse_scales(self.semantic_scales)
            if scales != AUTO:
                check_scaled_size(scales, self.model_width, self.model_height)
        except ValueError as exc:
            raise ConfigError(f"'semantic_scales': {exc}") from None
        return self


@dataclass
class RenderResult:
    rgb: np.ndarray  # [H, W, 3] uint8
    labels: np.ndarray  # [H, W] uint8 class ids, 255 = unlabeled
    confidence: np.ndarray  # [H, W] float32 softmax max
    depth: np.ndarray  # [H, W] float32 metres, NaN where empty
    alpha: np.ndarray  # [H, W] float32
    timings_ms: dict = field(default_factory=dict)


class Pipeline:
    """Owns the keyframe window, the encoder runtimes and the renderer settings."""

    def __init__(self, cfg: Optional[PipelineConfig] = None):
        self.cfg = cfg = (cfg or PipelineConfig()).validate()
        self.window = KeyframeWindow(
            size=cfg.window_size,
            width=cfg.model_width,
            height=cfg.model_height,
            min_translation_m=cfg.keyframe_translation_m,
            min_rotation_deg=cfg.keyframe_rotation_deg,
            limits=FrameLimits(max_pixels=cfg.max_input_pixels, max_abs_position_m=cfg.max_abs_position_m,
                               min_depth_m=cfg.min_depth_m, max_depth_m=cfg.max_depth_m,
                               min_valid_depth_fraction=cfg.min_valid_depth_fraction),
        )
        check_backend(cfg.render_backend)  # before loading a model: a missing renderer is a start-up error
        self._runtimes: dict[str, object] = {}
        # Load eagerly what we know we need, so a bad checkpoint fails at start-up, not mid-stream.
        for mode in ("sensor", "estimated") if cfg.depth_mode == "auto" else (cfg.depth_mode,):
            if cfg.depth_mode == "auto" and cfg.checkpoint:
                mode = None  # a user checkpoint: its own depth mode decides
            self._runtime_for(mode)
            if mode is None:
                break
        self.render_settings = RenderSettings(backend=cfg.render_backend, near_m=cfg.near_m, far_m=cfg.far_m)
        self.map = GaussianMap(cfg.map_voxel_m, cfg.map_max_gaussians) if cfg.fuse_map else None

    # ----------------------------------------------------------------- runtimes
    def _runtime_for(self, depth_mode: Optional[str]):
        key = depth_mode or "checkpoint"
        if key not in self._runtimes:
            self._runtimes[key] = make_runtime(
                self.cfg.runtime,
                checkpoint=self.cfg.checkpoint,
                depth_mode=depth_mode or "sensor",
                device=self.cfg.device,
                views=self.cfg.window_size,
                width=self.cfg.model_width,
                height=self.cfg.model_height,
                semantic_scales=self.cfg.semantic_scales,
                precision=self.cfg.precision,
            )
        return self._runtimes[key]

    def runtime_for_window(self, window: Window):
        """The runtime matching the window: sensor depth when every keyframe carries depth (auto)."""
        if self.cfg.checkpoint and self.cfg.depth_mode == "auto":
            return self._runtime_for(None)
        mode = self.cfg.depth_mode
        if mode == "auto":
            mode = "sensor" if window.has_depth else "estimated"
        return self._runtime_for(mode)

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self._runtimes.values())).info.class_names

    @property
    def num_classes(self) -> int:
        return next(iter(self._runtimes.values())).info.num_classes

    @property
    def device(self) -> torch.device:
        return next(iter(self._runtimes.values())).info.device

    # Settings the pipeline reads at every use, so a running pipeline can take new values.
    LIVE_SETTINGS = ("keyframe_translation_m", "keyframe_rotation_deg", "min_opacity", "label_min_alpha")

    def apply_settings(self, **changes) -> None:
        """Change live settings (LIVE_SETTINGS) of a running pipeline; others raise ConfigError."""
        fixed = sorted(set(changes) - set(self.LIVE_SETTINGS))
        if fixed:
            raise ConfigError(f"setting(s) {fixed} cannot change while the pipeline runs")
        self.cfg = dataclasses.replace(self.cfg, **changes).validate()
        self.window.min_translation_m = self.cfg.keyframe_translation_m
        self.window.min_rotation_deg = self.cfg.keyframe_rotation_deg

    # ----------------------------------------------------------------- window
    def add_frame(self, frame: Frame) -> bool:
        """Offer a frame to the window; True when it became a keyframe. Raises FrameError."""
        if self.cfg.depth_mode == "estimated" and frame.depth is not None:
            frame = dataclasses.replace(frame, depth=None)  # unused: its validity must not drop the frame
        return self.window.offer(frame)

    def reset(self) -> None:
        self.window.reset()

    def window_ready(self) -> bool:
        return self.window.ready()

    def snapshot(self) -> Window:
        return self.window.snapshot()

    # ----------------------------------------------------------------- heavy work
    def warm_up(self) -> float:
        """Run every loaded encoder once on a synthetic window and render its Gaussians: loads (or, on a
        fresh install, compiles) the numba kernels and builds runtime sessions before the first real
        window, instead of during it. Returns the seconds it took."""
        t0 = time.perf_counter()
        cfg = self.cfg
        w, h, v = cfg.model_width, cfg.model_height, cfg.window_size
        K = torch.tensor([[float(w), 0.0, w / 2], [0.0, float(w), h / 2], [0.0, 0.0, 1.0]]).expand(v, 3, 3)
        world_from_cam = torch.eye(4).repeat(v, 1, 1)
        world_from_cam[:, 0, 3] = torch.arange(v, dtype=torch.float32) * 0.05  # a short sideways baseline
        cams = Cameras(K.contiguous(), world_from_cam, w, h)
        images = torch.full((v, 3, h, w), 0.5)
        for runtime in list(self._runtimes.values()):
            depth = torch.full((v, 1, h, w), 2.0) if runtime.info.depth_mode == "sensor" else None
            with torch.inference_mode():
                pred = Prediction.from_outputs(runtime(EncoderInputs.from_cameras(images, cams, depth)),
                                               runtime.info.colour_gaussians)
            self.render(pred, K[0].numpy(), world_from_cam[0].numpy(), w, h)
        return time.perf_counter() - t0

    def predict(self, window: Window) -> Prediction:
        """Run the encoder on a window snapshot; updates the fused map when enabled."""
        runtime = self.runtime_for_window(window)
        if runtime.info.depth_mode == "sensor" and not window.has_depth:
            raise FrameError("missing_depth", "the sensor-depth model needs depth on every keyframe")
        depth = window.depths() if runtime.info.depth_mode == "sensor" else None
        cameras = window.cameras()
        floor = torch.tensor([0.0, 0.0, self.cfg.floor_z_m]) if self.cfg.floor_z_m else None
        if floor is not None:
            cameras = cameras.translated(-floor)
        inputs = EncoderInputs.from_cameras(window.images(), cameras, depth)
        pred = Prediction.from_outputs(runtime(inputs), runtime.info.colour_gaussians)
        if floor is not None:
            pred = Prediction(pred.color.translated(floor), pred.semantic.translated(floor), pred.depth,
                              pred.colour_gaussians)
        if self.map is not None:
            self.map.update(self.cloud(pred))
        return pred

    def cloud(self, prediction: Prediction) -> Gaussians:
        """Colour geometry + semantic logits, without near-transparent or non-finite Gaussians."""
        g = prediction.for_cloud()
        return g[(g.opacities >= self.cfg.min_opacity) & g.finite_mask()]

    def render(
        self, prediction: Prediction, K: np.ndarray, world_from_cam: np.ndarray, width: int, height: int,
        semantic: bool = True,
    ) -> RenderResult:
        """Render RGB, labels, confidence and depth at a camera (K for width x height).

        semantic=False skips the semantic pass (labels all UNLABELED, confidence 0): the node does so
        while nobody subscribes to its semantic images, which saves about 40% of the render time.
        """
        dev = prediction.color.device
        cams = Cameras(
            torch.as_tensor(np.asarray(K), dtype=torch.float32, device=dev),
            torch.as_tensor(np.asarray(world_from_cam), dtype=torch.float32, device=dev),
            width,
            height,
        ).validate()
        timings = {}
        t0 = time.perf_counter()
        with torch.inference_mode():
            color = render(prediction.color, cams, colour_settings(self.render_settings, prediction.observed_colour))
            t1 = time.perf_counter()
            sem = render(prediction.semantic, cams, self.render_settings) if semantic else None
            t2 = time.perf_counter()
        timings["render_rgb"] = (t1 - t0) * 1e3
        alpha = color.alpha[0]  # [H, W]
        if sem is not None:
            timings["render_semantic"] = (t2 - t1) * 1e3
            probs = torch.softmax(sem.features[0], dim=-1)  # [H, W, C]
            confidence, labels = probs.max(dim=-1)
            labels = torch.where(sem.alpha[0] >= self.cfg.label_min_alpha, labels, torch.full_like(labels, UNLABELED))
        else:
            labels = torch.full((height, width), UNLABELED, dtype=torch.int64)
            confidence = torch.zeros(height, width)
        depth = torch.where(alpha > 1e-3, color.depth[0], torch.full_like(alpha, float("nan")))
        return RenderResult(
            rgb=(color.rgb[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy(),
            labels=labels.to(torch.uint8).cpu().numpy(),
            confidence=confidence.float().cpu().numpy(),
            depth=depth.float().cpu().numpy(),
            alpha=alpha.float().cpu().numpy(),
            timings_ms=timings,
        )
