"""Scenes, loaders and windows for training and evaluation (ScanNet-20 classes).

Usage:
    from gssplat_ros.data import CLASS_NAMES, IGNORE_INDEX, load_scene, nearest_views, WindowDataset
    scene = load_scene("scenes/scene0000_00", "scannet", size=(320, 240))
    frame = scene.frame(0)
    ds = WindowDataset("scenes", "scannet", split="train", views=8, targets=2, size=(320, 240))

Generated scenes (`gssplat data generate`) come from two independent sources, `gssplat_ros.data.procedural`
(analytic primitives) and `gssplat_ros.data.meshes` (triangle meshes, needs trimesh), both numba ray casters,
with appearance randomisation from `gssplat_ros.data.appearance` (docs/data.md); they are not imported here
so that this package imports without numba.
"""

from gssplat_ros.data.labels import (
    CLASS_NAMES,
    IGNORE_INDEX,
    NUM_CLASSES,
    NYU40_IDS,
    PALETTE,
    colorize,
    map_scannet_raw,
    scannet_raw_to_class_lut,
)
from gssplat_ros.data.scenes import Frame, ReplicaScene, ScanNetScene, Scene, load_scene
from gssplat_ros.data.windows import (
    ROTATION_WEIGHT_M,
    WindowDataset,
    list_scenes,
    nearest_views,
    split_scenes,
    view_distances,
)

__all__ = [
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "NYU40_IDS",
    "PALETTE",
    "colorize",
    "map_scannet_raw",
    "scannet_raw_to_class_lut",
    "Frame",
    "Scene",
    "ScanNetScene",
    "ReplicaScene",
    "load_scene",
    "ROTATION_WEIGHT_M",
    "WindowDataset",
    "list_scenes",
    "nearest_views",
    "split_scenes",
    "view_distances",
]
