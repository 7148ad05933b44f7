"""launch/gssplat.launch.py: its arguments and node, checked by parsing (and by loading where launch exists)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "gssplat.launch.py"


def test_launch_declares_arguments_and_node():
    tree = ast.parse(LAUNCH.read_text())
    declared = {c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call)
                and getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    assert {"params_file", "namespace", "use_sim_time", "image_topic", "camera_info_topic", "pose_topic",
            "depth_topic", "odom_topic"} <= declared
    node = next(c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Node")
    kw = {k.arg: k.value for k in node.keywords}
    assert kw["package"].value == "gssplat_ros" and kw["executable"].value == "gssplat_node"
    remapped = {t.elts[0].value for t in kw["remappings"].elts}
    assert remapped == {"image", "camera_info", "pose", "odom", "depth"}
    assert "eval(" not in LAUNCH.read_text() and "subprocess" not in LAUNCH.read_text()


def test_launch_loads_where_launch_is_installed():
    pytest.importorskip("launch_ros")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gssplat_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert len(mod.generate_launch_description().entities) >= 9


def test_setup_installs_launch_and_config():
    text = (ROOT / "setup.py").read_text()
    assert "share/{PACKAGE}/launch" in text and "share/{PACKAGE}/config" in text
