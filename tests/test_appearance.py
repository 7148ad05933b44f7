"""Appearance randomisation: deterministic from a seed, and each model changes the statistics it should."""

from __future__ import annotations

import numpy as np
import pytest

from gssplat_ros.data import appearance as ap

CAMERA = ap.APPEARANCE_PRESETS["camera"]


def _scene_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.linspace(0.1, 0.7, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


def test_camera_rgb_is_deterministic_and_seed_dependent():
    rgb = _scene_rgb()
    look = ap.SceneLook.draw(np.random.default_rng(1), CAMERA)
    a = ap.camera_rgb(rgb, np.random.default_rng(7), CAMERA, look)
    b = ap.camera_rgb(rgb, np.random.default_rng(7), CAMERA, look)
    c = ap.camera_rgb(rgb, np.random.default_rng(8), CAMERA, look)
    assert a.dtype == np.uint8 and a.shape == rgb.shape
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 0.5


def test_none_preset_is_exact():
    rgb = _scene_rgb()
    none = ap.APPEARANCE_PRESETS["none"]
    out = ap.camera_rgb(rgb, np.random.default_rng(0), none, ap.SceneLook.draw(np.random.default_rng(0), none))
    np.testing.assert_array_equal(out, (rgb * 255.0 + 0.5).astype(np.uint8))
    depth = np.full((8, 8), 2.0, np.float32)
    assert ap.depth_sensor(depth, np.ones((8, 8, 3)), np.random.default_rng(0), "exact") is depth


def test_auto_exposure_pulls_dark_and_bright_views_together():
    cfg = ap.AppearanceConfig(exposure=True)
    look = ap.SceneLook.draw(np.random.default_rng(2), cfg)
    dark, bright = _scene_rgb() * 0.15, np.clip(_scene_rgb() * 1.4, 0, 1)
    md = ap.camera_rgb(dark, np.random.default_rng(3), cfg, look).mean() / 255
    mb = ap.camera_rgb(bright, np.random.default_rng(3), cfg, look).mean() / 255
    assert bright.mean() / dark.mean() > 6.0
    assert mb / md < 2.0


def test_white_balance_differs_between_scenes_and_drifts_between_views():
    cfg = ap.AppearanceConfig(exposure=True)
    grey = np.full((16, 16, 3), 0.4, np.float32)

    def ratios(scene_seed, view_seed):
        look = ap.SceneLook.draw(np.random.default_rng(scene_seed), cfg)
        m = ap.camera_rgb(grey, np.random.default_rng(view_seed), cfg, look).reshape(-1, 3).mean(0)
        return m[0] / m[1], m[2] / m[1]

    scenes = np.array([ratios(s, 0) for s in range(8)])
    views = np.array([ratios(0, v) for v in range(8)])
    assert scenes.std(0).min() > 0.04  # a per-scene cast of ~12 %
    assert 0.005 < views.std(0).max() < scenes.std(0).max()  # smaller per-view drift


def test_shot_noise_grows_with_signal():
    cfg = ap.AppearanceConfig(rgb_noise=True)
    look = ap.SceneLook.draw(np.random.default_rng(4), cfg)
    look.jpeg_quality, look.vignetting = 0, 0.0
    stds = []
    for level in (0.1, 0.7):
        flat = np.full((64, 64, 3), level, np.float32)
        outs = [ap.camera_rgb(flat, np.random.default_rng(s), cfg, look).astype(float) for s in range(4)]
        # blur is random per view; measure on views of the same level across seeds
        stds.append(np.mean([o[8:-8, 8:-8].std() for o in outs]))
    assert stds[1] > 1.3 * stds[0] > 0


@pytest.mark.parametrize("model", ["kinect", "realsense"])
def test_depth_noise_grows_with_z(model):
    rgb = np.full((64, 64, 3), 0.6)
    errs = []
    for z in (1.0, 3.0):
        depth = np.full((64, 64), z, np.float32)
        out = ap.depth_sensor(depth, rgb, np.random.default_rng(5), model)
        ok = out > 0
        assert ok.mean() > 0.9
        errs.append(np.sqrt(np.mean((out[ok] - z) ** 2)))
        np.testing.assert_allclose(out[ok] * 1000.0, np.round(out[ok] * 1000.0), atol=1e-2)  # whole mm
    assert errs[1] > 4.0 * errs[0]  # sigma ~ z^2


def test_depth_holes_at_edges_dark_surfaces_and_out_of_range():
    rng = np.random.default_rng(6)
    depth = np.full((64, 64), 2.0, np.float32)
    depth[:, 32:] = 3.0  # a depth edge down the middle
    rgb = np.full((64, 64, 3), 0.6)
    rgb[:16] = 0.02  # a dark band
    depth[-4:] = 6.0  # beyond the Kinect's range
    out = ap.depth_sensor(depth, rgb, rng, "kinect")
    holes = out == 0
    edge = holes[16:-4, 31:33].mean()
    dark = holes[:16, 4:28].mean()
    plain = holes[16:-4, 4:28].mean()
    assert edge > 0.5 and dark > 0.4 and plain < 0.03
    assert holes[-4:].all()


def test_random_camera_per_scene():
    sizes, focals = set(), set()
    for s in range(10):
        w, h, K = ap.random_camera(np.random.default_rng(s), 160, 120, CAMERA)
        assert w % 16 == 0 and h % 16 == 0 and 112 <= w <= 208
        assert abs(K[0, 2] - w / 2) <= 0.031 * w
        sizes.add((w, h))
        focals.add(round(K[0, 0] / w, 3))
        w2, h2, K2 = ap.random_camera(np.random.default_rng(s), 160, 120, CAMERA)
        assert (w2, h2) == (w, h) and np.array_equal(K, K2)
    assert len(sizes) >= 3 and len(focals) >= 8
    w, h, K = ap.random_camera(np.random.default_rng(0), 160, 120, ap.APPEARANCE_PRESETS["none"])
    assert (w, h) == (160, 120) and K[0, 0] == pytest.approx(144.0)


def test_photo_textures_stick_to_the_surface():
    pytest.importorskip("skimage")
    tex = ap.photo_textures()
    assert tex.shape[1:] == (ap.TEXTURE_SIZE, ap.TEXTURE_SIZE, 3) and len(tex) == len(ap.PHOTOS)
    assert tex.std() > 0.1
    # a wall x = 2 seen from two cameras: the same world point gets the same texture colour from both
    K = np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])

    def view(cam_y):
        pose = np.eye(4)
        pose[:3, :3] = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], float).T  # columns: right -y, down -z, fwd +x
        pose[:3, 3] = (0.0, cam_y, 1.0)
        depth = np.full((48, 64), 2.0)
        rgb = np.full((48, 64, 3), 0.5, np.float32)
        out = ap.overlay_photo_textures(rgb, depth, pose, K, np.zeros((48, 64), int), np.array([3]), np.array([1.0]))
        return out

    a, b = view(0.0), view(0.25)  # 0.25 m to the side = 5 px at 2 m with f = 40
    assert a.std() > 0.05
    # camera b stands 0.25 m to the left, so a wall point at column u in view a is at column u + 5 in view b
    diff = np.abs(a[2:-2, 2:-12] - b[2:-2, 7:-7]).mean()
    assert diff < 0.25 * np.abs(a[2:-2, 2:-12] - a[2:-2, 7:-7]).mean()


@pytest.mark.parametrize("source", ["procedural", "meshes"])
def test_both_sources_take_the_appearance_options(tmp_path, source):
    pytest.importorskip("numba")
    pytest.importorskip("skimage")
    if source == "meshes":
        pytest.importorskip("trimesh")
    from gssplat_ros.data import load_scene
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    def gen(out, appearance):
        generate_dataset(GenerateConfig(out=str(tmp_path / out), scenes=1, frames=2, width=64, height=48, seed=11,
                                        source=source, appearance=appearance))
        return load_scene(tmp_path / out / "scene0000_00", "scannet")

    plain, full = gen("plain", "none"), gen("full", "full")
    gen("again", "full")
    assert plain.size == (64, 48)
    assert (tmp_path / "full/scene0000_00/color/1.png").read_bytes() == \
        (tmp_path / "again/scene0000_00/color/1.png").read_bytes()
    fp, ff = plain.frame(1), full.frame(1)
    assert (fp.depth > 0).all()  # exact depth: every ray hits the closed room
    assert 0.0 < (ff.depth == 0).float().mean() < 0.3  # Kinect-like holes
    assert plain.size != full.size or not np.allclose(plain.K.numpy(), full.K.numpy())
