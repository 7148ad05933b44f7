"""ONNX export of the encoder: file naming, metadata, checker, and onnxruntime-vs-torch parity.

Uses the shipped weights when they exist (gssplat_ros/assets/weights/tiny_*), else a freshly initialised
tiny model saved to a temporary checkpoint. Exports are cached per test session (`exported`).
"""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
numpy_helper = onnx.numpy_helper

from gssplat_ros.export.graphs import ExportWrapper  # noqa: E402
from gssplat_ros.export.onnx_export import (  # noqa: E402
    export_checkpoint,
    export_onnx,
    onnx_file_name,
    read_metadata,
    to_mixed_fp16,
)
from gssplat_ros.export.parity import FP16_PSNR_DB, parity_inputs, run_parity  # noqa: E402
from gssplat_ros.prediction import INPUT_NAMES, OUTPUT_NAMES  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="gssplat-export-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ helpers
@functools.cache
def tiny_checkpoint(depth_mode: str = "sensor") -> Path:
    """The shipped tiny weights for `depth_mode`, or a seeded fresh tiny model saved under a temp dir."""
    from gssplat_ros.model import GSsplatNet, ModelConfig, save_checkpoint
    from gssplat_ros.weights import default_checkpoint

    shipped = default_checkpoint(depth_mode)
    if shipped.with_suffix(".safetensors").exists() and shipped.with_suffix(".json").exists():
        return shipped
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", depth_mode=depth_mode)
    return save_checkpoint(_TMP / "ckpt" / f"tiny_{depth_mode}", GSsplatNet(cfg), cfg, {})


@functools.cache
def tiny_net(depth_mode: str = "sensor"):
    from gssplat_ros.model.checkpoint import load_model

    return load_model(tiny_checkpoint(depth_mode))[0]


def refined(depth_mode: str) -> bool:
    """Whether the test model has the photometric depth refinement (the shipped estimated model does)."""
    return bool(tiny_net(depth_mode).cfg.depth_refine_planes)


@functools.cache
def exported(depth_mode: str = "sensor", precision: str = "fp32", views: int = 2, width: int = 64, height: int = 48,
             scatter: str = "elements"):
    """Path of the exported tiny encoder (one export per configuration and test session)."""
    name = onnx_file_name(f"tiny_{depth_mode}", views, width, height, precision, scatter)
    return export_onnx(tiny_net(depth_mode), _TMP / "onnx" / name, views, width, height, precision,
                       scatter=scatter).path


@functools.cache
def scene(depth_mode: str, views: int = 2, width: int = 64, height: int = 48):
    pytest.importorskip("numba")
    return parity_inputs(views, width, height, depth_mode)


