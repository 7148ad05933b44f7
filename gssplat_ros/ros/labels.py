"""Class names and colours for viewers and planners: `~/labels`, its MarkerArray legend, a class-coloured cloud.

Usage:
    colors = class_colors(len(names), palette)                # [C, 3] uint8, the colour of each class
    pub.publish(labels_msg(names, colors))                    # std_msgs/String, JSON (see below)
    pub.publish(legend_markers(names, colors, header))        # visualization_msgs/MarkerArray, text markers
    pub.publish(semantic_cloud_msg(gaussians, colors, header))  # PointCloud2, `rgb` = the class colour

`~/labels` is a std_msgs/String holding JSON, because vision_msgs (LabelInfo) has no Jazzy wheel on PyPI
(`pip index versions ros-jazzy-vision-msgs` finds none):
    {"class_names": ["wall", ...], "palette": [[r, g, b], ...], "unlabeled_id": 255, "no_label_cloud": 65535}
Class i is `class_names[i]`, drawn in `palette[i]`; `~/render/semantic` uses 255 for pixels without a class,
the clouds' `label` field uses 65535 for Gaussians without one.
"""

from __future__ import annotations

import json

import numpy as np

from gssplat_ros.cloud_layout import NO_LABEL, gaussians_to_cloud_array, pack_rgb
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.ros.conversions import cloud_array_to_msg

UNLABELED_PIXEL = 255  # `~/render/semantic` value of a pixel without a class
NO_LABEL_GREY = (128, 128, 128)  # cloud colour of a Gaussian without a class


def class_colors(num_classes: int, palette: np.ndarray) -> np.ndarray:
    """[C, 3] uint8: palette rows for the first classes; classes past the palette are black, as in the renders."""
    colors = np.zeros((num_classes, 3), np.uint8)
    n = min(num_classes, len(palette))
    colors[:n] = np.asarray(palette, np.uint8).reshape(-1, 3)[:n]
    return colors


def labels_json(class_names, colors: np.ndarray) -> str:
    return json.dumps({"class_names": list(class_names), "palette": np.asarray(colors).astype(int).tolist(),
                       "unlabeled_id": UNLABELED_PIXEL, "no_label_cloud": NO_LABEL})


def labels_msg(class_names, colors: np.ndarray):
    from std_msgs.msg import String

    return String(data=labels_json(class_names, colors))


def legend_markers(class_names, colors: np.ndarray, header, spacing_m: float = 0.25, origin=(0.0, -1.0, 2.5)):
    """One TEXT_VIEW_FACING marker per class in the class colour, stacked downwards from `origin` (world frame)."""
    from visualization_msgs.msg import Marker, MarkerArray

    markers = []
    for i, (name, rgb) in enumerate(zip(class_names, colors)):
        m = Marker(header=header, ns="gssplat_legend", id=i, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                   text=f"{i} {name}")
        m.pose.position.x, m.pose.position.y = float(origin[0]), float(origin[1])
        m.pose.position.z = float(origin[2]) - spacing_m * i
        m.pose.orientation.w = 1.0
        m.scale.z = spacing_m * 0.8  # text height
        m.color.r, m.color.g, m.color.b = (float(c) / 255.0 for c in rgb)
        m.color.a = 1.0
        m.frame_locked = True
        markers.append(m)
    return MarkerArray(markers=markers)


def semantic_cloud_array(gaussians: Gaussians, colors: np.ndarray, min_opacity: float = 0.0) -> np.ndarray:
    """The Gaussian cloud layout with `rgb` replaced by the colour of each Gaussian's class (grey: none)."""
    arr = gaussians_to_cloud_array(gaussians, min_opacity)
    lut = np.vstack([np.asarray(colors, np.uint8).reshape(-1, 3), np.asarray([NO_LABEL_GREY], np.uint8)])
    index = np.where(arr["label"] < len(colors), arr["label"], len(colors)).astype(np.int64)  # [M]
    arr["rgb"] = pack_rgb(lut[index].astype(np.float32) / 255.0)
    return arr


def semantic_cloud_msg(gaussians: Gaussians, colors: np.ndarray, header, min_opacity: float = 0.0):
    return cloud_array_to_msg(semantic_cloud_array(gaussians, colors, min_opacity), header)
