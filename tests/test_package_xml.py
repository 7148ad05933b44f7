"""package.xml covers what the code imports, with rosdep keys that exist; LICENSE matches its license tag."""

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Python import name -> the rosdep key that installs it. Keys checked against ros/rosdistro's
# rosdep/python.yaml (shared by Humble and Jazzy); e.g. python3-safetensors-pip does not exist there.
PYTHON_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "PIL": "python3-pil",
    "tqdm": "python3-tqdm",
    "torch": "python3-pytorch-pip",
    "numba": "python3-numba",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
}
# No rosdep key exists: installed by `pip install -r requirements.txt` (the README's one extra line).
PIP_ONLY = {"jaxtyping", "safetensors", "mcap", "onnx", "onnxslim", "trimesh"}
# Optional GPU backends, imported lazily and installed with the CUDA toolchain (see docs/export.md).
OPTIONAL = {"gsplat", "tensorrt"}
IN_REPO = {"gssplat_ros", "export"}


def imported_top_level(paths) -> dict[str, str]:
    """Top-level module names imported anywhere (including inside functions) -> one file importing it."""
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def package_deps() -> set[str]:
    tree = ET.parse(ROOT / "package.xml")
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in tree.getroot().iter(tag)}


def test_every_import_is_a_dependency():
    deps = package_deps()
    requirements = (ROOT / "requirements.txt").read_text()
    sources = list((ROOT / "gssplat_ros").rglob("*.py")) + list((ROOT / "launch").glob("*.py"))
    missing = []
    for module, where in sorted(imported_top_level(sources).items()):
        if module in sys.stdlib_module_names or module in IN_REPO or module in OPTIONAL:
            continue
        if module in PIP_ONLY:
            assert module in requirements, f"{module} (pip-only) must be in requirements.txt"
        elif PYTHON_KEYS.get(module, module) not in deps:  # ROS packages are keys under their own name
            missing.append(f"{module} (imported in {where})")
    assert not missing, f"package.xml lacks: {', '.join(missing)}"


def test_ros_message_packages_of_the_shell_are_declared():
    shell = imported_top_level((ROOT / "gssplat_ros" / "ros").glob("*.py"))
    messages = {m for m in shell if m.endswith(("_msgs", "_srvs", "_interfaces"))}
    assert {"sensor_msgs", "geometry_msgs", "nav_msgs", "diagnostic_msgs", "std_msgs"} <= messages
    assert messages <= package_deps()


def test_python_keys_are_known_rosdep_keys():
    python_deps = {d for d in package_deps() if d.startswith("python3-")}
    assert python_deps <= set(PYTHON_KEYS.values()), python_deps - set(PYTHON_KEYS.values())
    assert "python3-safetensors-pip" not in package_deps()


def test_license_file_matches_the_license_tag():
    license_tag = ET.parse(ROOT / "package.xml").getroot().findtext("license")
    assert license_tag == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
