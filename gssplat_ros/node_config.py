"""The node's settings: its own (topics, QoS, outputs) composed with the pipeline's, with no rclpy needed.

Usage:
    cfg = NodeConfig()                                  # defaults
    cfg = node_config_from_parameters({"window_size": 8, "cloud_min_opacity": 0.1})
    text = parameters_yaml()                            # config/gssplat.yaml, generated
    python -m gssplat_ros.node_config --yaml > config/gssplat.yaml
    python -m gssplat_ros.node_config --markdown > docs/parameters.md

Every ROS parameter is one `setting(...)` field, of NodeConfig or of the embedded PipelineConfig: its type,
default, range, allowed values and description are written there once, and the parameter declarations
(ros/params.py), config/gssplat.yaml and docs/parameters.md are derived from them (tests keep the two
files equal to what this module generates).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from gssplat_ros.config import ConfigError, SettingSpec, check_settings, setting, setting_specs
from gssplat_ros.data.labels import PALETTE
from gssplat_ros.map_saver import check_file_name
from gssplat_ros.pipeline import Pipeline, PipelineConfig
from gssplat_ros.transforms import parse_extrinsic

# ROS parameter names that differ from the PipelineConfig field they set (the name users already have).
ROS_NAMES = {"min_opacity": "cloud_min_opacity"}


def _default_palette() -> list[int]:
    return [int(v) for v in PALETTE[:20].reshape(-1)]


@dataclass
class NodeConfig:
    """The node's parameters: its own settings below, the pipeline's in `pipeline`."""

    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    # inputs
    pose_source: str = setting("pose", "pose: geometry_msgs/PoseStamped on `pose`; odom: nav_msgs/Odometry on "
                                       "`odom`; tf: world_frame <- the image's header.frame_id at the image stamp",
                               choices=("pose", "odom", "tf"))
    tf_timeout_s: float = setting(0.05, "how long a TF lookup waits for the transform at the image stamp, seconds",
                                  limits=(0.0, 10.0))
    camera_from_body: str = setting("", "extrinsic of the pose topic's body frame: 'x y z qx qy qz qw' mapping body "
                                        "points into the camera optical frame, 'tf' to read it from TF, or empty "
                                        "when the poses are of the optical frame")
    expected_pose_frame: str = setting("", "the frame the pose topic's poses are of (Odometry child_frame_id); "
                                           "another one is dropped as unexpected_pose_frame; empty = any")
    image_transport: str = setting("raw", "raw: sensor_msgs/Image on `image`; compressed: CompressedImage on "
                                          "`image/compressed`", choices=("raw", "compressed"))
    depth_transport: str = setting("raw", "raw: sensor_msgs/Image on `depth`; compressedDepth: CompressedImage on "
                                          "`depth/compressedDepth`", choices=("raw", "compressedDepth"))
    image_rectified: bool = setting(False, "the image is already rectified: use camera_info's P, no remap")
    register_depth: bool = setting(False, "depth comes from another camera: register it into the colour camera "
                                          "with `depth/camera_info` and color_from_depth")
    color_from_depth: str = setting("tf", "with register_depth: 'x y z qx qy qz qw' mapping depth optical points "
                                          "into the colour optical frame, or 'tf'")
    world_check: bool = setting(True, "warn (throttled) when camera poses do not fit a z-up world with the floor at "
                                      "floor_z_m")
    floor_frame: str = setting("", "a frame on the floor (e.g. base_footprint) whose TF height replaces floor_z_m "
                                   "in the world check; empty = floor_z_m")
    use_depth: bool = setting(True, "subscribe to `depth` (32FC1 m or 16UC1 mm) and sync it with the image")
    qos_profile: str = setting("sensor_data", "input QoS: sensor_data (best effort) or reliable",
                               choices=("sensor_data", "reliable"))
    qos_depth: int = setting(5, "input queue depth", limits=(1, 1000))
    sync_queue_size: int = setting(10, "approximate-sync queue size per input", limits=(1, 1000))
    sync_slop_s: float = setting(0.05, "approximate-sync slop, seconds", limits=(0.0, 10.0))
    sync_reset_jump_back_s: float = setting(1.0, "a stamp this much older than the newest on its input (a looped "
                                                 "bag) clears the approximate-sync queues, seconds",
                                            limits=(0.0, 3600.0))
    world_frame: str = setting("map", "frame_id of the clouds and the legend; a `~/render_pose` must be in it")
    # outputs
    render_width: int = setting(0, "rendered image width; 0 = the model width", limits=(0, 8192), dynamic=True)
    render_height: int = setting(0, "rendered image height; 0 = the model height", limits=(0, 8192),
                                 dynamic=True)
    publish_cloud: bool = setting(True, "publish ~/gaussians for every new window", dynamic=True)
    palette: list[int] = setting(doc="flattened RGB triplets (0-255), one per class, for ~/render/semantic_color",
                                 default_factory=_default_palette)
    render_pose_frame: str = setting("gssplat_render_optical", "frame_id of the renders a `~/render_pose` "
                                     "request asks for (the optical frame at the requested pose)")
    # fused map
    map_publish_period_s: float = setting(2.0, "period of ~/map/gaussians", limits=(0.1, 3600.0))
    map_save_dir: str = setting("", "the only directory ~/save_map writes to (empty = map saving off)")
    map_file_name: str = setting("map.ply", "PLY file name inside map_save_dir that ~/save_map writes (a bare "
                                            "name ending .ply)")
    save_map_on_shutdown: bool = setting(False, "also save the fused map to map_save_dir/map_file_name on "
                                                "shutdown")
    # lifecycle
    autostart: bool = setting(True, "configure and activate at start (gssplat_node); false: a managed node "
                                    "waiting for `ros2 lifecycle set`")
    # housekeeping
    diagnostics_period_s: float = setting(1.0, "period of /diagnostics", limits=(0.1, 60.0))
    warn_throttle_s: float = setting(5.0, "minimum seconds between repeated warnings", limits=(0.0, 3600.0),
                                     dynamic=True)
    health_window_s: float = setting(10.0, "diagnostics rates and drop fractions cover this many recent seconds",
                                     limits=(1.0, 3600.0))
    stale_input_s: float = setting(5.0, "diagnostics STALE after this long without input, seconds",
                                   limits=(0.1, 3600.0))
    no_render_error_s: float = setting(10.0, "diagnostics ERROR when frames arrive but nothing rendered for this "
                                             "long, seconds", limits=(0.5, 3600.0))

    def validate(self) -> NodeConfig:
        """Raise ConfigError naming the first parameter that is not allowed; returns self."""
        try:
            self.pipeline.validate()
        except ConfigError as exc:
            raise ConfigError(_ros_wording(str(exc))) from None
        check_settings(self)
        try:
            check_file_name(self.map_file_name)  # one rule for the parameter and the save request
        except ValueError as exc:
            raise ConfigError(f"'map_file_name': {exc}") from None
        if self.register_depth and not self.use_depth:
            raise ConfigError("'register_depth' needs use_depth: true")
        if self.camera_from_body.strip().lower() == "tf" and self.pose_source == "pose" and not self.expected_pose_frame:
            raise ConfigError("'camera_from_body': tf with pose_source pose needs expected_pose_frame (a PoseStamped "
                              "does not name the frame its pose is of)")
        for name in ("camera_from_body", "color_from_depth"):
            try:
                parse_extrinsic(getattr(self, name))
            except ValueError as exc:
                raise ConfigError(f"'{name}': {exc}") from None
        if len(self.palette) % 3 or not all(0 <= int(v) <= 255 for v in self.palette):
            raise ConfigError("'palette' must be RGB triplets of integers 0-255")
        return self


def _ros_wording(message: str) -> str:
    for field_name, ros_name in ROS_NAMES.items():
        message = message.replace(f"'{field_name}'", f"'{ros_name}'")
    return message


@dataclass(frozen=True)
class Parameter:
    """One ROS parameter: its name and the setting it sets (`in_pipeline`: a PipelineConfig field)."""

    name: str
    spec: SettingSpec
    in_pipeline: bool




def node_parameters() -> list[Parameter]:
    """Every parameter of the node, in the order of config/gssplat.yaml (node settings, then the pipeline's)."""
    params = [Parameter(s.name, s, False) for s in setting_specs(NodeConfig)]
    for s in setting_specs(PipelineConfig):
        if s.name in Pipeline.LIVE_SETTINGS:  # the node applies these on set
            s = dataclasses.replace(s, dynamic=True)
        params.append(Parameter(ROS_NAMES.get(s.name, s.name), s, True))
    names = [p.name for p in params]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:  # a new field that shadows another would silently set both
        raise ConfigError(f"parameter names used twice: {sorted(duplicated)}")
    return params


def node_config_from_parameters(values: dict[str, Any]) -> NodeConfig:
    """A validated NodeConfig from parameter values by ROS name (missing ones keep their defaults)."""
    by_name = {p.name: p for p in node_parameters()}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}")
    own, pipe = {}, {}
    for name, value in values.items():
        p = by_name[name]
        if p.spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        (pipe if p.in_pipeline else own)[p.spec.name] = value
    return NodeConfig(pipeline=PipelineConfig(**pipe), **own).validate()


