"""The onnxruntime encoder runtime: same outputs as torch through the one runtime interface, used by
the core Pipeline (what the node runs) and by `gssplat eval --runtime onnxruntime`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from gssplat_ros.export.parity import pixel_quantile_errors  # noqa: E402
from gssplat_ros.prediction import OUTPUT_NAMES  # noqa: E402
from gssplat_ros.runtime_factory import make_runtime  # noqa: E402
from tests.test_export import tiny_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GSSPLAT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def cpu_flavour() -> str:
    """The graph suffix a CPU session gets: the host-pooled pair (see onnx_runtime's docstring)."""
    return "_host"


def _inputs(depth_mode: str, views: int = 2, width: int = 64, height: int = 48):
    from gssplat_ros.export.parity import parity_inputs

    return parity_inputs(views, width, height, depth_mode).inputs


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_onnxruntime_matches_torch_through_make_runtime(depth_mode, cache_dir):
    pytest.importorskip("numba")
    stem = str(tiny_checkpoint(depth_mode))
    ort_rt = make_runtime("onnxruntime", stem, depth_mode, "cpu", views=2, width=64, height=48)
    torch_rt = make_runtime("torch", stem, depth_mode, "cpu")
    assert ort_rt.info.name == "onnxruntime" and ort_rt.info.depth_mode == depth_mode
    assert (ort_rt.info.num_classes, ort_rt.info.class_names) == (torch_rt.info.num_classes, torch_rt.info.class_names)
    # exported into the cache at construction, in the flavour of the session's thread count
    assert list(cache_dir.glob(f"onnx/*/*_v2_64x48_fp32{cpu_flavour()}.onnx"))
    if cpu_flavour() == "_host" and torch_rt.net.refines_on_host(64, 48):  # the refinement runs between graphs
        assert list(cache_dir.glob("onnx/*/*_v2_64x48_fp32_host_depth.onnx"))
        assert ort_rt._depth_stages[(2, 48, 64)] is not None
    inputs = _inputs(depth_mode)
    got, ref = ort_rt(inputs), torch_rt(inputs)
    assert list(got) == list(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:
        assert got[name].dtype == torch.float32 and got[name].device.type == "cpu"
        assert got[name].shape == ref[name].shape, name
    # fp32 both sides: 1e-3 (metres for means) is the export contract's tolerance; with the photometric
    # depth refinement over 99% of the pixels (its discrete choice, see gssplat_ros/export/parity.py)
    if torch_rt.net.cfg.depth_refine_planes:
        errors = pixel_quantile_errors(ref, got)
        assert max(v for k, v in errors.items() if k != "sem_logits") <= 1e-3, errors
        assert (got["sem_logits"].argmax(-1) == ref["sem_logits"].argmax(-1)).float().mean() >= 0.995
    else:
        for name in OUTPUT_NAMES:
            torch.testing.assert_close(got[name], ref[name], atol=1e-3, rtol=0, msg=name)


def test_lazy_shape_export_and_session_reuse(cache_dir, monkeypatch):
    from gssplat_ros.runtime.engine_cache import file_sha256

    stem = str(tiny_checkpoint("sensor"))
    rt = make_runtime("onnxruntime", stem, "sensor", "cpu")  # no shape: nothing exported yet
    assert not list(cache_dir.glob("onnx/*/*.onnx"))
    # an export by an older exporter version of the same weights, and one of other weights
    digest = file_sha256(tiny_checkpoint("sensor").with_suffix(".safetensors"))[:12]
    stale = cache_dir / "onnx" / f"{tiny_checkpoint('sensor').name}-{digest}-00000000"
    other = cache_dir / "onnx" / f"{tiny_checkpoint('sensor').name}-{'0' * 12}-00000000"
    for folder in (stale, other):
        folder.mkdir(parents=True)
        (folder / "old.onnx").write_bytes(b"x")
    from gssplat_ros.export.onnx_export import example_inputs
    from gssplat_ros.prediction import EncoderInputs

    out = rt(EncoderInputs(*example_inputs(3, 32, 24, "sensor")))
    assert out["color_means"].shape == (3, 24, 32, 3)
    assert [p.name for p in rt.onnx_paths.values()] == [f"{tiny_checkpoint('sensor').name}_v3_32x24_fp32{cpu_flavour()}.onnx"]
    sess = rt.session((3, 24, 32))
    rt(EncoderInputs(*example_inputs(3, 32, 24, "sensor", seed=1)))
    assert rt.session((3, 24, 32)) is sess
    assert not stale.exists() and other.exists()  # the stale version was pruned by the export
    # a restart finds the exported file again
    from gssplat_ros.export import onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    make_runtime("onnxruntime", stem, "sensor", "cpu", 3, 32, 24)


def test_a_given_host_pair_runs_and_half_a_pair_is_a_clear_error(tmp_path, cache_dir):
    """onnx_path naming the first graph of a --scatter host pair finds its second one; the second alone,
    or a first without its second, fails naming the file; a cached pair missing its half is re-exported."""
    import shutil

    from gssplat_ros.export.onnx_cache import onnx_for_checkpoint
    from gssplat_ros.export.onnx_export import gaussians_graph_path
    from gssplat_ros.runtime_factory import make_onnxruntime
    from tests.test_export import exported

    stem = tiny_checkpoint("sensor")
    first = exported("sensor", scatter="host")
    inputs = _inputs("sensor")
    ref = make_runtime("torch", str(stem), "sensor", "cpu")(inputs)
    out = make_onnxruntime(stem, torch.device("cpu"), 2, 64, 48, onnx_path=first)(inputs)
    assert torch.allclose(out["sem_logits"], ref["sem_logits"], atol=1e-3)
    from gssplat_ros.export.parity import onnx_outputs

    with pytest.raises(ValueError, match="second graph of a split export"):
        make_onnxruntime(stem, torch.device("cpu"), 2, 64, 48, onnx_path=gaussians_graph_path(first))
    with pytest.raises(ValueError, match="pass the first one"):
        onnx_outputs(gaussians_graph_path(first), inputs)
    lonely = tmp_path / first.name
    shutil.copy(first, lonely)
    with pytest.raises(FileNotFoundError, match=gaussians_graph_path(lonely).name):
        make_onnxruntime(stem, torch.device("cpu"), 2, 64, 48, onnx_path=lonely)
    cached = onnx_for_checkpoint(stem, 2, 64, 48, scatter="host")
    gaussians_graph_path(cached).unlink()
    assert onnx_for_checkpoint(stem, 2, 64, 48, scatter="host") == cached and gaussians_graph_path(cached).exists()


def test_a_model_without_aggregation_runs_as_one_graph(tmp_path):
    """No voxel pooling, nothing to split: the CPU runtime exports the single graph and matches torch."""
    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.model.checkpoint import save_checkpoint

    cfg = ModelConfig.preset("tiny", depth_mode="sensor", aggregate=False)
    torch.manual_seed(0)
    stem = tmp_path / "no_agg"
    save_checkpoint(stem, GSsplatNet(cfg), cfg, {})
    runtime = make_runtime("onnxruntime", str(stem), "sensor", "cpu", 2, 64, 48)
    assert next(iter(runtime.onnx_paths.values())).name == "no_agg_v2_64x48_fp32.onnx"
    inputs = _inputs("sensor")
    out, ref = runtime(inputs), make_runtime("torch", str(stem), "sensor", "cpu")(inputs)
    assert torch.allclose(out["sem_logits"], ref["sem_logits"], atol=1e-3)


def test_session_threads_and_no_spinning(monkeypatch):
    from gssplat_ros.runtime.onnx_runtime import session_options

    assert session_options().intra_op_num_threads == torch.get_num_threads()
    monkeypatch.setenv("GSSPLAT_ORT_THREADS", "1")
    so = session_options()
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_legacy_row_scatter_graph_runs_on_one_thread(tmp_path, caplog):
    """Graphs from the earlier "rows" export (metadata scatter=rows) race on 2+ threads: they reopen on 1."""
    import onnx
    from onnx import TensorProto, helper

    from gssplat_ros.runtime.onnx_runtime import open_session, session_options

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for scatter, threads in (("rows", 1), ("elements", 2)):
        model.metadata_props.clear()
        model.metadata_props.add(key="scatter", value=scatter)
        path = tmp_path / f"{scatter}.onnx"
        onnx.save(model, str(path))
        caplog.clear()
        sess = open_session(path, session_options(2), ["CPUExecutionProvider"])
        assert sess.get_session_options().intra_op_num_threads == threads, scatter
        assert ("races" in caplog.text) == (scatter == "rows")


_FLUSH_PROBE = """
import numpy as np, onnx, onnxruntime as ort, torch
from onnx import TensorProto, helper
from gssplat_ros.runtime.onnx_runtime import session_options
graph = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
ort.InferenceSession(model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])
print((torch.tensor([1e-39]) * 1.0).item())
"""


@pytest.mark.parametrize("setting,flushed", [(None, True), ("keep", False)])
def test_sessions_flush_denormals_unless_told_to_keep_them(setting, flushed):
    """By default the first session of a process turns on flush-to-zero for the creating thread too (as the
    module docstring says); GSSPLAT_ORT_DENORMALS=keep leaves denormals alone. A fresh process each,
    since onnxruntime applies the first session's setting to the creating thread once per process."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GSSPLAT_ORT_DENORMALS"}
    if setting:
        env["GSSPLAT_ORT_DENORMALS"] = setting
    out = subprocess.run([sys.executable, "-c", _FLUSH_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    value = float(out.stdout.strip().splitlines()[-1])
    assert (value == 0.0) == flushed, value


def test_two_thread_cpu_sessions_pool_voxels_without_races(monkeypatch):
    """Four identical cameras over a flat wall put every view's pixels into the same few voxels. With two
    intra-op threads onnxruntime's row-wise ScatterND(add) lost updates there (logits off by ~0.1-1,
    different each run); the CPU runtime pools on the host between its two graphs and must match torch."""
    from gssplat_ros.prediction import EncoderInputs

    monkeypatch.setenv("GSSPLAT_ORT_THREADS", "2")
    views, width, height = 4, 64, 48
    base = _inputs("sensor", views, width, height)
    same = base.world_from_cam[:1].repeat(views, 1, 1)
    inputs = EncoderInputs(base.images, base.K, same, base.cam_from_world[:1].repeat(views, 1, 1),
                           torch.full((views, 1, height, width), 1.5))
    stem = str(tiny_checkpoint("sensor"))
    ref = make_runtime("torch", stem, "sensor", "cpu")(inputs)
    runtime = make_runtime("onnxruntime", stem, "sensor", "cpu", views, width, height)
    runtime.warm(views, width, height)
    assert next(iter(runtime.onnx_paths.values())).name.endswith("_host.onnx")
    for _ in range(3):
        out = runtime(inputs)
        for name in ("sem_logits", "color_sh", "color_opacities"):
            assert torch.allclose(out[name], ref[name], atol=1e-3), (name, float((out[name] - ref[name]).abs().max()))


def test_missing_depth_in_sensor_mode_is_a_clear_error():
    from gssplat_ros.export.onnx_export import example_inputs
    from gssplat_ros.prediction import EncoderInputs

    rt = make_runtime("onnxruntime", str(tiny_checkpoint("sensor")), "sensor", "cpu")
    with pytest.raises(ValueError, match="depth"):
        rt(EncoderInputs(*example_inputs(2, 32, 24, "estimated")))


# ------------------------------------------------------------------------------------------------ pipeline
def _scene_frames(n: int, width: int, height: int, with_depth: bool):
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural.generate import build_scene, default_K
    from gssplat_ros.data.procedural.raycast import camera_dirs, render_view
    from gssplat_ros.pipeline import Frame

    _, arrays, poses = build_scene(3, 1, n, step_m=0.12)
    K = default_K(width, height)
    dirs = camera_dirs(K, width, height)
    frames = []
    for i, pose in enumerate(poses):
        rgb, depth, _ = render_view(arrays, pose, dirs)
        pose = np.array(pose, dtype=np.float64)
        pose[:3, 3] += (0.0137, 0.0291, 0.0173)  # off the voxel grid (see gssplat_ros/export/parity.py)
        frames.append(Frame(stamp_ns=(i + 1) * 100_000_000, image=(rgb * 255 + 0.5).astype(np.uint8), K=K,
                            world_from_cam=pose, depth=depth if with_depth else None))  # fmt: skip
    return frames


def test_pipeline_with_onnxruntime_runtime_matches_torch():
    from gssplat_ros.pipeline import Pipeline, PipelineConfig

    frames = _scene_frames(4, 64, 48, with_depth=True)
    common = dict(checkpoint=str(tiny_checkpoint("sensor")), device="cpu", depth_mode="sensor", window_size=2,
                  model_width=64, model_height=48, render_backend="cpu")  # fmt: skip
    pipes = {name: Pipeline(PipelineConfig(runtime=name, **common)) for name in ("onnxruntime", "torch")}
    assert pipes["onnxruntime"]._runtimes["sensor"].info.name == "onnxruntime"
    predicted = 0
    for frame in frames:
        results = {}
        for name, pipe in pipes.items():
            if pipe.add_frame(frame) and pipe.window_ready():
                pred = pipe.predict(pipe.snapshot())
                out = pipe.render(pred, frame.K, frame.world_from_cam, 64, 48)
                results[name] = (pred, out)
        if results:
            predicted += 1
            (p_ort, r_ort), (p_t, r_t) = results["onnxruntime"], results["torch"]
            torch.testing.assert_close(p_ort.color.means, p_t.color.means, atol=1e-3, rtol=0)
            torch.testing.assert_close(p_ort.semantic.features, p_t.semantic.features, atol=1e-3, rtol=0)
            assert np.abs(r_ort.rgb.astype(int) - r_t.rgb.astype(int)).max() <= 1
            assert (r_ort.labels == r_t.labels).mean() > 0.99
    assert predicted >= 3


def test_pipeline_estimated_depth_with_onnxruntime():
    from gssplat_ros.pipeline import Pipeline, PipelineConfig

    pipe = Pipeline(PipelineConfig(checkpoint=str(tiny_checkpoint("estimated")), runtime="onnxruntime", device="cpu",
                                   depth_mode="estimated", window_size=2, model_width=64, model_height=48,
                                   render_backend="cpu"))  # fmt: skip
    preds = []
    for frame in _scene_frames(3, 64, 48, with_depth=False):
        if pipe.add_frame(frame) and pipe.window_ready():
            preds.append(pipe.predict(pipe.snapshot()))
    assert len(preds) == 2 and torch.isfinite(preds[-1].color.means).all()
    assert pipe.class_names == tuple(pipe._runtimes["estimated"].info.class_names)


# ------------------------------------------------------------------------------------------------ eval
def test_eval_with_onnxruntime_gives_torch_metrics(tmp_path):
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset
    from gssplat_ros.evaluate import EvalConfig, evaluate

    root = tmp_path / "scenes"
    generate_dataset(GenerateConfig(out=str(root), scenes=1, frames=6, width=64, height=48, seed=5))
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("scene0000_00\n")
    base = dict(data=str(root), views=2, width=64, height=48, checkpoint=str(tiny_checkpoint("sensor")),
                device="cpu", render_backend="cpu", warmup=0)  # fmt: skip
    res = {rt: evaluate(EvalConfig(runtime=rt, **base)) for rt in ("onnxruntime", "torch")}
    assert res["onnxruntime"]["runtime"] == "onnxruntime"
    m_ort, m_t = res["onnxruntime"]["metrics"], res["torch"]["metrics"]
    assert m_ort["num_images"] == m_t["num_images"] >= 1
    assert abs(m_ort["psnr"] - m_t["psnr"]) < 0.05 and abs(m_ort["miou"] - m_t["miou"]) < 0.01
