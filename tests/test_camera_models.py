"""camera_models: raw images of distorted cameras come out as pinhole images where known points land."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from gssplat_ros.camera_models import CameraModel, CameraModelError, Rectifier, rectifier_for

W, H = 320, 240
K = np.array([[260.0, 0.0, 161.5], [0.0, 255.0, 118.0], [0.0, 0.0, 1.0]])
MODELS = {
    "plumb_bob": [-0.28, 0.09, 0.001, -0.0015, -0.01],
    "rational_polynomial": [0.6, -0.2, 0.001, 0.0005, 0.02, 0.95, -0.1, 0.05],
    "equidistant": [0.05, -0.02, 0.01, -0.004],
}


def info(model: str, D, P=None, R=None, k=K):
    """A CameraInfo-like object (the message's field names, no rclpy needed)."""
    p = np.zeros((3, 4)) if P is None else P
    return SimpleNamespace(width=W, height=H, k=list(k.ravel()), d=list(D), distortion_model=model,
                           r=list(np.eye(3).ravel() if R is None else R.ravel()), p=list(p.ravel()))


def grid_pixels(margin: int = 40, step: int = 40) -> np.ndarray:
    """[N, 2] pixel positions of the pinhole (output) image, away from the borders."""
    us, vs = np.meshgrid(np.arange(margin, W - margin + 1, step), np.arange(margin, H - margin + 1, step))
    return np.stack([us.ravel(), vs.ravel()], 1).astype(np.float64)


def distorted_positions(model: str, D, K_out: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Where pinhole pixels `pixels` [N, 2] of K_out appear in the raw image: [N, 2]."""
    rays = np.linalg.solve(K_out, np.c_[pixels, np.ones(len(pixels))].T).T  # [N, 3], z = 1
    if model == "equidistant":
        return cv2.fisheye.distortPoints(rays[None, :, :2].astype(np.float64), K, np.array(D))[0]
    out, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, np.array(D))
    return out[:, 0, :]


def blob_image(points: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """[H, W] float32 image with a Gaussian dot at each sub-pixel point [N, 2]."""
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    img = np.zeros((H, W), np.float32)
    for x, y in points:
        img += np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * sigma**2)).astype(np.float32)
    return img


def centroid(img: np.ndarray, near: np.ndarray, radius: int = 5) -> np.ndarray:
    x0, y0 = np.round(near).astype(int)
    win = img[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1].astype(np.float64)
    vs, us = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return np.array([x0 + (win * us).sum() / win.sum(), y0 + (win * vs).sum() / win.sum()])


@pytest.mark.parametrize("model", list(MODELS))
def test_distorted_dots_land_on_their_pinhole_pixels(model):
    D = MODELS[model]
    rect = Rectifier(CameraModel.from_camera_info(info(model, D)))
    assert rect.needs_remap and np.allclose(rect.K, K)
    pixels = grid_pixels()
    raw_positions = distorted_positions(model, D, rect.K, pixels)
    assert np.abs(raw_positions - pixels).max() > 3.0  # the distortion is large enough to matter
    out = rect.rectify_color(blob_image(raw_positions))
    found = np.array([centroid(out, p) for p in pixels])
    # Within half a pixel: bilinear resampling of a 1.2 px dot shifts its centroid by well under that.
    assert np.abs(found - pixels).max() < 0.5


def test_projection_matrix_sets_the_output_camera():
    D = MODELS["plumb_bob"]
    P = np.zeros((3, 4))
    P[:, :3] = [[200.0, 0, 158.0], [0, 200.0, 121.0], [0, 0, 1]]
    rect = Rectifier(CameraModel.from_camera_info(info("plumb_bob", D, P=P)))
    assert np.allclose(rect.K, P[:, :3])
    pixels = grid_pixels()
    out = rect.rectify_color(blob_image(distorted_positions("plumb_bob", D, rect.K, pixels)))
    assert np.abs(np.array([centroid(out, p) for p in pixels]) - pixels).max() < 0.5


def test_rectified_input_and_zero_distortion_are_not_remapped():
    P = np.zeros((3, 4))
    P[:, :3] = [[210.0, 0, 160.0], [0, 210.0, 120.0], [0, 0, 1]]
    img = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    rect = Rectifier(CameraModel.from_camera_info(info("plumb_bob", MODELS["plumb_bob"], P=P)),
                     rectified_input=True)
    assert not rect.needs_remap and np.allclose(rect.K, P[:, :3])
    assert rect.rectify_color(img) is img
    plain = Rectifier(CameraModel.from_camera_info(info("plumb_bob", [0.0] * 5, P=P)))
    assert not plain.needs_remap and np.allclose(plain.K, K)  # raw pinhole image: its own K
    assert plain.rectify_color(img) is img


def test_depth_is_remapped_nearest_neighbour():
    rect = Rectifier(CameraModel.from_camera_info(info("plumb_bob", MODELS["plumb_bob"])))
    depth = np.full((H, W), 1.0, np.float32)
    depth[:, W // 2:] = 3.0  # a depth edge: bilinear would invent depths between the two surfaces
    out = rect.rectify_depth(depth)
    assert out.dtype == np.float32
    assert set(np.unique(out)) <= {0.0, 1.0, 3.0}
    assert (out == 1.0).any() and (out == 3.0).any()


def test_bad_models_raise_with_a_reason():
    with pytest.raises(CameraModelError) as err:
        Rectifier(CameraModel.from_camera_info(info("kannala_brandt_8", [0.1] * 8)))
    assert err.value.reason == "unknown_distortion_model" and "kannala_brandt_8" in str(err.value)
    with pytest.raises(CameraModelError) as err:
        Rectifier(CameraModel.from_camera_info(info("equidistant", [0.1] * 5)))
    assert err.value.reason == "bad_distortion"
    with pytest.raises(CameraModelError) as err:
        Rectifier(CameraModel.from_camera_info(info("plumb_bob", [0.0] * 5, k=np.zeros((3, 3)))))
    assert err.value.reason == "bad_intrinsics"
    rect = Rectifier(CameraModel.from_camera_info(info("plumb_bob", MODELS["plumb_bob"])))
    with pytest.raises(CameraModelError) as err:
        rect.rectify_color(np.zeros((H + 1, W, 3), np.uint8))
    assert err.value.reason == "size_mismatch"


def test_maps_are_cached_per_calibration():
    a = CameraModel.from_camera_info(info("plumb_bob", MODELS["plumb_bob"]))
    b = CameraModel.from_camera_info(info("plumb_bob", MODELS["plumb_bob"]))
    c = CameraModel.from_camera_info(info("plumb_bob", [-0.2, 0.09, 0.001, -0.0015, -0.01]))
    assert rectifier_for(a) is rectifier_for(b)
    assert rectifier_for(a) is not rectifier_for(c)


def test_robot_input_modules_import_without_ros():
    import subprocess
    import sys

    code = ("import sys, gssplat_ros.camera_models, gssplat_ros.depth_registration, gssplat_ros.image_codecs, "
            "gssplat_ros.transforms, gssplat_ros.world_check\n"
            "assert 'rclpy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