def parameter_value(cfg: NodeConfig, p: Parameter) -> Any:
    return getattr(cfg.pipeline if p.in_pipeline else cfg, p.spec.name)


def parameter_help(p: Parameter) -> str:
    """The description with its allowed values or range, as ROS descriptors and the docs show it."""
    text = p.spec.doc
    if p.spec.choices:
        text += f" (one of: {', '.join(map(str, p.spec.choices))})"
    return text


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # always with a decimal point: ROS rejects 1 for a double
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def parameters_yaml() -> str:
    """config/gssplat.yaml: every parameter with its default and a comment."""
    lines = [
        "# gssplat_node parameters (defaults), generated by `python -m gssplat_ros.node_config --yaml`.",
        "# Load with --params-file; launch files append overrides. Doubles keep their decimal point: ROS",
        "# rejects 1 for a double parameter.",
        "/**:",
        "  ros__parameters:",
    ]
    defaults = NodeConfig()
    for p in node_parameters():
        lines.append(f"    # {parameter_help(p)}")
        lines.append(f"    {p.name}: {_yaml_value(parameter_value(defaults, p))}")
    return "\n".join(lines) + "\n"


def parameters_markdown() -> str:
    """docs/parameters.md: the parameter table."""
    defaults = NodeConfig()
    rows = [
        "# gssplat_node parameters",
        "",
        "Generated by `python -m gssplat_ros.node_config --markdown` from the config dataclasses",
        "(`gssplat_ros/node_config.py`, `gssplat_ros/pipeline.py`); `config/gssplat.yaml` holds the same defaults.",
        "Parameters marked *dynamic* apply when set at run time (`ros2 param set`); the others are read-only",
        "once the node runs.",
        "",
        "| parameter | type | default | range | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in node_parameters():
        value = parameter_value(defaults, p)
        shown = "(ScanNet-20 palette)" if p.name == "palette" else f"`{_yaml_value(value)}`"
        limits = f"{p.spec.limits[0]} .. {p.spec.limits[1]}" if p.spec.limits else ""
        kind = "int[]" if typing.get_origin(p.spec.type) is list else p.spec.type.__name__
        doc = parameter_help(p).replace("|", "\\|") + (" *dynamic*" if p.spec.dynamic else "")
        rows.append(f"| `{p.name}` | {kind} | {shown} | {limits} | {doc} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Print the node's parameter file or parameter table.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--yaml", action="store_true", help="config/gssplat.yaml")
    group.add_argument("--markdown", action="store_true", help="docs/parameters.md")
    args = parser.parse_args(argv)
    print(parameters_yaml() if args.yaml else parameters_markdown(), end="")


if __name__ == "__main__":
    main()
