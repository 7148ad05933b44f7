"""3DGS PLY round trip, header layout and malformed-file errors."""

import numpy as np
import pytest
import torch

from gssplat_ros.errors import DataError
from gssplat_ros.ply import load_ply, save_ply
from tests.test_core_types import random_gaussians


@pytest.mark.parametrize("degree, features", [(0, 0), (1, 5), (3, 20)])
def test_round_trip(tmp_path, degree, features):
    g = random_gaussians(50, degree=degree, features=features)
    g.opacities.clamp_(0.01, 0.99)
    save_ply(tmp_path / "g.ply", g)
    back = load_ply(tmp_path / "g.ply")
    # float32 storage of log-scale and logit-opacity: 1e-5 relative covers the round trip.
    for name in ("means", "quats", "scales", "opacities", "sh"):
        assert torch.allclose(getattr(back, name), getattr(g, name), rtol=1e-5, atol=1e-6), name
    if features:
        assert torch.allclose(back.features, g.features)
    else:
        assert back.features is None


def test_header_has_3dgs_fields_and_label(tmp_path):
    g = random_gaussians(4, degree=1, features=3)
    save_ply(tmp_path / "g.ply", g)
    header = (tmp_path / "g.ply").read_bytes().split(b"end_header")[0].decode()
    for field in ("x", "f_dc_0", "f_rest_8", "opacity", "scale_2", "rot_3", "label", "sem_2"):
        assert f" {field}\n" in header
    assert "f_rest_9" not in header


def test_label_field_is_argmax(tmp_path):
    g = random_gaussians(20, features=6)
    save_ply(tmp_path / "g.ply", g)
    raw = (tmp_path / "g.ply").read_bytes()
    body = raw[raw.index(b"end_header\n") + len(b"end_header\n"):]
    names = [ln.split()[-1] for ln in raw.split(b"end_header")[0].decode().splitlines() if ln.startswith("property")]
    dtype = [(n, "<i4" if n == "label" else "<f4") for n in names]
    arr = np.frombuffer(body, dtype=dtype)
    assert np.array_equal(arr["label"], g.features.argmax(-1).numpy())


def test_reads_ascii_ply(tmp_path):
    lines = ["ply", "format ascii 1.0", "element vertex 1"]
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    lines += [f"property float {n}" for n in names] + ["end_header", "1 2 3 0 0 0 0 -1 -1 -1 1 0 0 0"]
    (tmp_path / "a.ply").write_text("\n".join(lines) + "\n")
    g = load_ply(tmp_path / "a.ply")
    assert g.means.tolist() == [[1.0, 2.0, 3.0]] and abs(g.opacities.item() - 0.5) < 1e-6


@pytest.mark.parametrize(
    "content, match",
    [
        (b"hello world", "not a PLY"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nend_header\n", "lacks"),
    ],
)
def test_malformed(tmp_path, content, match):
    (tmp_path / "bad.ply").write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_ply(tmp_path / "bad.ply")


def test_truncated_and_missing(tmp_path):
    save_ply(tmp_path / "g.ply", random_gaussians(10))
    raw = (tmp_path / "g.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(raw[:-20])
    with pytest.raises(DataError, match="truncated"):
        load_ply(tmp_path / "t.ply")
    with pytest.raises(DataError, match="not found"):
        load_ply(tmp_path / "nope.ply")
