"""The user docs stay true to the code: every module and repository path they name exists, the Python API page
lists exactly the dataclass fields (with their defaults) and the Pipeline method signatures, and each training
recipe only reads checkpoints that an earlier step of the same recipe writes."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# the pages this repository's docs own (other pages may be written elsewhere and are not checked here)
PAGES = ["README.md", "docs/architecture.md", "docs/python_api.md", "docs/training.md", "docs/export.md",
         "docs/results.md", "docs/benchmarks.md"]
# dotted module names: gssplat_ros.x.y or export.x (a trailing file suffix means a file name, not a module)
MODULE = re.compile(r"(?<![\w./-])((?:gssplat_ros|export|maint)(?:\.[a-z_][a-z0-9_]*)+)")
FILE_SUFFIXES = {"md", "py", "yaml", "json", "onnx", "safetensors", "sh", "txt", "png"}
# repository paths: a top-level folder of this repository, then a path without placeholders
# pages that other work adds (GPU results, security notes); linked already, checked like any path once they exist
PAGES_WRITTEN_ELSEWHERE = {"docs/gpu.md", "docs/security.md"}
REPO_PATH = re.compile(r"(?<![\w./$-])((?:gssplat_ros|export|maint|tools|tests|config|launch|docs)/[\w./*<>-]*[\w/*>])")


def _text(page: str) -> str:
    return (ROOT / page).read_text()


def test_every_page_exists():
    missing = [p for p in PAGES if not (ROOT / p).exists()]
    assert not missing


def test_architecture_names_only_modules_that_import():
    names = sorted({m for m in MODULE.findall(_text("docs/architecture.md")) if m.rsplit(".", 1)[1] not in FILE_SUFFIXES})
    assert len(names) > 20  # the package map is there
    stale = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            stale.append(f"{name}: {exc}")
    assert not stale, stale


@pytest.mark.parametrize("page", PAGES)
def test_modules_and_paths_named_in_the_docs_exist(page):
    text = _text(page)
    stale = []
    for name in set(MODULE.findall(text)):
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue
        if importlib.util.find_spec(name.split(".")[0]) is None or not _module_exists(name):
            stale.append(name)
    for path in set(REPO_PATH.findall(text)):
        if "*" in path or "<" in path:
            continue
        path = path.rstrip("/.")
        if path in PAGES_WRITTEN_ELSEWHERE:
            continue
        if not (ROOT / path).exists() and not (ROOT / f"{path}.json").exists():  # a checkpoint names its stem
            stale.append(path)
    assert not stale, f"{page} names what does not exist: {sorted(stale)}"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _documented_dataclass(page: str, class_name: str) -> dict[str, object]:
    """field -> default (or a sentinel when none) from the `class X:` block of a python code block."""
    match = re.search(rf"^class {class_name}:.*?\n((?:    .*\n)+)", _text(page), re.MULTILINE)
    assert match, f"{page} documents no class {class_name}"
    fields = {}
    for line in match.group(1).splitlines():
        code = line.split("#", 1)[0].strip()
        if not code or ":" not in code:
            continue
        name, _, rest = code.partition(":")
        default = rest.partition("=")[2].strip()
        if default.startswith("field("):
            fields[name.strip()] = "factory"
        else:
            fields[name.strip()] = ast.literal_eval(default) if default else dataclasses.MISSING
    return fields


@pytest.mark.parametrize("class_name", ["PipelineConfig", "Frame", "RenderResult"])
def test_python_api_lists_every_field_with_its_default(class_name):
    import gssplat_ros.pipeline as pipeline

    documented = _documented_dataclass("docs/python_api.md", class_name)
    actual = {f.name: ("factory" if f.default_factory is not dataclasses.MISSING else f.default)
              for f in dataclasses.fields(getattr(pipeline, class_name))}
    assert list(documented) == list(actual), "fields differ (names or order)"
    assert documented == actual, "defaults differ"


def test_python_api_pipeline_methods_match_their_signatures():
    from gssplat_ros.pipeline import Pipeline

    block = re.search(r"^class Pipeline:\n((?:    .*\n)+)", _text("docs/python_api.md"), re.MULTILINE).group(1)
    documented = re.findall(r"def (\w+)\(([^)]*)\)", block)
    assert len(documented) >= 9
    for name, params in documented:
        real = inspect.signature(getattr(Pipeline, name))
        assert [p.strip() for p in params.split(",")] == [
            {inspect.Parameter.VAR_KEYWORD: "**", inspect.Parameter.VAR_POSITIONAL: "*"}.get(p.kind, "")
            + (p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}")
            for p in real.parameters.values()], name
    public = {n for n, v in vars(Pipeline).items() if callable(v) and not n.startswith("_")} | {"__init__"}
    assert public == {name for name, _ in documented}, "the page and the class list different methods"


RECIPES = sorted(p for p in (ROOT / "config" / "train").iterdir() if p.is_dir())


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_steps_read_only_what_earlier_steps_write(recipe):
    """A fresh clone can run a recipe: each `init_from` is `<out_dir>/last|best` of an earlier step of this
    recipe or of one it names in its docs (tiny_estimated starts from the sensor recipe's warm-up)."""
    produced = set()
    if recipe.name == "tiny_estimated":  # docs/training.md: needs the tiny_sensor recipe's step 1 first
        produced |= {yaml.safe_load(p.read_text())["out_dir"] for p in (ROOT / "config/train/tiny_sensor").glob("*.yaml")}
    steps = sorted(recipe.glob("*.yaml"), key=lambda p: int(p.name.split("_", 1)[0]))
    assert [int(p.name.split("_", 1)[0]) for p in steps] == list(range(1, len(steps) + 1))
    for step in steps:
        cfg = yaml.safe_load(step.read_text())
        source = cfg.get("init_from")
        if source:
            parent, _, which = source.rpartition("/")
            assert parent in produced and which in ("last", "best"), f"{step.name}: init_from {source}"
        produced.add(cfg["out_dir"])
    assert "git show" not in "".join(p.read_text() for p in steps)
