"""Where the shipped weights live: trained on generated scenes only, used by default everywhere.

Usage:
    path = default_checkpoint("sensor")   # .../assets/weights/tiny_sensor (no extension)
"""

from __future__ import annotations

from pathlib import Path

from gssplat_ros.errors import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent / "assets" / "weights"
DEPTH_MODES = ("sensor", "estimated")


def default_checkpoint(depth_mode: str = "sensor") -> Path:
    """Path stem of the shipped checkpoint for a depth mode (`X.safetensors` + `X.json`)."""
    if depth_mode not in DEPTH_MODES:
        raise CheckpointError(f"depth mode must be one of {DEPTH_MODES}, got {depth_mode!r}")
    return WEIGHTS_DIR / f"tiny_{depth_mode}"


def checkpoint_stem(path: str | Path) -> Path:
    """Accept `X`, `X.safetensors` or `X.json` and return the stem `X`."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
