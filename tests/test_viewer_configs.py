"""config/gssplat.rviz and config/foxglove_layout.json parse and show only topics the node publishes."""

import ast
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "gssplat_ros" / "ros" / "node.py"


def node_name_and_publishers() -> tuple[str, set[str]]:
    """The node's default name and the topics of every create_(lifecycle_)publisher call in node.py, as written."""
    tree = ast.parse(NODE.read_text())
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)]
    name = next(c.args[0].value for c in calls if c.func.attr == "__init__" and c.args
                and isinstance(c.args[0], ast.Constant))
    topics = {c.args[1].value for c in calls if c.func.attr in ("create_publisher", "create_lifecycle_publisher")
              and isinstance(c.args[1], ast.Constant)}
    return name, topics


def published_topics() -> set[str]:
    """Fully resolved topic names for the node under its default name, no namespace."""
    name, topics = node_name_and_publishers()
    resolved = set()
    for topic in topics:
        if topic.startswith("~/"):
            resolved.add(f"/{name}/{topic[2:]}")
        else:
            resolved.add(topic if topic.startswith("/") else f"/{topic}")
    return resolved


def rviz_topics(config: dict) -> list[str]:
    return [d["Topic"]["Value"] for d in config["Visualization Manager"]["Displays"] if "Topic" in d]


def foxglove_topics(layout: dict) -> list[str]:
    topics = []
    for panel_id, panel in layout["configById"].items():
        if panel_id.startswith("Image!"):
            topics += [v for k, v in panel["imageMode"].items() if k.endswith("Topic")]
        elif panel_id.startswith("3D!"):
            topics += list(panel["topics"])
        elif panel_id.startswith("DiagnosticSummary!"):
            topics.append(panel["topicToRender"])
    return topics


def layout_leaves(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    return layout_leaves(node["first"]) + layout_leaves(node["second"])


def test_publishers_are_found():
    published = published_topics()
    assert {"/gssplat/render/image", "/gssplat/gaussians", "/diagnostics"} <= published


def test_rviz_config_shows_only_published_topics_in_the_world_frame():
    config = yaml.safe_load((ROOT / "config" / "gssplat.rviz").read_text())
    topics = rviz_topics(config)
    assert set(topics) <= published_topics(), set(topics) - published_topics()
    assert {"/gssplat/render/image", "/gssplat/render/semantic_color", "/gssplat/render/depth",
            "/gssplat/gaussians"} <= set(topics)
    world_frame = yaml.safe_load((ROOT / "config" / "gssplat.yaml").read_text())["/**"]["ros__parameters"]["world_frame"]
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == world_frame
    clouds = [d for d in config["Visualization Manager"]["Displays"] if d["Class"].endswith("PointCloud2")]
    assert clouds and all(d["Color Transformer"] == "RGB8" for d in clouds)  # the cloud's packed `rgb` field
    assert {"/gssplat/gaussians/semantic", "/gssplat/labels/legend"} <= set(topics)
    legend = next(d for d in config["Visualization Manager"]["Displays"] if d.get("Topic", {}).get("Value") ==
                  "/gssplat/labels/legend")
    assert legend["Topic"]["Durability Policy"] == "Transient Local"  # latched: published once on activate


def test_foxglove_layout_shows_only_published_topics():
    layout = json.loads((ROOT / "config" / "foxglove_layout.json").read_text())
    topics = foxglove_topics(layout)
    assert set(topics) <= published_topics(), set(topics) - published_topics()
    assert {"/gssplat/render/image", "/gssplat/gaussians", "/diagnostics", "/gssplat/gaussians/semantic",
            "/gssplat/labels/legend"} <= set(topics)
    assert sorted(layout_leaves(layout["layout"])) == sorted(layout["configById"])  # every panel placed once
