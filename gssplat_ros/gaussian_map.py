"""A bounded global Gaussian map fused from successive windows (beyond the paper).

Usage:
    gmap = GaussianMap(voxel_m=0.05, max_gaussians=500_000)
    gmap.update(window_gaussians)       # newer Gaussians replace older ones in the same voxel
    gmap.gaussians()                    # the fused set
    gmap.save_ply("map.ply")

De-duplication keeps one Gaussian per voxel (the newest: the latest window saw the surface most
recently, so it reflects the present scene); past `max_gaussians` the oldest are evicted first.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import torch

from gssplat_ros.gaussians import Gaussians
from gssplat_ros.ply import save_ply


def voxel_keys(means: torch.Tensor, voxel_m: float) -> torch.Tensor:
    """int64 key per point [N] from its voxel index; exact for |index| < 2^20 (about 50 km at 5 cm)."""
    idx = torch.floor(means / voxel_m).long() + (1 << 20)  # [N, 3], non-negative
    return (idx[:, 0] << 42) | (idx[:, 1] << 21) | idx[:, 2]


class GaussianMap:
    def __init__(self, voxel_m: float = 0.05, max_gaussians: int = 500_000):
        if voxel_m <= 0 or max_gaussians <= 0:
            raise ValueError("map voxel size and max count must be positive")
        self.voxel_m = voxel_m
        self.max_gaussians = max_gaussians
        self._map: Optional[Gaussians] = None
        self._age: Optional[torch.Tensor] = None  # [N] update counter at insertion
        self._updates = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return 0 if self._map is None else len(self._map)

    def update(self, new: Gaussians) -> None:
        """Merge a window's Gaussians: one per voxel, the newest wins; evict the oldest past the cap."""
        new = new.detach().to("cpu")
        with self._lock:
            self._updates += 1
            new_age = torch.full((len(new),), self._updates, dtype=torch.long)
            if self._map is None:
                merged, age = new, new_age
            else:
                merged, age = Gaussians.cat([self._map, new]), torch.cat([self._age, new_age])
            keys = voxel_keys(merged.means, self.voxel_m)
            # Keep the last occurrence of each key: new Gaussians come after old ones.
            order = torch.arange(len(keys))
            uniq, inverse = torch.unique(keys, return_inverse=True)
            last = torch.full((len(uniq),), -1, dtype=torch.long).scatter_reduce(0, inverse, order, "amax")
            merged, age = merged[last], age[last]
            if len(merged) > self.max_gaussians:
                keep = torch.argsort(age, descending=True, stable=True)[: self.max_gaussians]
                merged, age = merged[keep], age[keep]
            self._map, self._age = merged, age

    def gaussians(self) -> Optional[Gaussians]:
        with self._lock:
            return self._map

    def clear(self) -> None:
        with self._lock:
            self._map, self._age, self._updates = None, None, 0

    def save_ply(self, path: str | Path, class_names: tuple[str, ...] = ()) -> int:
        """Write the map as a 3DGS PLY (with labels); returns the number of Gaussians written."""

        g = self.gaussians()
        if g is None:
            raise ValueError("the map is empty: nothing to save")
        save_ply(path, g)
        return len(g)
