"""The one Gaussian container that flows encoder -> renderer -> PointCloud2 -> PLY.

Usage:
    g = Gaussians.empty(sh_degree=0, num_features=20)
    g = Gaussians.cat([g1, g2]).to("cuda")
    visible = g[g.opacities > 0.05]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Optional

import torch
from torch import Tensor


def num_sh_bases(degree: int) -> int:
    """Number of real SH coefficients for a degree 0-3 expansion."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    return (degree + 1) ** 2


def sh_degree_from_bases(num_bases: int) -> int:
    """Inverse of `num_sh_bases`; raises for counts that are not a square of 1..4."""
    for degree in range(4):
        if (degree + 1) ** 2 == num_bases:
            return degree
    raise ValueError(f"{num_bases} SH bases is not (degree+1)^2 for a degree 0..3")


# The zeroth real SH basis; colour = SH_C0 * dc + 0.5 (3DGS / gsplat convention).
SH_C0 = 0.28209479177387814


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """RGB in [0, 1] -> SH DC coefficient that renders back to the same colour."""
    return (rgb - 0.5) / SH_C0


@dataclass
class Gaussians:
    """A set of N 3D Gaussians in the world frame.

    Attributes:
        means: centres, [N, 3], metres, world frame.
        quats: rotations, [N, 4], wxyz, unit norm (local -> world).
        scales: standard deviations along the local axes, [N, 3], metres (not log).
        opacities: [N], in [0, 1] (not logits).
        sh: colour as real spherical harmonics, [N, K, 3], K = (degree+1)^2, degree 0..3.
        features: optional per-Gaussian feature vector, [N, D] (class logits or any N-D feature).
    """

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4]
    scales: Tensor  # [N, 3]
    opacities: Tensor  # [N]
    sh: Tensor  # [N, K, 3]
    features: Optional[Tensor] = None  # [N, D]

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "scales": (n, 3),
            "opacities": (n,),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Gaussians.{name} must have shape {shape}, got {got}")
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh must have shape ({n}, K, 3), got {tuple(self.sh.shape)}")
        sh_degree_from_bases(self.sh.shape[1])
        if self.features is not None and (self.features.dim() != 2 or self.features.shape[0] != n):
            raise ValueError(
                f"Gaussians.features must have shape ({n}, D), got {tuple(self.features.shape)}"
            )

    # ----------------------------------------------------------------- construction
    @staticmethod
    def empty(
        sh_degree: int = 0,
        num_features: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Gaussians:
        """A set with no Gaussians (N = 0) but the given SH degree and feature width."""
        z = lambda *s: torch.zeros(*s, device=device, dtype=dtype)  # noqa: E731
        return Gaussians(
            means=z(0, 3),
            quats=z(0, 4),
            scales=z(0, 3),
            opacities=z(0),
            sh=z(0, num_sh_bases(sh_degree), 3),
            features=z(0, num_features) if num_features > 0 else None,
        )

    @staticmethod
    def cat(parts: Sequence[Gaussians]) -> Gaussians:
        """Concatenate sets with the same SH degree and feature width."""
        if not parts:
            raise ValueError("Gaussians.cat needs at least one set")
        has_feat = {p.features is not None for p in parts}
        if len(has_feat) != 1:
            raise ValueError("Gaussians.cat: all sets must have features, or none")
        return Gaussians(
            means=torch.cat([p.means for p in parts]),
            quats=torch.cat([p.quats for p in parts]),
            scales=torch.cat([p.scales for p in parts]),
            opacities=torch.cat([p.opacities for p in parts]),
            sh=torch.cat([p.sh for p in parts]),
            features=torch.cat([p.features for p in parts]) if has_feat == {True} else None,
        )

    # ----------------------------------------------------------------- properties
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def count(self) -> int:
        return len(self)

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.sh.shape[1])

    @property
    def num_features(self) -> int:
        return 0 if self.features is None else self.features.shape[1]

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def colors_dc(self) -> Tensor:
        """View-independent RGB from the DC term, clamped to [0, 1], [N, 3]."""
        return (self.sh[:, 0, :] * SH_C0 + 0.5).clamp(0.0, 1.0)

    def labels(self) -> Optional[Tensor]:
        """Argmax class id per Gaussian, [N] int64, or None without features."""
        return None if self.features is None else self.features.argmax(dim=-1)

    # ----------------------------------------------------------------- transforms
    def _map(self, fn) -> Gaussians:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Gaussians(**{name: None if v is None else fn(v) for name, v in values.items()})

    def to(self, device=None, dtype: Optional[torch.dtype] = None) -> Gaussians:
        """Move every tensor to a device and/or floating dtype."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> Gaussians:
        return self._map(lambda t: t.detach())

    def __getitem__(self, index) -> Gaussians:
        """Select Gaussians by boolean mask [N], index tensor or slice."""
        return self._map(lambda t: t[index])

    def translated(self, offset: Tensor) -> Gaussians:
        """A copy moved by `offset` [3] metres (world frame); shapes and orientations unchanged."""
        return replace(self, means=self.means + offset.to(self.means))

    def with_features(self, features: Optional[Tensor]) -> Gaussians:
        return replace(self, features=features)

    def normalized(self) -> Gaussians:
        """A copy whose quaternions have unit norm."""
        return replace(self, quats=torch.nn.functional.normalize(self.quats, dim=-1))

    def finite_mask(self) -> Tensor:
        """[N] bool: True where every attribute is finite."""
        mask = torch.isfinite(self.means).all(-1) & torch.isfinite(self.quats).all(-1)
        mask &= torch.isfinite(self.scales).all(-1) & torch.isfinite(self.opacities)
        mask &= torch.isfinite(self.sh).flatten(1).all(-1)
        if self.features is not None:
            mask &= torch.isfinite(self.features).all(-1)
        return mask

    def without_nonfinite(self) -> tuple[Gaussians, int]:
        """The Gaussians whose every attribute is finite, and how many were dropped.

        The one policy for NaN / inf (including values that overflowed when decoded, e.g. exp of a log
        scale of 100 in float32): such a Gaussian cannot be rendered or stored meaningfully, so readers
        and writers drop it and report the count instead of rendering black or writing garbage.
        """
        mask = self.finite_mask()
        dropped = int((~mask).sum())
        return (self if dropped == 0 else self[mask]), dropped
