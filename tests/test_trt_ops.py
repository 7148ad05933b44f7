"""Every node of the exported encoder against TensorRT 10.3's ONNX operator table (gssplat_ros/export/trt_ops.py).

The real tiny graphs (both depth modes, fp32 and fp16) must pass; deliberately bad tiny graphs must
fail with a message that names the offending op and node.
"""

from __future__ import annotations

import warnings

import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as oh  # noqa: E402

from gssplat_ros.export.trt_ops import (  # noqa: E402
    OPSET_RANGE,
    SUPPORTED,
    UNSUPPORTED,
    TensorRTCompatibilityError,
    assert_tensorrt_compatible,
    check_model,
)
from tests.test_export import exported  # noqa: E402


# ------------------------------------------------------------------------------------------------ the table
def test_table_covers_the_known_traps():
    for op in ("Unique", "Det", "STFT", "Attention", "BlackmanWindow", "RMSNormalization"):
        assert op in UNSUPPORTED and op not in SUPPORTED
    for op in ("GridSample", "ScatterElements", "Mod", "TopK", "InstanceNormalization", "Resize", "Einsum"):
        assert op in SUPPORTED
    assert "4-D" in SUPPORTED["GridSample"].restriction and "ellipsis" in SUPPORTED["Einsum"].restriction
    assert OPSET_RANGE == (9, 20)


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_tiny_graph_is_tensorrt_10_3_compatible(depth_mode, precision):
    model = onnx.load(str(exported(depth_mode, precision)))
    problems = check_model(model)
    assert not problems, "\n".join(map(str, problems))
    assert_tensorrt_compatible(model)
    # the rules saw real data: shape inference typed the graph, and the risky ops are present and checked
    ops = {n.op_type for n in model.graph.node}
    assert {"ScatterElements", "Mod", "ArgMax", "Unsqueeze"} <= ops
    if depth_mode == "estimated":
        assert {"GridSample", "TopK"} <= ops


def test_photometric_cost_graph_is_tensorrt_10_3_compatible(tmp_path):
    """The optional photometric cost channel adds only 4-D GridSample, AveragePool, Abs, Conv and Concat."""
    from gssplat_ros.export.onnx_export import export_onnx
    from gssplat_ros.model import GSsplatNet, ModelConfig

    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", depth_mode="estimated", photometric_cost=True)).eval()
    model = onnx.load(str(export_onnx(net, tmp_path / "photo.onnx", 2, 64, 48).path))
    problems = check_model(model)
    assert not problems, "\n".join(map(str, problems))
    ops = [n.op_type for n in model.graph.node]
    # V = 2: one neighbour per view; features and colour are warped together (one GridSample) at each level
    assert ops.count("GridSample") == 3 and "AveragePool" in ops and "Abs" in ops


def test_host_pooled_pair_has_no_scatter_for_tensorrt_to_reject():
    """The onnxruntime-CPU pair of graphs holds no scatter at all, so both pass the TensorRT 10.3 check."""
    from gssplat_ros.export.onnx_export import gaussians_graph_path

    first = exported("sensor", scatter="host")
    for path in (first, gaussians_graph_path(first)):
        model = onnx.load(str(path))
        assert not [n for n in model.graph.node if n.op_type.startswith("Scatter")]
        problems = check_model(model)
        assert not problems, "\n".join(map(str, problems))


# ------------------------------------------------------------------------------------------------ bad graphs
def _model(nodes, inputs, outputs, initializers=(), opset=18, extra_opsets=()):
    graph = oh.make_graph(nodes, "bad", inputs, outputs, initializer=list(initializers))
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset), *extra_opsets])


def _vi(name, shape, elem=TP.FLOAT):
    return oh.make_tensor_value_info(name, elem, shape)


def _i64(name, values):
    return oh.make_tensor(name, TP.INT64, [len(values)], values)


