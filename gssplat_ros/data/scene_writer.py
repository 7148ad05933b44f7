"""Writes scenes in the ScanNet layout that `data/scenes.py` loads: one writer for every scene generator.

Usage:
    write_intrinsics(root, K)                                       # intrinsic/intrinsic_{color,depth}.txt
    write_frame(root, i, color, depth_m, raw_labels, world_from_cam, image_format="png")
    write_json(root / "scene.json", meta)
Every file is written to a temporary name in its folder and renamed, so a killed generator leaves whole files.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

SUBFOLDERS = ("color", "depth", "label-filt", "pose", "intrinsic")


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """write(tmp_path) into a temporary file beside `path`, then rename it to `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_image(path: Path, array: np.ndarray, jpeg: bool = False) -> None:
    im = Image.fromarray(array)
    options = {"quality": 95} if jpeg else {"compress_level": 1}  # fast PNG: generation is render-bound
    write_atomic(path, lambda p: im.save(p, format="JPEG" if jpeg else "PNG", **options))


def make_folders(root: Path) -> None:
    for sub in SUBFOLDERS:
        (root / sub).mkdir(parents=True, exist_ok=True)


def write_intrinsics(root: Path, K: np.ndarray) -> None:
    """K: [3, 3] pixels; written as the 4x4 matrices ScanNet stores for colour and depth."""
    K4 = np.eye(4)
    K4[:3, :3] = K
    for fname in ("intrinsic_color.txt", "intrinsic_depth.txt"):
        write_atomic(root / "intrinsic" / fname, lambda p: np.savetxt(p, K4, fmt="%.6f"))


def write_frame(root: Path, index: int, color: np.ndarray, depth_m: np.ndarray, raw_labels: np.ndarray,
                world_from_cam: np.ndarray, image_format: str = "png") -> None:
    """color: [H, W, 3] uint8; depth_m: [H, W] metres (stored as uint16 millimetres); raw_labels: [H, W]
    ScanNet raw ids; world_from_cam: [4, 4] in OpenCV camera axes."""
    ext = "jpg" if image_format == "jpg" else "png"
    save_image(root / "color" / f"{index}.{ext}", color, jpeg=ext == "jpg")
    save_image(root / "depth" / f"{index}.png", np.clip(np.round(depth_m * 1000.0), 0, 65535).astype(np.uint16))
    save_image(root / "label-filt" / f"{index}.png", raw_labels.astype(np.uint16))
    write_atomic(root / "pose" / f"{index}.txt", lambda p: np.savetxt(p, world_from_cam, fmt="%.9f"))


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda p: Path(p).write_text(json.dumps(data, indent=1)))
