"""Exported encoder ONNX files per checkpoint and window shape, cached on disk: what the runtime factory
asks for when a runtime needs a graph it does not have.

Usage:
    onnx_path = onnx_for_checkpoint(stem, views=4, width=160, height=120)        # exported once, then reused

Files live under <cache>/onnx/<checkpoint>-<sha12 of its weights>-<sha8 of config and exporter code>/
(cache: runtime/engine_cache.default_cache_dir), so retrained weights or a changed exporter export afresh.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Union

from gssplat_ros.errors import CheckpointError
from gssplat_ros.export import onnx_export  # called through the module: tests replace export_onnx to count exports
from gssplat_ros.export.graph_files import gaussians_graph_path, onnx_file_name
from gssplat_ros.model.checkpoint import load_model
from gssplat_ros.runtime.engine_cache import default_cache_dir, file_sha256

log = logging.getLogger(__name__)


_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # gssplat_ros/
EXPORT_SOURCES = ("model/*.py", "prediction.py", "export/graphs.py", "export/onnx_export.py", "export/quantize.py")


@functools.lru_cache(maxsize=1)
def export_source_sha256() -> str:
    """Hash of the code that shapes an exported graph: a changed model or exporter never reuses an old ONNX.
    Computed once per process (the code does not change under a running node)."""
    h = hashlib.sha256()
    for pattern in EXPORT_SOURCES:
        for path in sorted(_PACKAGE_DIR.glob(pattern)):
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
        gssplat_ros.onnx_export.SCATTERS).
    """
    stem = Path(stem)
    weights = stem.with_suffix(".safetensors")
    if not weights.exists():
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
    log.info("exporting %s for V=%d %dx%d %s to %s", stem.name, views, width, height, precision, folder)
    net, _ = load_model(stem)
    onnx_export.export_onnx(net, path, views, width, height, precision,
                metadata={"checkpoint": stem.name, "checkpoint_sha256": digest}, scatter=scatter)  # fmt: skip
    _prune_stale_exports(folder)
    return path


def _prune_stale_exports(current: Path) -> None:
    """Delete the folders of the same weights exported by other config/exporter versions (never read again).

    Folders of other weights are left alone: another process may still run them.
    """
    weights_prefix = current.name.rsplit("-", 1)[0]  # "<stem>-<weights sha>"
    for stale in current.parent.glob(f"{weights_prefix}-*"):
        if stale != current and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
            log.info("removed stale ONNX exports %s", stale)
