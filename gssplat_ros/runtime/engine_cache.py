"""On-disk caches for shape-specialised encoder artifacts: exported ONNX files and TensorRT engines.

Usage:
    onnx_path = onnx_for_checkpoint(stem, views=4, width=160, height=120)        # exported once, then reused
    cache = EngineCache()                                                       # ~/.cache/gssplat_ros/engines
    key = EngineKey(file_sha256(onnx_path), "10.3.0", "NVIDIA H100", "fp16", 4, 160, 120)
    engine_path, built = cache.get_or_build("tiny_sensor", key, lambda out: build_engine(onnx_path, out))

The cache root is $GSSPLAT_CACHE_DIR, else $XDG_CACHE_HOME/gssplat_ros, else ~/.cache/gssplat_ros.
ONNX files live under onnx/<checkpoint>-<sha12 of its weights>/, so retrained weights export afresh.
An engine is keyed by the ONNX file's sha256, the TensorRT version, the GPU name, the precision and the
shape: a restart finds it again, and any change builds a new one (logged before the long build).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    if os.environ.get("GSSPLAT_CACHE_DIR"):
        return Path(os.environ["GSSPLAT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "gssplat_ros"


def file_sha256(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ ONNX
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
EXPORT_SOURCES = ("gssplat_ros/model/*.py", "gssplat_ros/prediction.py", "export/onnx_export.py", "export/quantize.py")


@functools.lru_cache(maxsize=1)
def export_source_sha256() -> str:
    """Hash of the code that shapes an exported graph: a changed model or exporter never reuses an old ONNX.
    Computed once per process (the code does not change under a running node)."""
    h = hashlib.sha256()
    for pattern in EXPORT_SOURCES:
        for path in sorted(_PACKAGE_ROOT.glob(pattern)):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def onnx_for_checkpoint(
    stem: Union[str, Path],
    views: int,
    width: int,
    height: int,
    precision: str = "fp32",
    cache_dir: Union[str, Path, None] = None,
    scatter: str = "elements",
) -> Path:
    """The exported encoder ONNX for a checkpoint and shape: from the cache, or exported now (seconds).

    scatter: "host" for the onnxruntime-CPU pair of graphs (the returned path is the first; see
        export.onnx_export.SCATTERS).
    """
    from export.onnx_export import export_onnx, gaussians_graph_path, onnx_file_name

    stem = Path(stem)
    weights = stem.with_suffix(".safetensors")
    if not weights.exists():
        from gssplat_ros.errors import CheckpointError

        raise CheckpointError(f"checkpoint weights not found: {weights}")
    digest = file_sha256(weights)
    config_json = stem.with_suffix(".json")
    config_digest = file_sha256(config_json) if config_json.exists() else ""
    code = hashlib.sha256((config_digest + export_source_sha256()).encode()).hexdigest()
    # weights, config and exporter code all key the folder
    folder = Path(cache_dir or default_cache_dir()) / "onnx" / f"{stem.name}-{digest[:12]}-{code[:8]}"
    path = folder / onnx_file_name(stem.name, views, width, height, precision, scatter)
    # the first file of a host set is written last (export_onnx), so its presence means the set is complete
    if path.exists() and (scatter != "host" or gaussians_graph_path(path).exists()):
        log.debug("reusing %s", path)
        return path
    from gssplat_ros.model.checkpoint import load_model

    log.info("exporting %s for V=%d %dx%d %s to %s", stem.name, views, width, height, precision, folder)
    net, _ = load_model(stem)
    export_onnx(net, path, views, width, height, precision,
                metadata={"checkpoint": stem.name, "checkpoint_sha256": digest}, scatter=scatter)  # fmt: skip
    _prune_stale_exports(folder)
    return path


def _prune_stale_exports(current: Path) -> None:
    """Delete the folders of the same weights exported by other config/exporter versions (never read again).

    Folders of other weights are left alone: another process may still run them.
    """
    import shutil

    weights_prefix = current.name.rsplit("-", 1)[0]  # "<stem>-<weights sha>"
    for stale in current.parent.glob(f"{weights_prefix}-*"):
        if stale != current and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
            log.info("removed stale ONNX exports %s", stale)


# ------------------------------------------------------------------------------------------------ engines
@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    views: int
    width: int
    height: int

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


class EngineCache:
    """Engines as `<name>_v<V>_<W>x<H>_<precision>_<key digest>.engine`, each with a JSON sidecar of its key."""

    def __init__(self, root: Union[str, Path, None] = None):
        self.root = Path(root) if root else default_cache_dir() / "engines"

    def path_for(self, name: str, key: EngineKey) -> Path:
        return self.root / f"{name}_v{key.views}_{key.width}x{key.height}_{key.precision}_{key.digest()}.engine"

    def lookup(self, name: str, key: EngineKey) -> Optional[Path]:
        path = self.path_for(name, key)
        sidecar = path.with_suffix(".json")
        if not path.exists() or not sidecar.exists():
            return None
        try:
            if json.loads(sidecar.read_text()) != asdict(key):
                return None
        except (OSError, json.JSONDecodeError):
            return None
        return path

    def get_or_build(self, name: str, key: EngineKey, build: Callable[[Path], object], force: bool = False) -> tuple[Path, bool]:
        """(engine path, built now): reuse a cached engine for `key`, or call build(path) to make one."""
        cached = None if force else self.lookup(name, key)
        if cached is not None:
            log.info("reusing TensorRT engine %s", cached)
            return cached, False
        path = self.path_for(name, key)
        log.warning(
            "building TensorRT %s engine for %s (V=%d, %dx%d) on %s with TensorRT %s; this can take several "
            "minutes, the engine is cached as %s",
            key.precision, name, key.views, key.width, key.height, key.gpu_name, key.tensorrt_version, path,
        )  # fmt: skip
        self.root.mkdir(parents=True, exist_ok=True)
        build(path)
        if not path.exists():
            raise RuntimeError(f"engine build reported success but wrote no file at {path}")
        path.with_suffix(".json").write_text(json.dumps(asdict(key), indent=1))
        return path, True
