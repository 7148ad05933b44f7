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
from gssplat_ros.gaussian_map import GaussianMap
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.prediction import EncoderInputs, Prediction
from gssplat_ros.render import RenderSettings, check_backend, render
from gssplat_ros.runtime import make_runtime
from gssplat_ros.window import Frame, FrameError, FrameLimits, KeyframeWindow, Window

log = logging.getLogger(__name__)

UNLABELED = 255  # label id for pixels with no semantic Gaussian coverage

__all__ = ["Frame", "FrameError", "Pipeline", "PipelineConfig", "RenderResult", "Window"]


@dataclass
class PipelineConfig:
    checkpoint: str = ""  # "" = the shipped weights for the depth mode
    device: str = "auto"  # cpu | cuda | auto
    depth_mode: str = "auto"  # sensor | estimated | auto (sensor when frames carry depth)
    runtime: str = "torch"  # torch | onnxruntime | tensorrt | auto
    precision: str = "auto"  # of the exported encoder: auto (runtime default) | fp32 | fp16 | int8 (onnxruntime CPU)
    render_backend: str = "auto"  # auto | cpu | gsplat
    window_size: int = 4  # V keyframes
    model_width: int = 160  # images are resized to the model size (intrinsics scaled)
    model_height: int = 120
    keyframe_translation_m: float = 0.05
    keyframe_rotation_deg: float = 5.0
    max_input_pixels: int = 4096 * 2160  # larger images are dropped (a 4K frame still passes)
    max_abs_position_m: float = 100_000.0  # poses further from the origin are dropped (bad_pose)
    min_depth_m: float = 0.05  # input depth outside [min_depth_m, max_depth_m] is invalid
    max_depth_m: float = 100.0
    min_valid_depth_fraction: float = 0.05  # frames with less valid depth are dropped (depth_invalid)
    min_opacity: float = 0.02  # Gaussians below this are dropped from clouds and the map
    label_min_alpha: float = 0.5  # rendered pixels below this alpha are UNLABELED
    near_m: float = 0.05
    far_m: float = 100.0
    fuse_map: bool = False
    map_voxel_m: float = 0.05
    map_max_gaussians: int = 500_000
    # world z of the floor: the semantic model's height cues assume the floor at z = 0 (README,
    # "World-geometry cues"); the encoder sees the world moved by -floor_z_m, outputs are moved back
    floor_z_m: float = 0.0
    # class logits averaged over these image scales: "auto" (the checkpoint's reference width decides;
    # the shipped models at the default 160x120: one scale) or numbers such as "1.0 0.5"
    semantic_scales: str = "auto"


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
        self.cfg = cfg = cfg or PipelineConfig()
        if cfg.depth_mode not in ("sensor", "estimated", "auto"):
            raise ValueError(f"depth_mode must be sensor, estimated or auto, got {cfg.depth_mode!r}")
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
    def device(self) -> torch.device:
        return next(iter(self._runtimes.values())).info.device

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
                pred = Prediction.from_outputs(runtime(EncoderInputs.from_cameras(images, cams, depth)))
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
        pred = Prediction.from_outputs(runtime(inputs))
        if floor is not None:
            pred = Prediction(pred.color.translated(floor), pred.semantic.translated(floor), pred.depth)
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
            color = render(prediction.color, cams, self.render_settings)
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
