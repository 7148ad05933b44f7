"""Scene splits, nearest-view selection and the window dataset (context views + held-out targets).

Usage:
    ds = WindowDataset("scenes/", "scannet", split="train", views=8, targets=2, size=(320, 240))
    item = ds[0]     # dict: context_images [V,3,H,W], context_depth [V,1,H,W], context_labels [V,H,W],
                     #       context_K [V,3,3], context_world_from_cam [V,4,4], target_images [T,3,H,W],
                     #       target_depth [T,H,W], target_labels [T,H,W], target_K, target_world_from_cam,
                     #       scene (str), context_indices [V], target_indices [T] (frame positions in the scene)
    idx = nearest_views(scene.poses, scene.poses[10], V=8, exclude=10)

Scene split rule (deterministic, scene level; test scenes never reach train or val):
1. `ROOT/splits/{train,val,test}.txt` (one scene name per line, '#' comments) when present; a name listed
   for test and for train or val is an error. A split without a file is empty.
2. Otherwise, Replica roots holding the paper's scenes: test = office_4, room_2 (GSsplat / GSNeRF),
   val = office_3 (held out of the paper's training set for checkpoint selection), train = the rest.
3. Otherwise scene names sorted: the last max(1, round(0.15 n)) are test, the max(1, round(0.10 n)) before
   them are val, the rest train. With fewer than 3 scenes everything is train (val/test are empty).
`split="all"` takes every scene.

Frame sampling per item. "random" (train default): every frame of every scene is one item's first target t0;
the V + T - 1 other frames come at random from the ceil(pool_factor * (V + T - 1)) frames nearest t0; T - 1
of them become extra targets, the rest (V) the context, ordered nearest first. "fixed" (val/test default,
the S-Ray / GSNeRF ScanNet protocol): targets are frames target_start::target_stride (at most max_targets
per scene), context candidates are frames ::context_stride minus the targets (all non-targets if too few);
the V nearest are the context and the next T - 1 the extra targets. (GSNeRF also stops both lists at frame
700 of a ScanNet sequence; pass `scenes` trimmed accordingly, or use the listing files, to match that.)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gssplat_ros.data.scenes import Frame, Scene, load_scene
from gssplat_ros.errors import DataError

ROTATION_WEIGHT_M = 0.3  # metres of camera travel that count as much as one radian of rotation
SPLITS = ("train", "val", "test", "all")
REPLICA_TEST = ("office_4", "room_2")
REPLICA_VAL = ("office_3",)
TEST_FRACTION, VAL_FRACTION = 0.15, 0.10


# ------------------------------------------------------------------------------------------ views
def view_distances(poses, query_pose, rotation_weight_m: float = ROTATION_WEIGHT_M) -> np.ndarray:
    """[F] distance of each pose to the query: |c_i - c_q| (m) + rotation_weight_m * angle(R_i, R_q) (rad).

    Args:
        poses: [F, 4, 4] camera-to-world (tensor or array).
        query_pose: [4, 4] camera-to-world.
    """
    p = np.asarray(poses.detach().cpu() if isinstance(poses, Tensor) else poses, dtype=np.float64)
    q = np.asarray(query_pose.detach().cpu() if isinstance(query_pose, Tensor) else query_pose, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (4, 4) or q.shape != (4, 4):
        raise ValueError(f"poses must be [F,4,4] and query_pose [4,4], got {p.shape} and {q.shape}")
    trans = np.linalg.norm(p[:, :3, 3] - q[:3, 3], axis=-1)
    cos = (np.einsum("fij,ij->f", p[:, :3, :3], q[:3, :3]) - 1.0) / 2.0  # trace(R_i^T R_q)
    angle = np.arccos(np.clip(cos, -1.0, 1.0))
    return trans + rotation_weight_m * angle


def nearest_views(poses, query_pose, V: int, exclude=None, rotation_weight_m: float = ROTATION_WEIGHT_M) -> list[int]:
    """Indices of the V poses nearest the query, nearest first (ties broken by index).

    Distance: camera-centre distance in metres + rotation_weight_m (0.3 m per radian) * relative rotation
    angle, so views that look elsewhere rank behind views from the same spot looking the same way.

    Args:
        poses: [F, 4, 4] camera-to-world.
        query_pose: [4, 4] camera-to-world.
        V: how many to return (fewer if fewer remain).
        exclude: an index or an iterable of indices never returned (e.g. the query frame itself).

    Example:
        >>> nearest_views(scene.poses, scene.poses[5], V=4, exclude=5)  # doctest: +SKIP
        [4, 6, 3, 7]
    """
    dist = view_distances(poses, query_pose, rotation_weight_m)
    order = np.lexsort((np.arange(len(dist)), dist))
    if exclude is None:
        banned: set[int] = set()
    elif isinstance(exclude, (int, np.integer)):
        banned = {int(exclude)}
    else:
        banned = {int(e) for e in exclude}
    return [int(i) for i in order if int(i) not in banned][: max(0, int(V))]


def near_duplicates(poses, query_pose, min_m: float = 0.0, min_deg: float = 0.0) -> list[int]:
    """Indices of the poses too close to the query to serve as its context: nearer than `min_m` metres
    and turned less than `min_deg` degrees (a limit of 0 is not applied; both 0: none)."""
    if min_m <= 0 and min_deg <= 0:
        return []
    p = np.asarray(poses.detach().cpu() if isinstance(poses, Tensor) else poses, dtype=np.float64)  # [F, 4, 4]
    q = np.asarray(query_pose.detach().cpu() if isinstance(query_pose, Tensor) else query_pose, dtype=np.float64)
    close = np.ones(len(p), bool)
    if min_m > 0:
        close &= np.linalg.norm(p[:, :3, 3] - q[:3, 3], axis=-1) < min_m
    if min_deg > 0:
        cos = (np.einsum("fij,ij->f", p[:, :3, :3], q[:3, :3]) - 1.0) / 2.0
        close &= np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) < min_deg
    return [int(i) for i in np.flatnonzero(close)]


# ------------------------------------------------------------------------------------------ splits
def list_scenes(root: Union[str, Path], format: str = "scannet") -> dict[str, Path]:
    """{name: folder} of the scenes under root (one or two levels deep, e.g. Replica's room_0/Sequence_1)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}")

    def is_scene(p: Path) -> bool:
        if format == "replica":
            return (p / "traj_w_c.txt").exists()
        return (p / "color").is_dir()

    found: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        if not p.is_dir():
            continue
        if is_scene(p):
            found[p.name] = p
            continue
        for q in sorted(p.iterdir()):
            if q.is_dir() and is_scene(q):
                found.setdefault(p.name, q)  # first sequence of a scene, named by the scene
    return found


def _read_listing(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def split_scenes(root: Union[str, Path], format: str = "scannet", split: str = "train") -> list[str]:
    """Scene names of one split, by the rule in the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    scenes = list_scenes(root, format)
    names = sorted(scenes)
    if split == "all":
        return names
    listing_dir = root / "splits"
    if listing_dir.is_dir() and any((listing_dir / f"{s}.txt").exists() for s in ("train", "val", "test")):
        lists = {s: _read_listing(listing_dir / f"{s}.txt") if (listing_dir / f"{s}.txt").exists() else []
                 for s in ("train", "val", "test")}
        leak = set(lists["test"]) & (set(lists["train"]) | set(lists["val"]))
        if leak:
            raise DataError(f"{listing_dir}: test scenes also listed for train/val: {sorted(leak)}")
        missing = [n for n in lists[split] if n not in scenes]
        if missing:
            raise DataError(f"{listing_dir / (split + '.txt')}: scenes not found under {root}: {missing}")
        return lists[split]
    if format == "replica" and set(REPLICA_TEST) <= set(names):
        test, val = list(REPLICA_TEST), [n for n in REPLICA_VAL if n in names]
        groups = {"test": test, "val": val, "train": [n for n in names if n not in test and n not in val]}
        return groups[split]
    n = len(names)
    if n < 3:
        return names if split == "train" else []
    n_test = max(1, round(TEST_FRACTION * n))
    n_val = max(1, round(VAL_FRACTION * n))
    groups = {"train": names[: n - n_test - n_val], "val": names[n - n_test - n_val: n - n_test],
              "test": names[n - n_test:]}
    return groups[split]


# ------------------------------------------------------------------------------------------ dataset
class WindowDataset(Dataset):
    """Context/target windows over the scenes of one split (see the module docstring for the rules).

    Args:
        root: folder of scene folders.
        format: "scannet" or "replica".
        split: "train", "val", "test" or "all".
        views: V context views per item.
        targets: T target views per item (never among the context).
        size: (W, H) of every returned image; K is scaled to it.
        scenes: explicit scene names (overrides `split`).
        sampling: "random" or "fixed"; default random for train, fixed otherwise.
        pool_factor: random sampling draws from the ceil(pool_factor * (V + T - 1)) nearest frames.
        target_start, target_stride, max_targets, context_stride: the fixed protocol (S-Ray / GSNeRF:
            targets 2::20 up to 10 per scene, context candidates ::5).
        min_baseline_m, min_baseline_deg: frames nearer the first target than both limits (`near_duplicates`)
            never serve as context, so near-duplicate frames of a real capture cannot stand in for the query.
        seed: base seed of random sampling; `set_epoch` varies it per epoch.
        cache_frames: keep up to this many decoded frames in memory (per worker).
        scene_kwargs: passed to `load_scene` (e.g. skip_invalid_poses=True, label_map=...).
    """

    def __init__(self, root: Union[str, Path], format: str = "scannet", split: str = "train", views: int = 8,
                 targets: int = 1, size: Sequence[int] = (320, 240), *, scenes: Optional[Sequence[str]] = None,
                 sampling: Optional[str] = None, pool_factor: float = 1.5, target_start: int = 2,
                 target_stride: int = 20, max_targets: int = 10, context_stride: int = 5, seed: int = 0,
                 cache_frames: int = 0, scene_kwargs: Optional[dict] = None, min_baseline_m: float = 0.0,
                 min_baseline_deg: float = 0.0):
        if views < 1 or targets < 1:
            raise ValueError(f"views and targets must be >= 1, got {views} and {targets}")
        self.root = Path(root)
        self.format = format
        self.split = split
        self.views, self.targets = int(views), int(targets)
        self.size = (int(size[0]), int(size[1]))
        self.sampling = sampling or ("random" if split == "train" else "fixed")
        if self.sampling not in ("random", "fixed"):
            raise ValueError(f"sampling must be 'random' or 'fixed', got {self.sampling!r}")
        self.pool_factor = max(1.0, float(pool_factor))
        self.target_start, self.target_stride = int(target_start), max(1, int(target_stride))
        self.max_targets, self.context_stride = int(max_targets), max(1, int(context_stride))
        self.seed, self.epoch = int(seed), 0
        self.min_baseline_m, self.min_baseline_deg = float(min_baseline_m), float(min_baseline_deg)
        self.cache_frames = int(cache_frames)
        self._cache: OrderedDict[tuple[int, int], Frame] = OrderedDict()

        available = list_scenes(self.root, format)
        names = list(scenes) if scenes is not None else split_scenes(self.root, format, split)
        if not names:
            raise DataError(
                f"{self.root}: split '{split}' has no scenes ({len(available)} scenes found; see "
                "gssplat_ros.data.windows for the split rule, or add splits/{train,val,test}.txt)"
            )
        for n in names:
            if n not in available:
                raise DataError(f"{self.root / n}: scene not found (format {format})")
        self.scenes: list[Scene] = [load_scene(available[n], format, size=self.size, **(scene_kwargs or {}))
                                    for n in names]
        need = self.views + self.targets
        for s in self.scenes:
            if len(s) < need:
                raise DataError(f"{s.path}: {len(s)} frames, but a window needs {need} (views + targets)")
        self.items: list[tuple[int, int]] = []
        self._eval_targets: dict[int, set[int]] = {}
        for si, s in enumerate(self.scenes):
            if self.sampling == "random":
                self.items += [(si, t) for t in range(len(s))]
            else:
                tgts = list(range(self.target_start, len(s), self.target_stride))[: self.max_targets]
                tgts = tgts or [len(s) // 2]
                self._eval_targets[si] = set(tgts)
                self.items += [(si, t) for t in tgts]

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Vary random sampling per epoch (the DataLoader's worker seeds vary it too)."""
        self.epoch = int(epoch)

    # ---------------------------------------------------------------------------- selection
    def select(self, index: int) -> tuple[int, list[int], list[int]]:
        """(scene index, context frame positions [V], target frame positions [T]) of one item."""
        si, t0 = self.items[index]
        scene = self.scenes[si]
        poses = scene.poses
        n_extra = self.targets - 1
        too_close = near_duplicates(poses, poses[t0], self.min_baseline_m, self.min_baseline_deg)
        if self.sampling == "random":
            pool_n = math.ceil(self.pool_factor * (self.views + n_extra))
            pool = nearest_views(poses, poses[t0], pool_n, exclude=[t0] + too_close)
            rng = np.random.default_rng(self._seed_for(index))
            chosen = [pool[i] for i in sorted(rng.choice(len(pool), self.views + n_extra, replace=False))]
            extra = [chosen[i] for i in sorted(rng.choice(len(chosen), n_extra, replace=False))] if n_extra else []
            context = [c for c in chosen if c not in extra]
        else:
            all_targets = self._eval_targets[si]
            candidates = [i for i in range(0, len(scene), self.context_stride) if i not in all_targets]
            if len(candidates) < self.views + n_extra:
                candidates = [i for i in range(len(scene)) if i != t0]
            banned = [i for i in range(len(scene)) if i not in candidates] + [t0] + too_close
            ranked = nearest_views(poses, poses[t0], self.views + n_extra, exclude=banned)
            context, extra = ranked[: self.views], ranked[self.views:]
        if len(context) < self.views:
            raise DataError(f"{scene.name} frame {t0}: only {len(context)} frames are at least the minimum baseline "
                            f"({self.min_baseline_m:g} m, {self.min_baseline_deg:g} deg) from it, {self.views} needed")
        return si, context, [t0] + extra

    def _seed_for(self, index: int) -> list[int]:
        worker = torch.utils.data.get_worker_info()
        return [self.seed, self.epoch, index, (torch.initial_seed() % 2**32) if worker is not None else 0]

    # ---------------------------------------------------------------------------- loading
    def _frame(self, si: int, i: int) -> Frame:
        key = (si, i)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        f = self.scenes[si].frame(i)
        if self.cache_frames > 0:
            self._cache[key] = f
            while len(self._cache) > self.cache_frames:
                self._cache.popitem(last=False)
        return f

    def __getitem__(self, index: int) -> dict:
        si, context, target = self.select(index)
        ctx = [self._frame(si, i) for i in context]
        tgt = [self._frame(si, i) for i in target]
        return {
            "context_images": torch.stack([f.image for f in ctx]),
            "context_depth": torch.stack([f.depth for f in ctx])[:, None],
            "context_labels": torch.stack([f.labels for f in ctx]),
            "context_K": torch.stack([f.K for f in ctx]),
            "context_world_from_cam": torch.stack([f.world_from_cam for f in ctx]),
            "target_images": torch.stack([f.image for f in tgt]),
            "target_depth": torch.stack([f.depth for f in tgt]),
            "target_labels": torch.stack([f.labels for f in tgt]),
            "target_K": torch.stack([f.K for f in tgt]),
            "target_world_from_cam": torch.stack([f.world_from_cam for f in tgt]),
            "scene": self.scenes[si].name,
            "context_indices": torch.tensor(context, dtype=torch.long),
            "target_indices": torch.tensor(target, dtype=torch.long),
        }


class MixedWindows(Dataset):
    """Several WindowDatasets as one (items of all, in order), e.g. one image size each for multi-scale
    training: a random sampler then draws sizes in proportion to their item counts. One batch is one
    window, so windows of different sizes never meet in a batch."""

    def __init__(self, datasets: Sequence[WindowDataset]):
        if not datasets:
            raise ValueError("MixedWindows needs at least one dataset")
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])  # [n + 1]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            d.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range ({len(self)})")
        which = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.datasets[which][index - int(self.offsets[which])]
