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
            "depth_topic", "odom_topic", "autostart"} <= declared
    autostart = next(c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") ==
                     "DeclareLaunchArgument" and c.args[0].value == "autostart")
    assert {k.arg: k.value.value for k in autostart.keywords}["default_value"] == "true"
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "launch_ros.actions"
               for a in n.names}
    assert imports == {"LifecycleNode"}  # a managed node: `ros2 lifecycle` and lifecycle managers can drive it
    node = next(c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "LifecycleNode")
    kw = {k.arg: k.value for k in node.keywords}
    assert kw["package"].value == "gssplat_ros" and kw["executable"].value == "gssplat_node"
    assert kw["name"].value == "gssplat" and "namespace" in kw  # LifecycleNode needs both
    params = [d for d in kw["parameters"].elts if isinstance(d, ast.Dict)]
    assert any(k.value == "autostart" for d in params for k in d.keys)  # the node's own `autostart` parameter
    remapped = {t.elts[0].value for t in kw["remappings"].elts}
    assert remapped == {"image", "camera_info", "pose", "odom", "depth"}
    assert "eval(" not in LAUNCH.read_text() and "subprocess" not in LAUNCH.read_text()


def test_launch_loads_where_launch_is_installed():
    pytest.importorskip("launch_ros")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gssplat_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert len(mod.generate_launch_description().entities) >= 10


def test_setup_installs_launch_and_config():
    text = (ROOT / "setup.py").read_text()
    assert "share/{PACKAGE}/launch" in text and "share/{PACKAGE}/config" in text