# ------------------------------------------------------------------------------------------------ export
def test_file_name_says_the_shape_and_precision():
    assert onnx_file_name("tiny_sensor", 4, 160, 120, "fp32") == "tiny_sensor_v4_160x120_fp32.onnx"


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_export_io_metadata_and_checker(depth_mode):
    path = exported(depth_mode)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES if depth_mode == "sensor" else INPUT_NAMES[:4])
    outs = [o.name for o in model.graph.output]
    assert outs == [("depth_out" if n == "depth" else n) for n in OUTPUT_NAMES]
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*model.graph.input, *model.graph.output]}
    assert dims["images"] == [2, 3, 48, 64] and dims["K"] == [2, 3, 3] and dims["cam_from_world"] == [2, 4, 4]
    assert dims["color_means"] == [2, 48, 64, 3] and dims["sem_logits"][:3] == [2, 48, 64]
    assert {imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")} == {18}
    meta = read_metadata(model)
    cfg = tiny_net(depth_mode).cfg
    assert meta["depth_mode"] == depth_mode and meta["views"] == 2 and meta["size"] == "64x48"
    assert meta["num_classes"] == cfg.num_classes and meta["class_names"] == list(cfg.class_names)
    assert meta["opset"] == 18 and meta["precision"] == "fp32" and meta["output_names"] == list(OUTPUT_NAMES)
    assert len(meta["source_revision"]) == 40 or meta["source_revision"] == "unknown"
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Det", "Inverse", "Unique", "Einsum", "Loop", "If"}, ops
    # one voxel pooling for both branches; its zero table is built at run time, not stored (8192 x 34 floats)
    fills = {n.output[0] for n in model.graph.node if n.op_type == "ConstantOfShape"}
    assert sum(n.input[0] in fills for n in model.graph.node if n.op_type == "ScatterElements") == 1
    stored = [numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"]
    assert not [a.shape for a in stored if a.nbytes >= 1 << 16 and (a == a.reshape(-1)[0]).all()]


def test_export_leaves_the_network_untouched():
    net = tiny_net("sensor")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    exported("sensor", "fp16")
    mixed = to_mixed_fp16(net)
    assert mixed.encoder.stem.inner.weight.dtype == torch.float16
    assert mixed.encoder.semantic.inner[0].res.conv1.weight.dtype == torch.float16
    assert mixed.semantic_geometry.inner.conv1.weight.dtype == torch.float16  # shipped sensor model has cues
    assert all(v.dtype == torch.float32 for v in net.state_dict().values() if v.is_floating_point())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_export_checkpoint_writes_next_to_out_dir_with_weights_hash(tmp_path):
    stem = tiny_checkpoint("sensor")
    result = export_checkpoint(stem, tmp_path, views=2, width=32, height=24)
    assert result.path == tmp_path / onnx_file_name(stem.name, 2, 32, 24, "fp32")
    meta = read_metadata(result.path)
    assert meta["checkpoint"] == stem.name and len(meta["checkpoint_sha256"]) == 64


def test_bad_shape_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match="width"):
        export_onnx(tiny_net("sensor"), tmp_path / "x.onnx", 2, 30, 24)
    with pytest.raises(ValueError, match="views"):
        export_onnx(tiny_net("sensor"), tmp_path / "x.onnx", 1, 32, 24)


# ------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_parity_fp32_on_a_generated_scene(depth_mode):
    report = run_parity(tiny_net(depth_mode), exported(depth_mode), 2, 64, 48, "fp32", scene(depth_mode))
    print(report.table())
    assert report.source == "scene"
    # fp32 vs fp32: the same maths in another order; 1e-3 m / 1e-3 is the contract's tolerance (for the
    # photometric depth refinement's discrete choice: over 99% of the pixels, see gssplat_ros/export/parity.py).
    errors = report.p99_abs if refined(depth_mode) else report.max_abs
    assert bool(report.p99_abs) == refined(depth_mode)
    assert errors["means_m"] <= 1e-3 and errors["color_sh"] <= 1e-3
    if refined(depth_mode):  # labels, not logits (see gssplat_ros/export/parity.py)
        assert report.label_agreement >= 0.995 and report.depth_changed_fraction <= 0.005
    else:
        assert errors["sem_logits"] <= 1e-3
    assert report.passed, report.failures
    assert abs(report.psnr_torch_db - report.psnr_onnx_db) < 0.01


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_parity_fp16_render_within_half_a_db(depth_mode):
    report = run_parity(tiny_net(depth_mode), exported(depth_mode, "fp16"), 2, 64, 48, "fp16", scene(depth_mode))
    print(report.table())
    assert abs(report.psnr_torch_db - report.psnr_onnx_db) <= FP16_PSNR_DB
    assert report.passed, report.failures
    # fp16 trunk, fp32 geometry: centres stay within a few millimetres even with estimated depth.
    assert (report.p99_abs if refined(depth_mode) else report.max_abs)["means_m"] < 2e-2


def test_parity_fp32_without_the_depth_refinement_holds_at_every_pixel():
    """The shipped estimated network with its refinement off: the plain maximum-error contract."""
    net = tiny_net("estimated")
    if not refined("estimated"):
        pytest.skip("no shipped estimated weights: the fresh tiny model has no refinement")
    plain = copy.deepcopy(net)
    plain.cfg = net.cfg.replace(depth_refine_planes=0)
    path = export_onnx(plain, _TMP / "onnx" / "tiny_estimated_unrefined.onnx", 2, 64, 48, "fp32").path
    report = run_parity(plain, path, 2, 64, 48, "fp32", scene("estimated"))
    print(report.table())
    assert not report.p99_abs and report.max_abs["means_m"] <= 1e-3 and report.max_abs["sem_logits"] <= 1e-3
    assert report.passed, report.failures


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_host_pooled_graph_pair_parity_and_ops(depth_mode):
    """The onnxruntime-CPU flavour: two graphs without any scatter, the voxel pooling between them on the
    host (and, for a model that refines its depth, a depth graph before them, the refinement on the host),
    matching torch like the portable graph."""
    from gssplat_ros.export.onnx_export import depth_graph_path, gaussians_graph_path
    from gssplat_ros.prediction import DEPTH_GRAPH_OUTPUTS, REFINED_DEPTH_INPUT

    path = exported(depth_mode, scatter="host")
    second = gaussians_graph_path(path)
    assert path.name.endswith("_fp32_host.onnx") and second.name.endswith("_fp32_host_gaussians.onnx")
    first_model, second_model = onnx.load(str(path)), onnx.load(str(second))
    for model in (first_model, second_model):
        assert not [n.op_type for n in model.graph.node if n.op_type.startswith("Scatter")]
        onnx.checker.check_model(model, full_check=True)
    meta = read_metadata(first_model)
    assert (meta["scatter"], meta["split_stage"], meta["gaussians_graph"]) == ("host", "pooling_inputs", second.name)
    assert int(meta["table_size"]) >= 2 * 64 * 48 and read_metadata(second_model)["split_stage"] == "gaussians"
    # the first graph (or the depth graph before it) takes the contract inputs, the second returns the outputs
    contract_inputs = list(ExportWrapper(tiny_net(depth_mode)).graph_input_names())
    first_inputs = [i.name for i in first_model.graph.input]
    if tiny_net(depth_mode).refines_on_host(64, 48):  # the shipped estimated model: three graphs
        depth_model = onnx.load(str(depth_graph_path(path)))
        assert meta["depth_graph"] == depth_graph_path(path).name and "host_refine" in meta
        assert read_metadata(depth_model)["split_stage"] == "depth"
        assert [i.name for i in depth_model.graph.input] == contract_inputs
        assert [o.name for o in depth_model.graph.output] == list(DEPTH_GRAPH_OUTPUTS)
        assert first_inputs == contract_inputs + [REFINED_DEPTH_INPUT]
        # the first graph holds no plane sweep: every GridSample is in the depth graph
        assert not [n for n in first_model.graph.node if n.op_type == "GridSample"]
        assert [n for n in depth_model.graph.node if n.op_type == "GridSample"]
    else:
        assert "depth_graph" not in meta and not depth_graph_path(path).exists()
        assert first_inputs == contract_inputs
    assert [o.name for o in second_model.graph.output] == list(ExportWrapper.graph_output_names())
    report = run_parity(tiny_net(depth_mode), path, 2, 64, 48, "fp32", scene(depth_mode))
    errors = report.p99_abs if refined(depth_mode) else report.max_abs
    assert errors["means_m"] <= 1e-3 and (refined(depth_mode) or errors["sem_logits"] <= 1e-3)
    assert report.passed, report.failures


def test_split_forward_equals_the_network_exactly():
    """PoolingInputsGraph -> pool_on_host -> GaussiansGraph computes forward()'s outputs bit for bit."""
    from gssplat_ros.export.graphs import GaussiansGraph, PoolingInputsGraph
    from gssplat_ros.export.onnx_export import example_inputs
    from gssplat_ros.model.network import pool_on_host

    for depth_mode in ("sensor", "estimated"):
        net = tiny_net(depth_mode).eval()
        args = example_inputs(3, 32, 24, depth_mode)
        with torch.no_grad():
            ref = net(*args)
            first = PoolingInputsGraph(net)
            depth_full, color_feat, sem_feat, slot, columns = first(*args)
            pooled = pool_on_host(color_feat, sem_feat, slot, columns, first.table_size(3, 24, 32))
            got = GaussiansGraph(net)(args[0], args[1], args[2], depth_full, color_feat, pooled[0], sem_feat, pooled[1])
        for name, value in zip(OUTPUT_NAMES, got):
            assert torch.equal(value, ref[name]), (depth_mode, name)


def test_split_with_the_depth_graph_equals_the_network_exactly():
    """DepthGraph -> refine_depth (the host step's reference) -> PoolingInputsGraph(refined_depth_input) ->
    pool_on_host -> GaussiansGraph computes forward()'s outputs bit for bit, at the cascade's own size and
    with a downscaled cascade (a 320-wide window of a 160-wide reference)."""
    from gssplat_ros.export.graphs import DepthGraph, GaussiansGraph, PoolingInputsGraph
    from gssplat_ros.export.onnx_export import example_inputs
    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.model.depth_refine import refine_depth
    from gssplat_ros.model.network import pool_on_host

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", depth_mode="estimated")
    for config, (width, height) in (
        (cfg.replace(depth_refine_planes=5, depth_encoder=True), (32, 24)),
        (cfg.replace(depth_refine_planes=5, depth_reference_width=16), (32, 24)),
    ):
        net = GSsplatNet(config).eval()
        assert net.refines_on_host(width, height)
        args = example_inputs(3, width, height, "estimated")
        with torch.no_grad():
            ref = net(*args)
            cascade_depth, small, K_small, nbrs = DepthGraph(net)(*args)
            assert small.shape[-1] * net.cfg.depth_downscale(width, height) == width
            refined_depth = refine_depth(cascade_depth, small, K_small, args[2], args[3], nbrs, 5,
                                         config.depth_refine_range, config.depth_refine_radius)  # fmt: skip
            first = PoolingInputsGraph(net, refined_depth_input=True)
            depth_full, color_feat, sem_feat, slot, columns = first(*args, refined_depth)
            pooled = pool_on_host(color_feat, sem_feat, slot, columns, first.table_size(3, height, width))
            got = GaussiansGraph(net)(args[0], args[1], args[2], depth_full, color_feat, pooled[0], sem_feat, pooled[1])
        for name, value in zip(OUTPUT_NAMES, got):
            assert torch.equal(value, ref[name]), (config.depth_reference_width, name)
    # the cascade's H/4 level feeds the semantic branch of a full-size cascade without its own encoder:
    # that model keeps the cascade in the first graph
    assert not GSsplatNet(cfg.replace(depth_refine_planes=5)).refines_on_host(32, 24)
    assert not GSsplatNet(cfg.replace(depth_encoder=True)).refines_on_host(32, 24)  # nothing to refine


def test_parity_fp32_v4_160x120_sensor():
    path = exported("sensor", "fp32", 4, 160, 120)
    report = run_parity(tiny_net("sensor"), path, 4, 160, 120, "fp32", scene("sensor", 4, 160, 120))
    print(report.table())
    assert report.passed, report.failures


def test_slim_export_keeps_contract_and_parity(tmp_path):
    pytest.importorskip("onnxslim")
    net = tiny_net("sensor")
    result = export_onnx(net, tmp_path / "slim.onnx", 2, 64, 48, slim=True)
    assert read_metadata(result.path)["slim"] == "1"
    assert result.num_nodes < len(onnx.load(str(exported("sensor"))).graph.node)
    report = run_parity(net, result.path, 2, 64, 48, "fp32", scene("sensor"))
    assert report.passed, report.failures


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_export_onnx_and_check(tmp_path, capsys):
    from gssplat_ros.cli import main

    stem = tiny_checkpoint("sensor")
    argv = ["export", "onnx", "--checkpoint", str(stem), "--views", "2", "--width", "32", "--height", "24"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    path = tmp_path / onnx_file_name(stem.name, 2, 32, 24, "fp32")
    assert path.exists() and f"wrote {path}" in out and "TensorRT 10.3 operator check: OK" in out
    assert main(["export", "check", str(path)]) == 0
    assert "compatible with TensorRT 10.3" in capsys.readouterr().out


def test_python_m_export_fp16(tmp_path):
    stem = tiny_checkpoint("sensor")
    out = tmp_path / "enc.onnx"
    r = subprocess.run(
        [sys.executable, "-m", "gssplat_ros.export", "onnx", "--checkpoint", str(stem), "--views", "2", "--width", "32",
         "--height", "24", "--fp16", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert read_metadata(out)["precision"] == "fp16"


def test_cli_missing_checkpoint_is_one_line(tmp_path, capsys):
    from gssplat_ros.cli import main

    assert main(["export", "onnx", "--checkpoint", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not found" in err


@pytest.mark.parametrize("planes", [1, 3, 8])
def test_fold_depth_conv_is_the_3d_convolution(planes):
    from gssplat_ros.model.depth import fold_depth_conv

    torch.manual_seed(planes)
    conv = torch.nn.Conv3d(5, 3, 3, 1, 1)
    x = torch.randn(2, 5, planes, 6, 7)
    assert torch.allclose(fold_depth_conv(x, conv), conv(x), atol=1e-5)


def test_host_flavour_folds_only_the_finest_cost_convolutions():
    """The onnxruntime-CPU pair exports the finest cascade level's three 3x3x3 convolutions (8 planes in the
    tiny preset) as 2D ones; the portable graph (TensorRT) keeps every Conv3d."""
    import onnx

    def conv3d_count(path) -> int:
        model = onnx.load(str(path))
        ranks = {i.name: len(i.dims) for i in model.graph.initializer}
        return sum(1 for n in model.graph.node if n.op_type == "Conv" and ranks.get(n.input[1]) == 5)

    from gssplat_ros.export.onnx_export import depth_graph_path

    portable = conv3d_count(exported("estimated"))
    host_path = exported("estimated", scatter="host")
    # a model that refines on the host has its cascade in the depth graph before the first
    host = conv3d_count(host_path) + (conv3d_count(depth_graph_path(host_path)) if depth_graph_path(host_path).exists() else 0)
    assert portable == 9 and host == portable - 3
