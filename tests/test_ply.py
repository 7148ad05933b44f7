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


_FIELDS = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
           "rot_0", "rot_1", "rot_2", "rot_3"]


def ascii_ply(path, rows, count=None, prop_type="float", header_extra=()):
    """An ASCII 3DGS PLY with the given rows (strings of 14 values); `count` overrides the declared count."""
    lines = ["ply", "format ascii 1.0", f"element vertex {len(rows) if count is None else count}"]
    lines += [f"property {prop_type} {n}" for n in _FIELDS] + list(header_extra) + ["end_header", *rows]
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD_ROW = "1 2 3 0 0 0 0 -1 -1 -1 1 0 0 0"


@pytest.mark.parametrize("count", ["-5", "", "abc", "1.5", "0x10"])
def test_vertex_count_must_be_a_non_negative_integer(tmp_path, count):
    path = ascii_ply(tmp_path / "c.ply", [GOOD_ROW] * 6, count=count)
    with pytest.raises(DataError, match=r"c\.ply.*element vertex"):
        load_ply(path)


def test_negative_count_in_a_binary_ply_is_refused(tmp_path):
    save_ply(tmp_path / "g.ply", random_gaussians(4))
    raw = (tmp_path / "g.ply").read_bytes().replace(b"element vertex 4", b"element vertex -5")
    (tmp_path / "n.ply").write_bytes(raw)
    with pytest.raises(DataError, match=r"n\.ply.*non-negative"):
        load_ply(tmp_path / "n.ply")


def test_ascii_count_beyond_the_body_fails_fast_naming_the_file(tmp_path):
    path = ascii_ply(tmp_path / "huge.ply", [GOOD_ROW] * 3, count=10**9)
    with pytest.raises(DataError, match=r"huge\.ply.*declares 1000000000 vertices"):
        load_ply(path)
    wide_row = GOOD_ROW.replace(" ", "    ")  # long enough rows to pass the byte bound
    path = ascii_ply(tmp_path / "short.ply", [wide_row] * 3, count=5)
    with pytest.raises(DataError, match=r"short\.ply.*declares 5 vertices but the body has 3 rows"):
        load_ply(path)


@pytest.mark.parametrize(
    "extra, match",
    [
        (["property float"], "bad vertex property"),
        (["property float16 w"], "bad vertex property"),
        (["property float x"], "declared twice"),
        (["property list uchar int idx"], "lists"),
    ],
)
def test_property_lines_are_checked(tmp_path, extra, match):
    path = ascii_ply(tmp_path / "p.ply", [GOOD_ROW + " 0"], header_extra=extra)
    with pytest.raises(DataError, match=rf"p\.ply.*{match}"):
        load_ply(path)


def test_rows_with_the_wrong_width_name_the_file(tmp_path):
    path = ascii_ply(tmp_path / "w.ply", ["1 2 3 0 0 0 0 -1 -1 -1 1 0 0"])  # 13 of 14 values
    with pytest.raises(DataError, match=r"w\.ply"):
        load_ply(path)


def test_non_finite_and_overflowing_gaussians_are_skipped_with_a_count(tmp_path, caplog):
    rows = [
        GOOD_ROW,
        "nan 2 3 0 0 0 0 -1 -1 -1 1 0 0 0",  # NaN position
        "1 2 3 0 0 0 0 100 -1 -1 1 0 0 0",  # exp(100) overflows float32
        "1 2 3 1e300 0 0 0 -1 -1 -1 1 0 0 0",  # a double beyond float32
        "1 2 3 0 0 0 nan -1 -1 -1 1 0 0 0",  # NaN opacity
    ]
    path = ascii_ply(tmp_path / "mixed.ply", rows, prop_type="double")
    with caplog.at_level("WARNING"):
        g = load_ply(path)
    assert len(g) == 1 and g.means.tolist() == [[1.0, 2.0, 3.0]]
    assert bool(g.finite_mask().all())
    assert "mixed.ply: skipped 4 of 5 Gaussians" in caplog.text


def test_a_ply_with_no_finite_gaussian_is_an_error(tmp_path):
    path = ascii_ply(tmp_path / "allbad.ply", ["inf 0 0 0 0 0 0 -1 -1 -1 1 0 0 0"] * 2)
    with pytest.raises(DataError, match=r"allbad\.ply: all 2 Gaussians have non-finite fields"):
        load_ply(path)


def test_save_ply_drops_non_finite_gaussians_with_a_count(tmp_path, caplog):
    g = random_gaussians(6)
    g.means[1, 0] = float("nan")
    g.scales[4, 2] = float("inf")
    with caplog.at_level("WARNING"):
        written = save_ply(tmp_path / "s.ply", g)
    assert written == 4 and "dropped 2 of 6" in caplog.text
    back = load_ply(tmp_path / "s.ply")
    assert len(back) == 4 and bool(back.finite_mask().all())
    keep = torch.tensor([True, False, True, True, False, True])
    assert torch.allclose(back.means, g.means[keep])
