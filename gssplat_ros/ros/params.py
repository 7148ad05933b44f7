"""Node parameters: declared from the config dataclasses' settings, read once into a `NodeConfig`.

Usage:
    declare_parameters(node)       # in the node's __init__ (a lifecycle node declares before configure)
    cfg = read_config(node)        # on configure: raises ParameterError with a clear message for invalid values
    cfg = declare_and_read(node)   # both at once
Each parameter's type, default, range and description live in one `setting(...)` field
(gssplat_ros/node_config.py, gssplat_ros/pipeline.py); config/gssplat.yaml is generated from them.
"""

from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException

from gssplat_ros.config import ConfigError
from gssplat_ros.node_config import (
    NodeConfig,
    Parameter,
    node_config_from_parameters,
    node_parameters,
    parameter_help,
    parameter_value,
)

__all__ = ["NodeConfig", "ParameterError", "apply_parameter_changes", "changed_settings", "declare_and_read",
           "declare_parameters", "read_config"]


class ParameterError(ValueError):
    """An invalid parameter value; the message names the parameter and what it accepts."""


def _descriptor(p: Parameter) -> ParameterDescriptor:
    d = ParameterDescriptor(description=parameter_help(p), read_only=not p.spec.dynamic)
    if p.spec.limits is not None:
        lo, hi = p.spec.limits
        if p.spec.type is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def declare_parameters(node) -> None:
    """Declare every parameter (NodeConfig's and its PipelineConfig's) with its type, range and help."""
    defaults = NodeConfig()
    for p in node_parameters():
        try:
            node.declare_parameter(p.name, parameter_value(defaults, p), _descriptor(p))
        except InvalidParameterValueException as exc:
            raise ParameterError(f"parameter '{p.name}' is out of range {list(p.spec.limits or ())}: {exc}") from None
        except Exception as exc:  # wrong type in the params file, for example
            raise ParameterError(f"parameter '{p.name}': {exc}") from None


def read_config(node) -> NodeConfig:
    """The declared parameters' current values as a validated NodeConfig."""
    values = {p.name: node.get_parameter(p.name).value for p in node_parameters()}
    try:
        return node_config_from_parameters(values)
    except ConfigError as exc:
        raise ParameterError(f"parameter {exc}") from None


def declare_and_read(node) -> NodeConfig:
    """Declare every parameter and read them into a NodeConfig."""
    declare_parameters(node)
    return read_config(node)


def apply_parameter_changes(cfg: NodeConfig, changes: dict) -> NodeConfig:
    """A new validated NodeConfig with `changes` (ROS name -> value) applied; raises ParameterError."""
    by_name = {p.name: p for p in node_parameters()}
    values = {name: parameter_value(cfg, p) for name, p in by_name.items()}
    for name, value in changes.items():
        if name not in by_name:
            raise ParameterError(f"unknown parameter '{name}'")
        if not by_name[name].spec.dynamic:
            raise ParameterError(f"parameter '{name}' is read-only while the node runs")
        values[name] = value
    try:
        return node_config_from_parameters(values)
    except ConfigError as exc:
        raise ParameterError(f"parameter {exc}") from None


def changed_settings(old: NodeConfig, new: NodeConfig) -> dict:
    """PipelineConfig fields whose values differ between two configs (what the pipeline must apply)."""
    return {f.name: getattr(new.pipeline, f.name) for f in dataclasses.fields(old.pipeline)
            if getattr(old.pipeline, f.name) != getattr(new.pipeline, f.name)}
