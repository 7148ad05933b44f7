"""int8 export for onnxruntime on the CPU (gssplat_ros/export/quantize.py): the quantised pair, its metadata, which
convolutions stay float, parity against torch, and the runtime / CLI switches that reach it."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("numba")  # calibration windows come from the scene generator

from gssplat_ros.export.onnx_export import export_onnx, gaussians_graph_path, onnx_file_name, read_metadata  # noqa: E402
from gssplat_ros.export.parity import run_parity  # noqa: E402
from gssplat_ros.export.quantize import calibration_windows, float_conv_nodes  # noqa: E402
from tests.test_export import _TMP, scene, tiny_checkpoint, tiny_net  # noqa: E402


@functools.cache
def int8_pair(depth_mode: str = "sensor"):
    name = onnx_file_name(f"tiny_{depth_mode}", 2, 64, 48, "int8", "host")
    return export_onnx(tiny_net(depth_mode), _TMP / "int8" / name, 2, 64, 48, "int8", scatter="host").path


def _initializers(model) -> set[str]:
    return {t.name for t in model.graph.initializer}


def test_int8_pair_quantises_the_trunk_and_keeps_the_head_outputs_float():
    first = int8_pair("sensor")
    second = gaussians_graph_path(first)
    assert first.exists() and second.exists()
    meta = read_metadata(first)
    assert meta["precision"] == "int8" and meta["scatter"] == "host"
    assert meta["gaussians_graph"] == second.name  # the int8 second graph, not the fp32 one it came from
    assert "generated scenes" in meta["int8_calibration"]
    assert meta["class_names"] == list(tiny_net("sensor").cfg.class_names)
    for path in (first, second):
        model = onnx.load(str(path))
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        quantised = [n.name for n in convs if n.input[1] in dq_outputs]  # weights through DequantizeLinear
        plain = [n.name for n in convs if n.input[1] in _initializers(model)]  # float weights
        assert quantised, f"{path.name}: no quantised convolution"
        recorded = read_metadata(path)["int8_float_convs"]
        assert set(plain) == set(recorded.split(",") if recorded else ())
    second_plain = read_metadata(second)["int8_float_convs"].split(",")
    assert any("semantic_head/conv2" in n for n in second_plain)
    if tiny_net("sensor").cfg.colour_gaussians == "learned":  # an observed colour set has no colour head
        assert any("color_head/conv2" in n for n in second_plain)
    # inputs and outputs are the fp32 contract
    first_model, second_model = onnx.load(str(first)), onnx.load(str(second))
    floats = onnx.TensorProto.FLOAT
    assert all(i.type.tensor_type.elem_type == floats for i in first_model.graph.input)
    assert all(o.type.tensor_type.elem_type == floats for o in second_model.graph.output)


def test_estimated_depth_branch_stays_float():
    net = tiny_net("estimated")
    path = export_onnx(net, _TMP / "fp32e" / "e_host.onnx", 2, 64, 48, "fp32", scatter="host").path
    if net.refines_on_host(64, 48):  # the cascade sits in the depth graph before the pair
        from gssplat_ros.export.onnx_export import depth_graph_path

        path = depth_graph_path(path)
        # the int8 set carries that graph unquantised
        int8_depth = onnx.load(str(depth_graph_path(int8_pair("estimated"))))
        assert not [n for n in int8_depth.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert read_metadata(int8_depth)["precision"] == "int8"  # one precision for the whole set
    keep = float_conv_nodes(onnx.load(str(path)), "estimated")
    assert any("depth_net" in n for n in keep)
    sensor_keep = float_conv_nodes(onnx.load(str(path)), "sensor")
    assert not any("depth_net" in n for n in sensor_keep)


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_int8_parity_on_a_generated_scene(depth_mode):
    report = run_parity(tiny_net(depth_mode), int8_pair(depth_mode), 2, 64, 48, "int8", scene(depth_mode))
    assert report.passed, report.table()
    assert report.label_agreement >= 0.90
    assert abs(report.psnr_torch_db - report.psnr_onnx_db) <= 0.5
    assert "int8: labels agree" in report.table()


def test_int8_is_not_bit_equal_to_fp32():
    """The quantised graph really runs different numbers (a pass-through 'quantisation' would not)."""
    from gssplat_ros.export.parity import onnx_outputs

    fp32 = export_onnx(tiny_net("sensor"), _TMP / "fp32s" / "s_host.onnx", 2, 64, 48, "fp32", scatter="host").path
    inputs = scene("sensor").inputs
    a, b = onnx_outputs(fp32, inputs), onnx_outputs(int8_pair("sensor"), inputs)
    assert float((a["sem_logits"] - b["sem_logits"]).abs().max()) > 1e-4
    assert torch.equal(a["depth"], b["depth"])  # sensor depth passes through unquantised


def test_int8_needs_the_host_pair():
    with pytest.raises(ValueError, match="scatter='host'"):
        export_onnx(tiny_net("sensor"), _TMP / "x_int8.onnx", 2, 64, 48, "int8", scatter="elements")


def test_calibration_windows_from_a_data_root(tmp_path):
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    root = tmp_path / "scenes"
    generate_dataset(GenerateConfig(out=str(root), scenes=2, frames=10, width=64, height=48, seed=5))
    (root / "splits").mkdir(exist_ok=True)
    (root / "splits" / "train.txt").write_text("scene0000_00\nscene0001_00\n")
    windows = calibration_windows(2, 64, 48, "sensor", count=2, data=root)
    assert len(windows) == 2
    assert windows[0]["images"].shape == (2, 3, 48, 64) and windows[0]["depth"].shape == (2, 1, 48, 64)
    assert "depth" not in calibration_windows(2, 64, 48, "estimated", count=1, data=root)[0]
    from gssplat_ros.errors import DataError

    (root / "splits" / "train.txt").write_text("")
    with pytest.raises(DataError, match="split 'train' has no scenes"):
        calibration_windows(2, 64, 48, "sensor", count=1, data=root)


def test_runtime_precision_switch(tmp_path, monkeypatch):
    from gssplat_ros.runtime_factory import make_runtime

    monkeypatch.setenv("GSSPLAT_CACHE_DIR", str(tmp_path / "cache"))
    stem = str(tiny_checkpoint("sensor"))
    rt = make_runtime("onnxruntime", stem, "sensor", "cpu", 2, 64, 48, precision="int8")
    assert rt.onnx_paths[(2, 48, 64)].name.endswith("_int8_host.onnx")
    inputs = scene("sensor").inputs
    got, ref = rt(inputs), make_runtime("torch", stem, "sensor", "cpu")(inputs)
    agree = float((got["sem_logits"].argmax(-1) == ref["sem_logits"].argmax(-1)).float().mean())
    assert agree >= 0.90
    with pytest.raises(ValueError, match="torch runtime runs fp32"):
        make_runtime("torch", stem, "sensor", "cpu", precision="int8")
    with pytest.raises(ValueError, match="unknown precision"):
        make_runtime("onnxruntime", stem, "sensor", "cpu", precision="int4")


def _gssplat(*args):
    return subprocess.run([sys.executable, "-m", "gssplat_ros.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_export_cli_int8_needs_scatter_host_in_one_line(tmp_path):
    r = _gssplat("export", "onnx", "--views", 2, "--width", 64, "--height", 48, "--int8", "--out", tmp_path)
    assert r.returncode == 1 and "scatter" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = _gssplat("export", "onnx", "--views", 2, "--width", 64, "--height", 48, "--int8", "--fp16")
    assert r.returncode == 2 and "not allowed with" in r.stderr  # argparse: one precision at a time


def test_bench_times_an_int8_row(tmp_path):
    import os

    env = {**os.environ, "GSSPLAT_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "gssplat_ros.cli", "bench", "encoder", "--views", "2", "--sizes",
                        "64x48", "--depth", "sensor", "--runs", "1", "--runtime", "torch", "onnxruntime",
                        "--precision", "fp32", "int8"], capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    labels = [ln.split("|")[1].strip() for ln in r.stdout.splitlines() if "| cpu | sensor | 2 | 64x48 |" in ln]
    assert labels == ["torch", "onnxruntime", "onnxruntime int8"]


def test_calibration_without_the_scene_generator_says_so(monkeypatch):
    import gssplat_ros.export.quantize as quantize

    monkeypatch.setattr(quantize, "HAVE_NUMBA", False)  # as on a machine without numba
    with pytest.raises(RuntimeError, match="needs the scene generator"):
        calibration_windows(2, 64, 48, "sensor", count=1)
