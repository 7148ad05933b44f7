"""Mesh-room scene source: ray caster against analytic depth, layout rules, on-disk format, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")
trimesh = pytest.importorskip("trimesh")

from gssplat_ros.data import load_scene  # noqa: E402
from gssplat_ros.data.labels import CLASS_NAMES, IGNORE_INDEX, scannet_raw_id, scannet_raw_to_class_lut  # noqa: E402
from gssplat_ros.data.meshes import furniture as fu  # noqa: E402
from gssplat_ros.data.meshes.bvh import MISS, build_bvh, cast  # noqa: E402
from gssplat_ros.data.meshes.generate import render_view, room_arrays  # noqa: E402
from gssplat_ros.data.meshes.rooms import ROOM_TYPES, MeshRoom, build_room  # noqa: E402
from gssplat_ros.data.procedural import GenerateConfig, generate_dataset  # noqa: E402
from gssplat_ros.errors import DataError  # noqa: E402

W, H, F = 64, 48, 3


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("meshes")
    generate_dataset(GenerateConfig(out=str(out), scenes=2, frames=F, width=W, height=H, seed=3, source="meshes",
                                    appearance="full"))
    return out


def test_depth_equals_analytic_depth_in_a_turned_box_room():
    # a 4 x 3 x 2.5 m box room turned by 0.4 rad; the camera looks along a wall-oblique direction
    size = np.array([4.0, 3.0, 2.5])
    yaw = 0.4
    world_from_room = trimesh.transformations.rotation_matrix(yaw, (0, 0, 1))
    world_from_room[:3, 3] = (1.0, -2.0, 0.0)
    mesh = fu.box(size, size / 2).apply_transform(world_from_room)
    room = MeshRoom("box", np.zeros((4, 2)), 2.5, world_from_room,
                    parts=[fu.Part(mesh, "wall", fu.Material((0.5, 0.5, 0.5)))],
                    lights=np.array([[2.0, 1.5, 2.4]]) @ world_from_room[:3, :3].T + world_from_room[:3, 3])
    arrays = room_arrays(room)
    bvh = build_bvh(arrays["tri"])
    cam_room = np.array([1.3, 1.1, 1.4])
    a = 0.7  # camera yaw in the room frame; OpenCV axes: z forward, y down
    f = np.array([math.cos(a), math.sin(a), -0.2])
    f /= np.linalg.norm(f)
    x = np.cross(f, (0, 0, 1))
    x /= np.linalg.norm(x)
    pose_room = np.eye(4)
    pose_room[:3, 0], pose_room[:3, 1], pose_room[:3, 2], pose_room[:3, 3] = x, np.cross(f, x), f, cam_room
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    _, depth, raw, _ = render_view(room, arrays, bvh, world_from_room @ pose_room, K, W, H)
    # analytic: distance along z=1 camera rays to the nearest of the six planes of the room
    v, u = np.mgrid[0:H, 0:W]
    d_cam = np.stack([(u + 0.5 - K[0, 2]) / K[0, 0], (v + 0.5 - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    d = d_cam @ pose_room[:3, :3].T
    t = np.full((H, W), np.inf)
    for axis in range(3):
        for plane in (0.0, size[axis]):
            with np.errstate(divide="ignore"):
                ti = (plane - cam_room[axis]) / d[..., axis]
            t = np.where((ti > 0) & (ti < t), ti, t)
    assert np.abs(depth - t).max() < 1e-5
    assert (raw == scannet_raw_id("wall")).all()


def test_bvh_agrees_with_brute_force_on_furniture():
    rng = np.random.default_rng(0)
    mesh = trimesh.util.concatenate([p.mesh for k in ("sofa", "office chair", "bookshelf")
                                     for p in fu.build(k, rng).parts])
    tri = mesh.vertices[mesh.faces]
    bvh = build_bvh(tri)
    origin = np.array([0.3, 3.0, 0.6])
    dirs = rng.normal(size=(300, 3)) + (0, -2.5, 0)
    t, hit = cast(bvh, origin, dirs)
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    ref = np.full(len(dirs), MISS)
    for r, dr in enumerate(dirs):  # Möller–Trumbore against every triangle
        p = np.cross(dr, e2)
        det = (e1 * p).sum(1)
        inv = 1.0 / np.where(np.abs(det) < 1e-14, np.nan, det)
        s = origin - v0
        uu = (s * p).sum(1) * inv
        q = np.cross(s, e1)
        vv = (q @ dr) * inv
        tt = (e2 * q).sum(1) * inv
        ok = (uu >= 0) & (vv >= 0) & (uu + vv <= 1) & (tt > 1e-7)
        if ok.any():
            ref[r] = tt[ok].min()
    assert (t < MISS).sum() > 50
    np.testing.assert_allclose(t, ref, rtol=1e-9)


def test_rooms_are_turned_and_not_only_rectangles():
    turned, shapes = [], set()
    for i in range(12):
        room = build_room(np.random.default_rng([5, i]), ROOM_TYPES[i % len(ROOM_TYPES)])
        R = room.world_from_room
        turned.append(abs(math.sin(2 * math.atan2(R[1, 0], R[0, 0]))) > 0.05)  # not a multiple of 90 deg
        shapes.add(len(room.polygon))
    assert sum(turned) >= 8
    assert {4, 5, 6} <= shapes  # rectangles, cut corners, L-shapes


def test_part_names_are_scannet_categories():
    lut = scannet_raw_to_class_lut()
    cls = {name: int(lut[scannet_raw_id(name)]) for name in
           ("wall", "floor", "kitchen cabinets", "couch", "office chair", "coffee table", "shower curtain", "cup")}
    assert cls["kitchen cabinets"] == CLASS_NAMES.index("cabinet")
    assert cls["couch"] == CLASS_NAMES.index("sofa")
    assert cls["office chair"] == CLASS_NAMES.index("chair")
    assert cls["coffee table"] == CLASS_NAMES.index("table")
    assert cls["shower curtain"] == CLASS_NAMES.index("shower curtain")
    assert cls["cup"] == IGNORE_INDEX
    with pytest.raises(DataError):
        scannet_raw_id("no such thing")


def test_scenes_load_through_the_scannet_loader(tiny):
    for name in ("scene0000_00", "scene0001_00"):
        scene = load_scene(tiny / name, "scannet")
        assert len(scene) == F
        w, h = scene.size
        assert w % 16 == 0 and h % 16 == 0  # random size per scene ("full"), kept divisible by 16
        fr = scene.frame(1)
        assert fr.image.shape == (3, h, w) and fr.depth.shape == (h, w)
        labels = fr.labels.numpy()
        assert labels.min() >= 0 and labels.max() <= IGNORE_INDEX
        present = set(np.unique(labels).tolist())
        assert CLASS_NAMES.index("wall") in present or CLASS_NAMES.index("floor") in present
        assert (fr.depth > 0).float().mean() > 0.5  # sensor holes, but most pixels valid
        assert float(fr.depth.max()) < 12.0


def test_deterministic_by_seed(tiny, tmp_path):
    generate_dataset(GenerateConfig(out=str(tmp_path), scenes=1, frames=F, width=W, height=H, seed=3,
                                    source="meshes", appearance="full", start_index=1))
    a = _files(tiny / "scene0001_00")
    b = _files(tmp_path / "scene0001_00")
    assert a == b


def test_cli_generates_meshes_and_rejects_bad_room_type(tmp_path, capsys):
    from gssplat_ros.cli import main

    assert main(["data", "generate", "--source", "meshes", "--out", str(tmp_path / "m"), "--scenes", "1",
                 "--frames", "2", "--size", "48x32", "--room-type", "kitchen"]) == 0
    out = capsys.readouterr().out
    assert "rooms/min" in out and (tmp_path / "m" / "scene0000_00" / "depth" / "1.png").exists()
    assert main(["data", "generate", "--source", "meshes", "--out", str(tmp_path / "n"), "--room-type", "studio"]) == 2
    err = capsys.readouterr().err
    assert "room type" in err and "Traceback" not in err and not (tmp_path / "n").exists()


def test_photo_textures_do_not_change_the_room():
    plain = build_room(np.random.default_rng([9, 2]), "living", photo_prob=0.0)
    photo = build_room(np.random.default_rng([9, 2]), "living", photo_prob=0.8)
    assert len(plain.parts) == len(photo.parts)
    np.testing.assert_allclose(plain.world_from_room, photo.world_from_room)
    for a, b in zip(plain.parts, photo.parts):
        np.testing.assert_allclose(a.mesh.vertices, b.mesh.vertices)
        assert a.raw == b.raw
    assert sum(p.material.texture >= 0 for p in photo.parts) > sum(p.material.texture >= 0 for p in plain.parts) + 5


@pytest.mark.timeout(120)
def test_a_room_with_no_long_clear_segment_still_gets_a_camera_path(tmp_path):
    # seed 27, scene 5 is a crowded room where no clear point lies 0.6-2.2 m from the first: the path used to
    # double an empty polyline forever
    generate_dataset(GenerateConfig(out=str(tmp_path / "g"), source="meshes", scenes=1, start_index=5, frames=4,
                                    width=32, height=24, seed=27))
    scene = load_scene(next((tmp_path / "g").glob("scene*")), "scannet", size=(32, 24))
    assert len(scene) == 4
