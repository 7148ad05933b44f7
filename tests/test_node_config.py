"""The node's parameters have one source: the `setting(...)` fields of NodeConfig and PipelineConfig."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gssplat_ros.config import ConfigError, setting_specs
from gssplat_ros.node_config import (
    ROS_NAMES,
    NodeConfig,
    node_config_from_parameters,
    node_parameters,
    parameters_markdown,
    parameters_yaml,
)
from gssplat_ros.pipeline import PipelineConfig

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_file_and_table_are_generated_from_the_dataclasses():
    # Regenerate with: python -m gssplat_ros.node_config --yaml > config/gssplat.yaml (and --markdown)
    assert (ROOT / "config" / "gssplat.yaml").read_text() == parameters_yaml()
    assert (ROOT / "docs" / "parameters.md").read_text() == parameters_markdown()


def test_every_pipeline_setting_is_a_node_parameter_and_nothing_is_copied():
    names = {p.name for p in node_parameters()}
    for f in dataclasses.fields(PipelineConfig):
        assert ROS_NAMES.get(f.name, f.name) in names, f.name
    own = {f.name for f in dataclasses.fields(NodeConfig)} - {"pipeline"}
    pipe = {f.name for f in dataclasses.fields(PipelineConfig)}
    assert not own & pipe, "a NodeConfig field repeats a PipelineConfig field"
    # every setting has a description, and numbers with a range declare it
    for spec in setting_specs(NodeConfig) + setting_specs(PipelineConfig):
        assert spec.doc, spec.name


def test_yaml_round_trip_gives_the_defaults():
    import yaml

    values = yaml.safe_load(parameters_yaml())["/**"]["ros__parameters"]
    assert node_config_from_parameters(values) == NodeConfig()
    for p in node_parameters():
        if p.spec.type is float:
            assert isinstance(values[p.name], float), f"{p.name}: doubles need a decimal point for ROS"


def test_parameters_map_onto_the_embedded_pipeline_config():
    cfg = node_config_from_parameters({"window_size": 8, "cloud_min_opacity": 0.2, "world_frame": "odom"})
    assert cfg.pipeline.window_size == 8 and cfg.pipeline.min_opacity == 0.2 and cfg.world_frame == "odom"


@pytest.mark.parametrize("values, match", [
    ({"window_size": 1}, "window_size.*range"),
    ({"depth_mode": "lidar"}, "depth_mode.*one of"),
    ({"cloud_min_opacity": 2.0}, "cloud_min_opacity"),
    ({"model_width": 162}, "divisible by 4"),
    ({"near_m": 10.0, "far_m": 1.0}, "near_m"),
    ({"palette": [1, 2]}, "palette"),
    ({"no_such_parameter": 1}, "unknown parameter"),
])
def test_invalid_values_name_the_parameter(values, match):
    with pytest.raises(ConfigError, match=match):
        node_config_from_parameters(values)


def test_node_config_needs_no_rclpy():
    code = "import sys, gssplat_ros.node_config; assert 'rclpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
