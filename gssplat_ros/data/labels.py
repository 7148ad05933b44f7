"""Class sets and label mappings: ScanNet-20 (S-Ray / GSNeRF), raw ScanNet ids, Replica classes.

Usage:
    from gssplat_ros.data.labels import CLASS_NAMES, scannet_raw_to_class_lut, replica_to_class_lut
    lut = scannet_raw_to_class_lut()          # int64 [max_raw + 1]; raw ScanNet id -> 0..19, 20 = other
    classes = lut[np.minimum(raw, len(lut) - 1)]

The 20 classes are the NYU40 ids 1,2,3,4,5,6,7,8,9,10,11,12,14,16,24,28,33,34,36,39 in that order
(mmdetection3d's / S-Ray's `PointSegClassMapping`); every other NYU40 id, raw id 0 ("unannotated") and
any raw id missing from the table map to IGNORE_INDEX = 20.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import numpy as np

from gssplat_ros.errors import DataError

CLASS_NAMES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
)  # fmt: skip
NUM_CLASSES = 20
IGNORE_INDEX = 20  # "other": excluded from losses and metrics
NYU40_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)

# ScanNet benchmark colours for the NYU40 ids above (ScanNet `util.create_color_palette`); index 20 black.
PALETTE = np.array(
    [
        (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
        (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
        (196, 156, 148), (23, 190, 207), (247, 182, 210), (219, 219, 141), (255, 127, 14),
        (158, 218, 229), (44, 160, 44), (112, 128, 144), (227, 119, 194), (82, 84, 163),
        (0, 0, 0),
    ],
    dtype=np.uint8,
)  # fmt: skip

TSV_NAME = "scannetv2-labels.combined.tsv"


def nyu40_to_class_lut() -> np.ndarray:
    """int64 [41]: NYU40 id (0..40) -> class id 0..19, 20 for every other id."""
    lut = np.full(41, IGNORE_INDEX, dtype=np.int64)
    for cls, nyu in enumerate(NYU40_IDS):
        lut[nyu] = cls
    return lut


def _default_tsv() -> Path:
    return Path(str(resources.files("gssplat_ros") / "assets" / TSV_NAME))


@functools.lru_cache(maxsize=4)
def _read_tsv(path: str) -> dict[int, int]:
    raw_to_nyu: dict[int, int] = {}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if reader.fieldnames is None or not {"id", "nyu40id"} <= set(reader.fieldnames):
                raise DataError(f"{path}: not a ScanNet label table (needs the columns 'id' and 'nyu40id')")
            for row in reader:
                try:
                    raw_to_nyu[int(row["id"])] = int(row["nyu40id"])
                except (TypeError, ValueError):
                    raise DataError(f"{path}: bad row {row!r}") from None
    except FileNotFoundError:
        raise DataError(f"ScanNet label table not found: {path}") from None
    return raw_to_nyu


def scannet_raw_to_nyu40(tsv: Optional[Union[str, Path]] = None) -> dict[int, int]:
    """Raw ScanNet label id -> NYU40 id, from `scannetv2-labels.combined.tsv` (the shipped copy by default)."""
    return dict(_read_tsv(str(tsv or _default_tsv())))


@functools.lru_cache(maxsize=4)
def _raw_lut(path: str) -> np.ndarray:
    raw_to_nyu = _read_tsv(path)
    nyu_lut = nyu40_to_class_lut()
    lut = np.full(max(raw_to_nyu) + 2, IGNORE_INDEX, dtype=np.int64)  # last entry: "unknown raw id"
    for raw, nyu in raw_to_nyu.items():
        lut[raw] = nyu_lut[nyu] if 0 <= nyu <= 40 else IGNORE_INDEX
    lut[0] = IGNORE_INDEX
    lut.setflags(write=False)
    return lut


def scannet_raw_to_class_lut(tsv: Optional[Union[str, Path]] = None) -> np.ndarray:
    """int64 [N]: raw ScanNet id -> class 0..19 or 20; index with `np.minimum(raw, N - 1)` (last = unknown)."""
    return _raw_lut(str(tsv or _default_tsv()))


def map_scannet_raw(raw: np.ndarray, tsv: Optional[Union[str, Path]] = None) -> np.ndarray:
    """Raw ScanNet label image (any int dtype) -> int64 class ids 0..20."""
    lut = scannet_raw_to_class_lut(tsv)
    return lut[np.minimum(raw.astype(np.int64), len(lut) - 1)]


@functools.lru_cache(maxsize=4)
def _raw_ids_by_name(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            out.setdefault(row["raw_category"], int(row["id"]))
    return out


def scannet_raw_id(name: str, tsv: Optional[Union[str, Path]] = None) -> int:
    """Raw ScanNet id of a `raw_category` name in the label table (e.g. "kitchen cabinets" -> 29).

    Raises:
        DataError: the name is not in the table.
    """
    path = str(tsv or _default_tsv())
    _read_tsv(path)  # clear errors for a missing or malformed table
    try:
        return _raw_ids_by_name(path)[name]
    except KeyError:
        raise DataError(f"{name!r} is not a raw category of the ScanNet label table") from None


# ------------------------------------------------------------------------------------------ Replica
# Replica's semantic classes by id (the `classes` list of each scene's `info_semantic.json`; Semantic-NeRF's
# `semantic_class_*.png` store these ids). Index = class id.
REPLICA_CLASS_NAMES: tuple[str, ...] = (
    "other", "backpack", "base-cabinet", "basket", "bathtub", "beam", "beanbag", "bed", "bench", "bike",
    "bin", "blanket", "blinds", "book", "bottle", "box", "bowl", "camera", "cabinet", "candle", "chair",
    "chopping-board", "clock", "cloth", "clothing", "coaster", "comforter", "computer-keyboard", "cup",
    "cushion", "curtain", "ceiling", "cooktop", "countertop", "desk", "desk-organizer", "desktop-computer",
    "door", "exercise-ball", "faucet", "floor", "handbag", "hair-dryer", "handrail", "indoor-plant",
    "knife-block", "kitchen-utensil", "lamp", "laptop", "major-appliance", "mat", "microwave", "monitor",
    "mouse", "nightstand", "pan", "panel", "paper-towel", "phone", "picture", "pillar", "pillow", "pipe",
    "plant-stand", "plate", "pot", "rack", "refrigerator", "remote-control", "scarf", "sculpture", "shelf",
    "shoe", "shower-stall", "sink", "small-appliance", "sofa", "stair", "stool", "switch", "table",
    "table-runner", "tablet", "tissue-paper", "toilet", "toothbrush", "towel", "tv-screen", "tv-stand",
    "umbrella", "utensil-holder", "vase", "vent", "wall", "wall-cabinet", "wall-plug", "wardrobe", "window",
    "rug", "logo", "bag", "set-of-clothing",
)  # fmt: skip

# Replica class name -> ScanNet-20 class name, chosen as ScanNet's own table does for the same word
# (e.g. ScanNet maps "wardrobe", "bench" and "tv stand" to NYU40 otherfurniture, "nightstand" to night
# stand = other, "rug" to otherprop = other, "beam"/"pillar" to other structure = other).
REPLICA_TO_SCANNET20: dict[str, str] = {
    "wall": "wall", "floor": "floor",
    "cabinet": "cabinet", "base-cabinet": "cabinet", "wall-cabinet": "cabinet",
    "bed": "bed", "chair": "chair", "sofa": "sofa", "table": "table", "door": "door", "window": "window",
    "picture": "picture", "countertop": "counter", "desk": "desk", "curtain": "curtain",
    "refrigerator": "refrigerator", "toilet": "toilet", "sink": "sink", "bathtub": "bathtub",
    "bench": "otherfurniture", "wardrobe": "otherfurniture", "tv-stand": "otherfurniture",
    "bin": "otherfurniture", "beanbag": "otherfurniture",
}  # fmt: skip


def replica_to_class_lut(label_map: Optional[Mapping[int, int]] = None) -> np.ndarray:
    """int64 [256]: Replica class id -> ScanNet-20 class id (20 = other).

    Args:
        label_map: optional explicit {replica id: class id 0..20}; overrides the name-based default.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
    if label_map is None:
        index = {name: i for i, name in enumerate(CLASS_NAMES)}
        for rid, name in enumerate(REPLICA_CLASS_NAMES):
            if name in REPLICA_TO_SCANNET20:
                lut[rid] = index[REPLICA_TO_SCANNET20[name]]
    else:
        for rid, cls in label_map.items():
            if not (0 <= int(rid) < 256 and 0 <= int(cls) <= IGNORE_INDEX):
                raise DataError(f"Replica label map entry {rid}: {cls} out of range")
            lut[int(rid)] = int(cls)
    return lut


def load_label_map_json(path: Union[str, Path]) -> dict[int, int]:
    """Read a `{"<replica id>": <class id or class name>, ...}` JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"label map not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: must hold a JSON object of replica id -> class")
    out: dict[int, int] = {}
    for key, value in data.items():
        try:
            out[int(key)] = CLASS_NAMES.index(value) if isinstance(value, str) else int(value)
        except ValueError:
            raise DataError(f"{path}: bad entry {key!r}: {value!r}") from None
    return out


def colorize(labels: np.ndarray, palette: np.ndarray = PALETTE) -> np.ndarray:
    """[H, W] class ids (anything outside 0..19 is drawn black) -> [H, W, 3] uint8."""
    idx = np.where((labels >= 0) & (labels < len(palette) - 1), labels, len(palette) - 1)
    return palette[idx]
