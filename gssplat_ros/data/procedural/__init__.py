"""Procedural indoor scenes (rooms, furniture, textures, lights, camera paths) rendered by ray casting.

Usage:
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset
    generate_dataset(GenerateConfig(out="scenes", scenes=4, frames=60, width=320, height=240, seed=0))

Needs numba (the `cpu` extra); `gssplat_ros.data` itself does not import this package.
"""

from gssplat_ros.data.procedural.generate import (
    GENERATOR_VERSION,
    GenerateConfig,
    build_scene,
    default_K,
    generate_dataset,
    generate_scene,
    room_type_for,
    scene_name,
)

__all__ = [
    "GENERATOR_VERSION",
    "GenerateConfig",
    "build_scene",
    "default_K",
    "generate_dataset",
    "generate_scene",
    "room_type_for",
    "scene_name",
]