def _bad_graphs():
    x4, y4 = _vi("x", [1, 2, 4, 4]), _vi("y", None)
    return {
        "Unique": _model([oh.make_node("Unique", ["x"], ["y"], name="uniq")], [_vi("x", [8])], [y4]),
        "Det": _model([oh.make_node("Det", ["x"], ["y"], name="det")], [_vi("x", [2, 3, 3])], [y4]),
        "Inverse": _model(
            [oh.make_node("Inverse", ["x"], ["y"], name="inv", domain="com.microsoft")],
            [_vi("x", [2, 3, 3])], [y4], extra_opsets=[oh.make_opsetid("com.microsoft", 1)],
        ),  # fmt: skip
        "GridSample": _model(
            [oh.make_node("GridSample", ["x", "g"], ["y"], name="grid5d")],
            [_vi("x", [1, 2, 3, 4, 5]), _vi("g", [1, 3, 4, 5, 3])], [y4],
        ),  # fmt: skip
        "Einsum": _model(
            [oh.make_node("Einsum", ["x", "x"], ["y"], name="ein", equation="...ij,...jk->...ik")],
            [_vi("x", [2, 3, 3])], [y4],
        ),  # fmt: skip
        "Unsqueeze": _model(
            [oh.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq_dyn")],
            [x4, _vi("axes", [1], TP.INT64)], [y4],
        ),  # fmt: skip
        "Squeeze": _model(
            [oh.make_node("Shape", ["x"], ["s"]), oh.make_node("Slice", ["s", "zero", "one"], ["axes"]),
             oh.make_node("Squeeze", ["x", "axes"], ["y"], name="sq_dyn")],
            [x4], [y4], [_i64("zero", [0]), _i64("one", [1])],
        ),  # fmt: skip
        "ReduceSum": _model(
            [oh.make_node("ReduceSum", ["x", "axes"], ["y"], name="rsum_dyn")],
            [x4, _vi("axes", [1], TP.INT64)], [y4],
        ),  # fmt: skip
        "ReduceMean": _model(
            [oh.make_node("ReduceMean", ["x", "axes"], ["y"], name="rmean_dyn")],
            [x4, _vi("axes", [1], TP.INT64)], [y4],
        ),  # fmt: skip
        "CumSum": _model(
            [oh.make_node("CumSum", ["x", "axis"], ["y"], name="cumsum_dyn")],
            [x4, _vi("axis", [], TP.INT64)], [y4],
        ),  # fmt: skip
        "Pad": _model(
            [oh.make_node("Pad", ["x", "pads", "", "axes"], ["y"], name="pad_dyn")],
            [x4, _vi("axes", [2], TP.INT64)], [y4], [_i64("pads", [1, 1, 1, 1])],
        ),  # fmt: skip
        "ScatterND": _model(
            [oh.make_node("ScatterND", ["x", "i", "u"], ["y"], name="snd_add", reduction="add")],
            [_vi("x", [8, 3]), _vi("i", [5, 1], TP.INT64), _vi("u", [5, 3])], [y4],
        ),  # fmt: skip
        "TopK": _model(
            [oh.make_node("TopK", ["x", "k"], ["y", "idx"], name="topk_dyn")],
            [_vi("x", [2, 8]), _vi("k", [1], TP.INT64)], [y4, _vi("idx", None, TP.INT64)],
        ),  # fmt: skip
        "MaxPool": _model(
            [oh.make_node("MaxPool", ["x"], ["y"], name="pool1d", kernel_shape=[2])], [_vi("x", [1, 2, 8])], [y4]
        ),
        "Resize": _model(
            [oh.make_node("Resize", ["x", "", "scales"], ["y"], name="cubic", mode="cubic")],
            [x4], [y4], [oh.make_tensor("scales", TP.FLOAT, [4], [1, 1, 2, 2])],
        ),  # fmt: skip
        "Abs": _model([oh.make_node("Abs", ["x"], ["y"], name="abs_u8")], [_vi("x", [4], TP.UINT8)], [y4]),
        "Frobnicate": _model([oh.make_node("Frobnicate", ["x"], ["y"], name="nonsense")], [x4], [y4]),
    }


@pytest.mark.parametrize("op", sorted(_bad_graphs()))
def test_bad_graph_fails_naming_the_op_and_node(op):
    model = _bad_graphs()[op]
    with pytest.raises(TensorRTCompatibilityError) as info:
        assert_tensorrt_compatible(model)
    message = str(info.value)
    assert op in message
    node = next((n.name for n in model.graph.node if n.op_type == op and n.name), "<model>")
    assert node in message


def test_opset_outside_10_3_range_is_flagged():
    model = _model([oh.make_node("Relu", ["x"], ["y"], name="relu21")], [_vi("x", [4])], [_vi("y", None)], opset=21)
    with pytest.raises(TensorRTCompatibilityError, match="opset 21 outside"):
        assert_tensorrt_compatible(model)


def test_constant_axes_pass_where_dynamic_ones_fail():
    x4, y4 = _vi("x", [1, 2, 4, 4]), _vi("y", None)
    good = _model(
        [oh.make_node("Constant", [], ["ax"], value=_i64("v", [0])),
         oh.make_node("Unsqueeze", ["x", "ax"], ["u"], name="unsq_const"),
         oh.make_node("ReduceSum", ["u", "rax"], ["y"], name="rsum_init", keepdims=0)],
        [x4], [y4], [_i64("rax", [2])],
    )  # fmt: skip
    assert check_model(good) == []


def test_gridsample_at_opset_20_is_flagged():
    model = _model(
        [oh.make_node("GridSample", ["x", "g"], ["y"], name="gs20")],
        [_vi("x", [1, 2, 4, 5]), _vi("g", [1, 4, 5, 2])], [_vi("y", None)], opset=20,
    )  # fmt: skip
    with pytest.raises(TensorRTCompatibilityError, match="opset 18"):
        assert_tensorrt_compatible(model)


# ------------------------------------------------------------------------------------------------ torch traps
def _torch_graph(fn, *args):
    class M(torch.nn.Module):
        def forward(self, *a):
            return fn(*a)

    import io

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(M(), args, buf, opset_version=18, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


@pytest.mark.parametrize(
    ("op", "fn", "args"),
    [
        ("Unique", torch.unique, (torch.rand(6),)),
        ("Det", torch.linalg.det, (torch.rand(2, 3, 3),)),
        ("Einsum", lambda x: torch.einsum("...ij,...jk->...ik", x, x), (torch.rand(2, 3, 3),)),
    ],
)
def test_torch_code_that_exports_but_tensorrt_rejects(op, fn, args):
    with pytest.raises(TensorRTCompatibilityError, match=op):
        assert_tensorrt_compatible(_torch_graph(fn, *args))


@pytest.mark.parametrize("fn", [torch.linalg.inv, lambda x: torch.searchsorted(torch.arange(5.0), x)])
def test_torch_ops_that_do_not_export_at_all(fn, capfd):
    with pytest.raises(Exception, match="linalg_inv|searchsorted"):
        _torch_graph(fn, torch.rand(2, 3, 3) if fn is torch.linalg.inv else torch.rand(3))
    capfd.readouterr()  # the exporter prints the offending TorchScript graph
