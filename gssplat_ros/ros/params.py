"""Node parameters: declared with type, range and description; read once into `NodeConfig`.

Usage:
    cfg = declare_and_read(node)   # raises ParameterError with a clear message for invalid values
Defaults live here and in config/gssplat.yaml (kept equal by a test).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException

from gssplat_ros.pipeline import PipelineConfig
from gssplat_ros.runtime.semantic_scales import AUTO, check_scaled_size, parse_scales

DEFAULT_CLASS_NAMES = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
]


def _default_palette() -> list[int]:
    try:
        from gssplat_ros.data import PALETTE

        return [int(v) for v in PALETTE[:20].reshape(-1)]
    except ImportError:  # pragma: no cover - the data package ships with the node
        return [int((i * 53) % 256) for i in range(60)]


class ParameterError(ValueError):
    """An invalid parameter value; the message names the parameter and what it accepts."""


@dataclass
class NodeConfig:
    # inputs
    pose_source: str = "pose"  # pose (geometry_msgs/PoseStamped) | odom (nav_msgs/Odometry)
    use_depth: bool = True  # subscribe to `depth` and sync it with the image
    qos_profile: str = "sensor_data"  # sensor_data (best effort) | reliable
    qos_depth: int = 5
    sync_queue_size: int = 10
    sync_slop_s: float = 0.05
    sync_reset_jump_back_s: float = 1.0  # a stamp this much older than its input's newest clears the sync queues
    world_frame: str = "map"
    # model / pipeline
    checkpoint: str = ""  # "" = the shipped weights
    device: str = "auto"  # cpu | cuda | auto
    depth_mode: str = "auto"  # sensor | estimated | auto
    runtime: str = "torch"  # torch | onnxruntime | tensorrt | auto
    precision: str = "auto"  # auto | fp32 | fp16 | int8 (of the exported encoder; torch runs fp32)
    render_backend: str = "auto"  # auto | cpu | gsplat
    window_size: int = 4
    model_width: int = 160
    model_height: int = 120
    keyframe_translation_m: float = 0.05
    keyframe_rotation_deg: float = 5.0
    max_input_pixels: int = 4096 * 2160
    max_abs_position_m: float = 100_000.0  # poses further from the world origin are dropped (bad_pose)
    min_depth_m: float = 0.05  # input depth outside [min_depth_m, max_depth_m] is invalid
    max_depth_m: float = 100.0
    min_valid_depth_fraction: float = 0.05  # less valid depth drops the frame (depth_invalid)
    floor_z_m: float = 0.0  # world z of the floor (the semantic height cues assume 0)
    semantic_scales: str = "auto"  # auto | scales such as "1.0 0.5" (class logits averaged over them)
    # outputs
    render_width: int = 0  # 0 = the model size
    render_height: int = 0
    publish_cloud: bool = True
    cloud_min_opacity: float = 0.05
    class_names: list = field(default_factory=lambda: list(DEFAULT_CLASS_NAMES))
    palette: list = field(default_factory=_default_palette)  # flattened RGB triplets, one per class
    # fused map
    fuse_map: bool = False
    map_voxel_m: float = 0.05
    map_max_gaussians: int = 500_000
    map_publish_period_s: float = 2.0
    map_save_dir: str = ""  # ~/save_map writes only inside this directory; "" = saving off
    map_file_name: str = "map.ply"  # the PLY in map_save_dir that ~/save_map (and shutdown) write
    save_map_on_shutdown: bool = False
    # housekeeping
    diagnostics_period_s: float = 1.0
    warn_throttle_s: float = 5.0
    health_window_s: float = 10.0  # diagnostics rates and drop fractions cover this many recent seconds
    stale_input_s: float = 5.0  # no input for this long: diagnostics STALE
    no_render_error_s: float = 10.0  # frames arrive but nothing rendered for this long: diagnostics ERROR

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            checkpoint=self.checkpoint, device=self.device, depth_mode=self.depth_mode, runtime=self.runtime,
            precision=self.precision,
            render_backend=self.render_backend, window_size=self.window_size, model_width=self.model_width,
            model_height=self.model_height, keyframe_translation_m=self.keyframe_translation_m,
            keyframe_rotation_deg=self.keyframe_rotation_deg, max_input_pixels=self.max_input_pixels,
            max_abs_position_m=self.max_abs_position_m, min_depth_m=self.min_depth_m, max_depth_m=self.max_depth_m,
            min_valid_depth_fraction=self.min_valid_depth_fraction,
            min_opacity=self.cloud_min_opacity, fuse_map=self.fuse_map, map_voxel_m=self.map_voxel_m,
            map_max_gaussians=self.map_max_gaussians, floor_z_m=self.floor_z_m,
            semantic_scales=self.semantic_scales,
        )


CHOICES = {
    "pose_source": ("pose", "odom"),
    "qos_profile": ("sensor_data", "reliable"),
    "device": ("cpu", "cuda", "auto"),
    "depth_mode": ("sensor", "estimated", "auto"),
    "runtime": ("torch", "onnxruntime", "tensorrt", "auto"),
    "precision": ("auto", "fp32", "fp16", "int8"),
    "render_backend": ("auto", "cpu", "gsplat"),
}

# name -> (min, max) for numbers
RANGES = {
    "qos_depth": (1, 1000), "sync_queue_size": (1, 1000), "sync_slop_s": (0.0, 10.0), "sync_reset_jump_back_s": (0.0, 3600.0),
    "window_size": (2, 32), "model_width": (32, 4096), "model_height": (32, 4096),
    "keyframe_translation_m": (0.0, 100.0), "keyframe_rotation_deg": (0.0, 180.0),
    "max_input_pixels": (1024, 100_000_000), "floor_z_m": (-10000.0, 10000.0),
    "max_abs_position_m": (1.0, 1e9), "min_depth_m": (0.0, 1000.0), "max_depth_m": (0.01, 100_000.0),
    "min_valid_depth_fraction": (0.0, 1.0),
    "render_width": (0, 8192), "render_height": (0, 8192),
    "cloud_min_opacity": (0.0, 1.0), "map_voxel_m": (0.001, 10.0), "map_max_gaussians": (1000, 100_000_000),
    "map_publish_period_s": (0.1, 3600.0), "diagnostics_period_s": (0.1, 60.0), "warn_throttle_s": (0.0, 3600.0),
    "health_window_s": (1.0, 3600.0), "stale_input_s": (0.1, 3600.0), "no_render_error_s": (0.5, 3600.0),
}

DESCRIPTIONS = {
    "pose_source": "pose: geometry_msgs/PoseStamped on `pose`; odom: nav_msgs/Odometry on `odom` (camera optical frame)",
    "use_depth": "subscribe to `depth` (32FC1 m or 16UC1 mm) and sync it with the image",
    "qos_profile": "input QoS: sensor_data (best effort) or reliable",
    "qos_depth": "input queue depth",
    "sync_queue_size": "approximate-sync queue size per input",
    "sync_slop_s": "approximate-sync slop, seconds",
    "sync_reset_jump_back_s": "a stamp this much older than the newest on its input (a looped bag) clears the "
                              "approximate-sync queues, seconds",
    "world_frame": "frame_id of every output",
    "checkpoint": "model checkpoint (X.safetensors + X.json); empty = the shipped weights",
    "device": "cpu, cuda or auto",
    "depth_mode": "sensor, estimated or auto (sensor when depth arrives)",
    "runtime": "encoder runtime: torch, onnxruntime, tensorrt or auto",
    "precision": "exported encoder precision: auto (the runtime's default: fp32, TensorRT fp16), fp32, fp16 "
                 "(onnxruntime, TensorRT) or int8 (onnxruntime on the CPU, quantised at first use); torch runs fp32",
    "render_backend": "renderer: auto, cpu (numba) or gsplat (CUDA)",
    "window_size": "V, the number of keyframes in the window",
    "model_width": "model input width, pixels (divisible by 4)",
    "model_height": "model input height, pixels (divisible by 4)",
    "keyframe_translation_m": "new keyframe after this much translation",
    "keyframe_rotation_deg": "new keyframe after this much rotation",
    "max_input_pixels": "larger input images are dropped",
    "max_abs_position_m": "frames whose camera is further than this from the world origin (any axis) are dropped",
    "min_depth_m": "input depth below this is invalid",
    "max_depth_m": "input depth above this is invalid",
    "min_valid_depth_fraction": "frames with a smaller fraction of valid depth pixels are dropped (depth_invalid)",
    "floor_z_m": "world z of the floor, metres: the shipped semantic models assume a z-up world with the floor at 0",
    "render_width": "rendered image width; 0 = the model width",
    "render_height": "rendered image height; 0 = the model height",
    "publish_cloud": "publish ~/gaussians for every new window",
    "cloud_min_opacity": "Gaussians below this opacity are left out of clouds and the map",
    "class_names": "class names, in the model's class order",
    "palette": "flattened RGB triplets (0-255), one per class, for ~/render/semantic_color",
    "fuse_map": "merge windows into a bounded global map published on ~/map/gaussians",
    "map_voxel_m": "fused-map de-duplication voxel, metres",
    "map_max_gaussians": "fused-map size cap (oldest evicted first)",
    "map_publish_period_s": "period of ~/map/gaussians",
    "map_save_dir": "the only directory ~/save_map writes to (empty = map saving off)",
    "map_file_name": "PLY file name inside map_save_dir that ~/save_map writes (a bare name ending .ply)",
    "save_map_on_shutdown": "also save the fused map to map_save_dir/map_file_name on shutdown",
    "semantic_scales": "average the class logits over encoder passes at these image scales ('1.0 0.5'); "
                       "auto: the checkpoint's semantic_reference_width decides (one scale at 160x120)",
    "diagnostics_period_s": "period of /diagnostics",
    "warn_throttle_s": "minimum seconds between repeated warnings",
    "health_window_s": "diagnostics rates and drop fractions cover this many recent seconds",
    "stale_input_s": "diagnostics STALE after this long without input",
    "no_render_error_s": "diagnostics ERROR when frames arrive but nothing rendered for this long",
}


def _descriptor(name: str, value) -> ParameterDescriptor:
    desc = DESCRIPTIONS.get(name, "")
    if name in CHOICES:
        desc += f" (one of: {', '.join(CHOICES[name])})"
    d = ParameterDescriptor(description=desc)
    if name in RANGES:
        lo, hi = RANGES[name]
        if isinstance(value, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def declare_and_read(node) -> NodeConfig:
    """Declare every NodeConfig field as a parameter and read the values into a NodeConfig."""
    defaults = NodeConfig()
    values = {}
    for f in fields(NodeConfig):
        default = getattr(defaults, f.name)
        try:
            param = node.declare_parameter(f.name, default, _descriptor(f.name, default))
        except InvalidParameterValueException as exc:
            lo, hi = RANGES.get(f.name, (None, None))
            raise ParameterError(f"parameter '{f.name}' is out of range [{lo}, {hi}]: {exc}") from None
        except Exception as exc:  # wrong type in the params file, for example
            raise ParameterError(f"parameter '{f.name}': {exc}") from None
        values[f.name] = param.value
    cfg = NodeConfig(**values)
    validate(cfg)
    return cfg


def validate(cfg: NodeConfig) -> None:
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ParameterError(f"parameter '{name}' must be one of {allowed}, got {getattr(cfg, name)!r}")
    for name, (lo, hi) in RANGES.items():
        v = getattr(cfg, name)
        if not lo <= v <= hi:
            raise ParameterError(f"parameter '{name}' = {v} is out of range [{lo}, {hi}]")
    if cfg.model_width % 4 or cfg.model_height % 4:
        raise ParameterError(f"model size must be divisible by 4, got {cfg.model_width}x{cfg.model_height}")
    try:
        scales = parse_scales(cfg.semantic_scales)
        if scales != AUTO:
            check_scaled_size(scales, cfg.model_width, cfg.model_height)
    except ValueError as exc:
        raise ParameterError(f"parameter 'semantic_scales': {exc}") from None
    if cfg.min_depth_m >= cfg.max_depth_m:
        raise ParameterError(f"min_depth_m ({cfg.min_depth_m}) must be below max_depth_m ({cfg.max_depth_m})")
    from gssplat_ros.ros.map_saver import check_file_name  # one rule for the parameter and the save request

    try:
        check_file_name(cfg.map_file_name)
    except ValueError as exc:
        raise ParameterError(f"parameter 'map_file_name': {exc}") from None
    if len(cfg.palette) % 3 or not all(0 <= int(v) <= 255 for v in cfg.palette):
        raise ParameterError("parameter 'palette' must be RGB triplets of integers 0-255")
