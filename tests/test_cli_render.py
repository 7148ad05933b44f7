"""`gssplat render`: the CAMERA.json contract, outputs, and one-line errors (run as a real subprocess)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gssplat_ros.cameras import look_at
from gssplat_ros.gaussians import Gaussians, rgb_to_sh_dc
from gssplat_ros.ply import save_ply


def gssplat(*args):
    return subprocess.run([sys.executable, "-m", "gssplat_ros.cli", *map(str, args)], capture_output=True, text=True)


def write_camera(path, **over):
    cam = {"width": 40, "height": 30, "fx": 30.0, "fy": 30.0, "cx": 20.0, "cy": 15.0,
           "camera_to_world": look_at([0.0, 0.0, -3.0], [0.0, 0.0, 0.0], up=(0, -1, 0)).tolist()}
    cam.update(over)
    path.write_text(json.dumps(cam))
    return path


@pytest.fixture
def scene(tmp_path):
    """A red Gaussian at the origin, labelled class 2 of 3."""
    g = Gaussians(
        means=torch.zeros(1, 3),
        quats=torch.tensor([[1.0, 0, 0, 0]]),
        scales=torch.full((1, 3), 0.5),
        opacities=torch.tensor([0.95]),
        sh=rgb_to_sh_dc(torch.tensor([[1.0, 0.0, 0.0]]))[:, None, :],
        features=torch.tensor([[0.0, 1.0, 5.0]]),
    )
    save_ply(tmp_path / "scene.ply", g)
    return tmp_path / "scene.ply"


def test_render_writes_png_depth_and_labels(tmp_path, scene):
    pytest.importorskip("numba")
    cam = write_camera(tmp_path / "cam.json")
    r = gssplat("render", scene, "--camera", cam, "--out", tmp_path / "o.png", "--depth-out", tmp_path / "d.npy",
                "--labels-out", tmp_path / "l.png", "--backend", "cpu")
    assert r.returncode == 0, r.stderr
    rgb = np.asarray(Image.open(tmp_path / "o.png"))
    assert rgb.shape == (30, 40, 3)
    assert rgb[15, 20, 0] > 200 and rgb[15, 20, 1] < 30  # the red Gaussian in the centre
    assert rgb[0, 0].max() == 0  # black background far from it
    depth = np.load(tmp_path / "d.npy")
    assert depth.shape == (30, 40) and abs(depth[15, 20] - 3.0) < 0.05
    labels = np.asarray(Image.open(tmp_path / "l.png"))
    assert labels[15, 20] == 2 and labels[0, 0] == 255


@pytest.mark.parametrize(
    "camera_over, match",
    [
        ({"fx": 0.0}, "focal"),
        ({"camera_to_world": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, math.nan], [0, 0, 0, 1]]}, "non-finite"),
        ({"camera_to_world": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}, "orthonormal"),
    ],
)
def test_bad_camera_is_one_line(tmp_path, scene, camera_over, match):
    cam = tmp_path / "cam.json"
    text = json.dumps({**json.loads(write_camera(cam).read_text()), **camera_over}).replace("NaN", "NaN")
    cam.write_text(text)
    r = gssplat("render", scene, "--camera", cam, "--out", tmp_path / "o.png")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and match in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("kind", ["missing_ply", "malformed_ply", "missing_camera", "bad_json"])
def test_bad_files_are_one_line(tmp_path, scene, kind):
    cam = write_camera(tmp_path / "cam.json")
    ply = scene
    if kind == "missing_ply":
        ply = tmp_path / "none.ply"
    elif kind == "malformed_ply":
        ply = tmp_path / "bad.ply"
        ply.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\nend_header\n")
    elif kind == "missing_camera":
        cam = tmp_path / "none.json"
    else:
        cam.write_text("{not json")
    r = gssplat("render", ply, "--camera", cam, "--out", tmp_path / "o.png")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_help_lists_subcommands():
    r = gssplat("--help")
    assert r.returncode == 0
    for name in ("render", "data", "train", "eval", "bench", "export", "bag", "process"):
        assert name in r.stdout


def test_bench_render_quick_prints_a_table():
    pytest.importorskip("numba")
    r = gssplat("bench", "render", "--quick", "--backend", "cpu")
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| cpu |")]
    assert len(rows) == 1 and "10000" in rows[0] and "160x120" in rows[0]


def _with_bad_gaussians(good: Gaussians, n_bad: int) -> Gaussians:
    bad = Gaussians.cat([good] * n_bad)
    bad.means[:, 0] = float("nan")
    bad.scales[:, 1] = float("inf")
    return Gaussians.cat([good, bad])


def test_render_skips_non_finite_gaussians_and_says_how_many(tmp_path, scene):
    pytest.importorskip("numba")
    from gssplat_ros.ply import load_ply

    ply = tmp_path / "mixed.ply"
    # Written as raw fields: save_ply itself refuses non-finite Gaussians.
    from gssplat_ros.ply import gaussians_to_array

    arr = gaussians_to_array(_with_bad_gaussians(load_ply(scene), 3))
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(arr)}"]
    header += [f"property {'int' if n == 'label' else 'float'} {n}" for n in arr.dtype.names] + ["end_header"]
    ply.write_bytes(("\n".join(header) + "\n").encode() + arr.tobytes())
    cam = write_camera(tmp_path / "cam.json")
    r = gssplat("render", ply, "--camera", cam, "--out", tmp_path / "o.png", "--backend", "cpu")
    assert r.returncode == 0, r.stderr
    assert "skipped 3 of 4 Gaussians" in r.stderr and "mixed.ply" in r.stderr
    rgb = np.asarray(Image.open(tmp_path / "o.png"))
    assert rgb[15, 20, 0] > 200  # the finite red Gaussian still renders


@pytest.mark.parametrize("kind", ["all_nan", "overflow", "empty", "negative_count"])
def test_render_of_a_ply_with_nothing_valid_fails_naming_the_file(tmp_path, kind):
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    row = {"all_nan": "nan nan nan 0 0 0 3 -1 -1 -1 1 0 0 0", "overflow": "0 0 0 0 0 0 3 200 200 200 1 0 0 0",
           "empty": None, "negative_count": "0 0 0 0 0 0 3 -1 -1 -1 1 0 0 0"}[kind]
    count = {"empty": 0, "negative_count": -5}.get(kind, 2)
    lines = ["ply", "format ascii 1.0", f"element vertex {count}", *(f"property float {n}" for n in names),
             "end_header", *([row] * 2 if row else [])]
    ply = tmp_path / "bad_scene.ply"
    ply.write_text("\n".join(lines) + "\n")
    cam = write_camera(tmp_path / "cam.json")
    r = gssplat("render", ply, "--camera", cam, "--out", tmp_path / "o.png", "--backend", "cpu")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "bad_scene.ply" in r.stderr, r.stderr
    assert not (tmp_path / "o.png").exists()


def test_render_colour_observed_gives_faint_splats_their_full_colour(tmp_path):
    """A half-transparent sub-pixel splat: classic blending darkens it, `--colour observed` keeps its colour."""
    pytest.importorskip("numba")
    half_px = 0.5 * 3.0 / 30.0  # on the centre of pixel (20, 15) of the camera below, 3 m away
    g = Gaussians(means=torch.tensor([[half_px, half_px, 0.0]]), quats=torch.tensor([[1.0, 0, 0, 0]]),
                  scales=torch.full((1, 3), 0.2 * 3.0 / 30.0), opacities=torch.tensor([0.5]),
                  sh=rgb_to_sh_dc(torch.tensor([[0.2, 0.6, 0.9]]))[:, None, :])
    save_ply(tmp_path / "map.ply", g)
    cam = write_camera(tmp_path / "cam.json", camera_to_world=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -3], [0, 0, 0, 1]])
    pixels = {}
    for colour in ("learned", "observed"):
        r = gssplat("render", tmp_path / "map.ply", "--camera", cam, "--out", tmp_path / f"{colour}.png",
                    "--backend", "cpu", "--colour", colour)
        assert r.returncode == 0, r.stderr
        pixels[colour] = np.asarray(Image.open(tmp_path / f"{colour}.png"))[15, 20].astype(int)
    assert np.abs(pixels["observed"] - np.array([51, 153, 230])).max() <= 2
    assert pixels["learned"][2] < 200  # blended over the black background
