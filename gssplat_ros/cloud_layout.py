"""The one PointCloud2 layout for Gaussians (node, offline `gssplat process`, readers): ROS-free.

Usage:
    arr = gaussians_to_cloud_array(gaussians, min_opacity=0.02)   # numpy structured, CLOUD_DTYPE
    data = arr.tobytes()                                          # PointCloud2.data, little-endian
    fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in CLOUD_FIELDS]
    # height=1, width=len(arr), point_step=POINT_STEP, row_step=POINT_STEP*len(arr), is_dense=True
    back = cloud_array_from_bytes(data)                           # the inverse, for tests and tools

Fields (unorganised, little-endian, 56 bytes a point):
    x, y, z        float32  world frame, metres
    rgb            uint32   0x00RRGGBB, the view-independent (SH DC) colour
    opacity        float32  [0, 1]
    scale_0..2     float32  standard deviations along the local axes, metres (not log)
    rot_0..3       float32  rotation quaternion, wxyz (the core's order; local -> world)
    label          uint16   argmax class id, 65535 = none (no semantic features)
    label_conf     float32  softmax max of the class logits, 0 when there is no label
"""

from __future__ import annotations

import numpy as np
import torch

from gssplat_ros.gaussians import Gaussians

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)

NO_LABEL = 65535  # `label` of a Gaussian without semantic features

_F4 = np.dtype("<f4")
_NAMES = ["x", "y", "z", "rgb", "opacity", "scale_0", "scale_1", "scale_2",
          "rot_0", "rot_1", "rot_2", "rot_3", "label", "label_conf"]
_FORMATS = [_F4, _F4, _F4, np.dtype("<u4"), _F4, _F4, _F4, _F4, _F4, _F4, _F4, _F4, np.dtype("<u2"), _F4]
# label (2 bytes) is followed by 2 bytes of padding so label_conf stays 4-byte aligned.
_OFFSETS = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52]
POINT_STEP = 56

CLOUD_DTYPE = np.dtype({"names": _NAMES, "formats": _FORMATS, "offsets": _OFFSETS, "itemsize": POINT_STEP})

_ROS_TYPE = {np.dtype("<f4"): FLOAT32, np.dtype("<u4"): UINT32, np.dtype("<u2"): UINT16}

# [(name, offset, datatype, count)] for sensor_msgs/PointField, in offset order.
CLOUD_FIELDS: list[tuple[str, int, int, int]] = [
    (name, off, _ROS_TYPE[fmt], 1) for name, fmt, off in zip(_NAMES, _FORMATS, _OFFSETS)
]


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Colours [N, 3] in [0, 1] -> [N] uint32 0x00RRGGBB."""
    c = (np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """[N] uint32 0x00RRGGBB -> [N, 3] uint8 RGB."""
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)


def gaussians_to_cloud_array(gaussians: Gaussians, min_opacity: float = 0.0) -> np.ndarray:
    """Gaussians -> structured array [M] of CLOUD_DTYPE (M <= N), ready for PointCloud2.data.

    Args:
        gaussians: N Gaussians in the world frame; `features`, when present, are class logits [N, C].
        min_opacity: Gaussians with opacity below this, or with any non-finite value, are dropped.

    Returns:
        A little-endian structured array; `arr.tobytes()` is the PointCloud2 payload.

    Example:
        >>> arr = gaussians_to_cloud_array(Gaussians.empty(num_features=3))
        >>> arr.dtype.itemsize, len(arr)
        (56, 0)
    """
    g = gaussians.detach()
    keep = g.finite_mask() & (g.opacities >= min_opacity)
    g = g[keep].to("cpu", torch.float32)
    n = len(g)
    arr = np.zeros(n, dtype=CLOUD_DTYPE)
    means = g.means.numpy()
    arr["x"], arr["y"], arr["z"] = means[:, 0], means[:, 1], means[:, 2]
    arr["rgb"] = pack_rgb(g.colors_dc().numpy())
    arr["opacity"] = g.opacities.numpy()
    scales = g.scales.numpy()
    quats = g.normalized().quats.numpy()
    for i in range(3):
        arr[f"scale_{i}"] = scales[:, i]
    for i in range(4):
        arr[f"rot_{i}"] = quats[:, i]
    if g.features is not None and g.features.shape[1] > 0 and n > 0:
        conf, label = torch.softmax(g.features, dim=-1).max(dim=-1)
        arr["label"] = label.clamp(max=NO_LABEL - 1).numpy().astype(np.uint16)
        arr["label_conf"] = conf.numpy()
    else:
        arr["label"] = NO_LABEL
        arr["label_conf"] = 0.0
    return arr


def cloud_array_from_bytes(data: bytes | np.ndarray, point_step: int = POINT_STEP) -> np.ndarray:
    """PointCloud2.data (our layout, little-endian) -> structured array of CLOUD_DTYPE."""
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if point_step != POINT_STEP or buf.size % POINT_STEP:
        raise ValueError(
            f"cloud data of {buf.size} bytes with point_step {point_step} is not the {POINT_STEP}-byte Gaussian layout"
        )
    return buf.view(CLOUD_DTYPE)
