"""Where shape-specialised encoder artifacts are cached (the runtimes load them; gssplat_ros.export builds
them: exported ONNX files in export/onnx_cache.py, TensorRT engines through EngineCache.get_or_build).

Usage:
    cache = EngineCache()                                                       # ~/.cache/gssplat_ros/engines
    key = EngineKey(file_sha256(onnx_path), "10.3.0", "NVIDIA H100", "fp16", 4, 160, 120)
    engine_path, built = cache.get_or_build("tiny_sensor", key, lambda out: build_engine(onnx_path, out))

The cache root is $GSSPLAT_CACHE_DIR, else $XDG_CACHE_HOME/gssplat_ros, else ~/.cache/gssplat_ros.
ONNX files live under onnx/<checkpoint>-<sha12 of its weights>/, so retrained weights export afresh.
An engine is keyed by the ONNX file's sha256, the TensorRT version, the GPU name, the precision and the
shape: a restart finds it again, and any change builds a new one (logged before the long build).
"""

from __future__ import annotations

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
