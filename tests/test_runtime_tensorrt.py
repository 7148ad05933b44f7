"""TensorRT path: one clear error without TensorRT, the engine cache, and the builder's API use.

Without a GPU the builder is exercised against a small stand-in for the `tensorrt` module that records
the calls (TensorRT 10 Python API names); with TensorRT and CUDA a real engine is built and compared
with torch (skipped otherwise).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest
import torch

from gssplat_ros.export.tensorrt_build import FP16_SCOPES, BuildConfig, EngineBuildError, TensorRTUnavailable, build_engine
from gssplat_ros.runtime.engine_cache import EngineCache, EngineKey

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


# ------------------------------------------------------------------------------------------------ no TensorRT
@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed")
def test_without_tensorrt_one_clear_error(tmp_path, capsys):
    from gssplat_ros.cli import main
    from gssplat_ros.runtime_factory import make_runtime
    from tests.test_export import exported, tiny_checkpoint

    with pytest.raises(TensorRTUnavailable, match="TensorRT is not available"):
        build_engine(exported("sensor"), tmp_path / "x.engine")
    with pytest.raises(TensorRTUnavailable, match="onnxruntime or torch runtime"):
        make_runtime("tensorrt", str(tiny_checkpoint("sensor")), "sensor", "cpu", 2, 64, 48)
    assert main(["export", "tensorrt", "--onnx", str(exported("sensor"))]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "TensorRT is not available" in err
    assert not (tmp_path / "x.engine").exists()


def test_auto_runtime_on_cpu_is_torch():
    from gssplat_ros.runtime_factory import make_runtime
    from tests.test_export import tiny_checkpoint

    assert make_runtime("auto", str(tiny_checkpoint("sensor")), "sensor", "cpu").info.name == "torch"


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed")
def test_auto_falls_through_a_failing_runtime(monkeypatch, tmp_path, caplog):
    import gssplat_ros.runtime_factory as runtime_mod
    from tests.test_export import tiny_checkpoint

    monkeypatch.setenv("GSSPLAT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(runtime_mod, "_pick_auto", lambda device: "tensorrt")  # as on a CUDA machine
    stem = str(tiny_checkpoint("sensor"))
    with caplog.at_level(logging.WARNING, logger="gssplat_ros.runtime_factory"):
        assert runtime_mod.make_runtime("auto", stem, "sensor", "cpu").info.name == "torch"
    assert any("tensorrt failed" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(runtime_mod, "_auto_chain", lambda first: ["tensorrt", "onnxruntime"])
    assert runtime_mod.make_runtime("auto", stem, "sensor", "cpu", 2, 32, 24).info.name == "onnxruntime"


# ------------------------------------------------------------------------------------------------ engine cache
def _key(**changes) -> EngineKey:
    base = dict(onnx_sha256="ab" * 32, tensorrt_version="10.3.0", gpu_name="NVIDIA H100", precision="fp16",
                views=4, width=160, height=120)  # fmt: skip
    base.update(changes)
    return EngineKey(**base)


def test_engine_cache_reuses_and_rebuilds_on_any_change(tmp_path, caplog):
    cache = EngineCache(tmp_path / "engines")
    builds = []

    def build(path: Path) -> None:
        # the "long build" line is logged before the build starts
        assert any("building TensorRT" in r.getMessage() for r in caplog.records)
        builds.append(path)
        path.write_bytes(b"engine-%d" % len(builds))

    with caplog.at_level(logging.INFO, logger="gssplat_ros.runtime.engine_cache"):
        path, built = cache.get_or_build("tiny_sensor", _key(), build)
        assert built and path.read_bytes() == b"engine-1" and path.name.startswith("tiny_sensor_v4_160x120_fp16_")
        caplog.clear()
        again, built = EngineCache(tmp_path / "engines").get_or_build("tiny_sensor", _key(), build)  # a restart
        assert (again, built) == (path, False) and len(builds) == 1
        assert any("reusing TensorRT engine" in r.getMessage() for r in caplog.records)
    for change in (dict(onnx_sha256="cd" * 32), dict(tensorrt_version="10.4.0"), dict(gpu_name="Orin"),
                   dict(precision="fp32"), dict(views=2), dict(width=320, height=240)):  # fmt: skip
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gssplat_ros.runtime.engine_cache"):
            other, built = cache.get_or_build("tiny_sensor", _key(**change), build)
        assert built and other != path, change
    assert len(builds) == 7
    _, built = cache.get_or_build("tiny_sensor", _key(), build, force=True)
    assert built and len(builds) == 8


def test_engine_cache_ignores_a_sidecar_that_does_not_match(tmp_path):
    cache = EngineCache(tmp_path)
    path, _ = cache.get_or_build("m", _key(), lambda p: p.write_bytes(b"x"))
    path.with_suffix(".json").write_text('{"tensorrt_version": "9.0"}')
    assert cache.lookup("m", _key()) is None


def test_onnx_cache_reuses_and_follows_the_weights(tmp_path, monkeypatch):
    from gssplat_ros.export import onnx_export
    from gssplat_ros.export.onnx_cache import onnx_for_checkpoint
    from gssplat_ros.model import GSsplatNet, ModelConfig, save_checkpoint

    cfg = ModelConfig.preset("tiny")
    stem = save_checkpoint(tmp_path / "ck" / "m", GSsplatNet(cfg), cfg)
    first = onnx_for_checkpoint(stem, 2, 32, 24, cache_dir=tmp_path / "cache")
    assert first.exists() and first.name == "m_v2_32x24_fp32.onnx"
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("re-exported a cached graph"))
    assert onnx_for_checkpoint(stem, 2, 32, 24, cache_dir=tmp_path / "cache") == first
    monkeypatch.undo()
    save_checkpoint(stem, GSsplatNet(cfg), cfg)  # retrained weights: new hash, new export
    second = onnx_for_checkpoint(stem, 2, 32, 24, cache_dir=tmp_path / "cache")
    assert second != first and second.exists()
    from gssplat_ros.export import onnx_cache

    monkeypatch.setattr(onnx_cache, "export_source_sha256", lambda: "changed model code")
    third = onnx_for_checkpoint(stem, 2, 32, 24, cache_dir=tmp_path / "cache")  # same weights, new code: new export
    assert third != second and third.exists()


# ------------------------------------------------------------------------------------------------ builder API
class _FakeTensor:
    def __init__(self, dtype):
        self.dtype = dtype


class _FakeLayer:
    def __init__(self, name, type_, dtypes):
        self.name, self.type = name, type_
        self._outs = [_FakeTensor(d) for d in dtypes]
        self.precision = None
        self.output_types = {}

    @property
    def num_outputs(self):
        return len(self._outs)

    def get_output(self, i):
        return self._outs[i]

    def set_output_type(self, i, dtype):
        self.output_types[i] = dtype


def fake_tensorrt(calls: dict, parse_ok: bool = True) -> types.ModuleType:
    """The slice of the TensorRT 10 Python API that build_engine uses, recording what it is asked."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.float32, trt.float16, trt.int64 = "float32", "float16", "int64"
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", PREFER_PRECISION_CONSTRAINTS="PREFER")
    trt.LayerType = types.SimpleNamespace(SHAPE="SHAPE", CONSTANT="CONSTANT", CONVOLUTION="CONV", ELEMENTWISE="EW")
    trt.init_libnvinfer_plugins = lambda logger, ns: calls.setdefault("plugins", ns)

    class Network:
        def __init__(self):
            self.layers = [
                _FakeLayer("/net/encoder/stem/Conv", "CONV", ["float32"]),
                _FakeLayer("/net/color_head/conv2/Conv", "CONV", ["float32"]),
                _FakeLayer("/net/Floor", "EW", ["float32"]),
                _FakeLayer("/net/color_aggregate/ScatterElements", "PLUGIN", ["float32"]),
                _FakeLayer("/net/Cast_3", "CAST", ["int64"]),
                _FakeLayer("/net/Constant_7", "CONSTANT", ["float32"]),
            ]
            calls["network"] = self

        num_layers = property(lambda self: len(self.layers))

        def get_layer(self, i):
            return self.layers[i]

    class Parser:
        def __init__(self, network, logger):
            self.num_errors = 0 if parse_ok else 1

        def parse_from_file(self, path):
            calls["parsed"] = path
            return parse_ok

        def get_error(self, i):
            return types.SimpleNamespace(desc=lambda: "Unsupported op", node_name=lambda: "uniq",
                                         node_operator=lambda: "Unique")  # fmt: skip

    class Cache:
        def __init__(self, blob):
            self.blob = bytes(blob)

        def serialize(self):
            return self.blob + b"+timings"

    class Config:
        def __init__(self):
            self.flags, self.cache = [], None

        def set_memory_pool_limit(self, pool, size):
            calls["pool"] = (pool, size)

        def set_flag(self, flag):
            self.flags.append(flag)
            calls.setdefault("flags", []).append(flag)

        def create_timing_cache(self, blob):
            calls["cache_in"] = bytes(blob)
            return Cache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls["ignore_mismatch"] = ignore_mismatch
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls["network_flags"] = flags
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            calls["built"] = True
            return b"serialized-engine"

    trt.Builder, trt.OnnxParser = Builder, Parser
    return trt


def test_build_engine_uses_the_tensorrt_10_api(tmp_path, monkeypatch):
    from tests.test_export import exported

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls))
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"old")
    cfg = BuildConfig(precision="fp16", workspace_mb=512, timing_cache=timing)
    result = build_engine(exported("sensor"), tmp_path / "e.engine", cfg)
    assert (tmp_path / "e.engine").read_bytes() == b"serialized-engine"
    assert calls["plugins"] == "" and calls["network_flags"] == 0 and calls["parsed"].endswith(".onnx")
    assert calls["pool"] == ("WORKSPACE", 512 << 20)
    assert calls["flags"] == ["FP16", "PREFER"]
    assert calls["cache_in"] == b"old" and timing.read_bytes() == b"old+timings"
    assert calls["ignore_mismatch"] is False
    layers = {layer.name: layer for layer in calls["network"].layers}
    # the trunk is free to run in fp16; geometry and pooling are pinned to fp32; int/constant layers untouched
    assert layers["/net/encoder/stem/Conv"].precision is None and layers["/net/color_head/conv2/Conv"].precision is None
    assert layers["/net/Floor"].precision == "float32" and layers["/net/Floor"].output_types == {0: "float32"}
    assert layers["/net/color_aggregate/ScatterElements"].precision == "float32"
    assert layers["/net/Cast_3"].precision is None and layers["/net/Constant_7"].precision is None
    assert result.pinned_fp32_layers == 2 and result.precision == "fp16"
    assert all(scope.startswith("/net/") for scope in FP16_SCOPES)


def test_build_engine_fp32_sets_no_precision_flags(tmp_path, monkeypatch):
    from tests.test_export import exported

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls))
    build_engine(exported("sensor"), tmp_path / "e.engine", BuildConfig(precision="fp32"))
    assert "flags" not in calls and calls["cache_in"] == b""


def test_build_engine_parser_errors_name_the_node(tmp_path, monkeypatch):
    from tests.test_export import exported

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt({}, parse_ok=False))
    with pytest.raises(EngineBuildError, match=r"node 'uniq' \(Unique\): Unsupported op"):
        build_engine(exported("sensor"), tmp_path / "e.engine", BuildConfig(check_ops=False))
    assert not (tmp_path / "e.engine").exists()


def test_build_engine_refuses_an_incompatible_graph_before_building(tmp_path, monkeypatch):
    from gssplat_ros.export.trt_ops import TensorRTCompatibilityError
    from tests.test_trt_ops import _bad_graphs

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls))
    import onnx

    path = tmp_path / "bad.onnx"
    onnx.save(_bad_graphs()["Unique"], str(path))
    with pytest.raises(TensorRTCompatibilityError, match="Unique"):
        build_engine(path, tmp_path / "e.engine")
    assert "built" not in calls


def test_build_engine_refuses_the_onnxruntime_cpu_pair(tmp_path, monkeypatch, capsys):
    """Either graph of a --scatter host export is only half the encoder: one clear error, nothing built."""
    from gssplat_ros.cli import main
    from gssplat_ros.export.onnx_export import gaussians_graph_path
    from tests.test_export import exported

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls))
    first = exported("sensor", scatter="host")
    for path in (first, gaussians_graph_path(first)):
        with pytest.raises(ValueError, match="--scatter elements"):
            build_engine(path, tmp_path / "e.engine")
    assert "built" not in calls and not (tmp_path / "e.engine").exists()
    assert main(["export", "tensorrt", "--onnx", str(first), "--out", str(tmp_path / "e.engine")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--scatter elements" in err


# ------------------------------------------------------------------------------------------------ real TensorRT
@pytest.mark.skipif(not (HAS_TRT and torch.cuda.is_available()), reason="needs TensorRT and CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_runtime_matches_torch(tmp_path, precision):
    from gssplat_ros.export.parity import max_abs_errors, parity_inputs
    from gssplat_ros.runtime_factory import make_runtime, make_tensorrt
    from tests.test_export import tiny_checkpoint

    stem = tiny_checkpoint("sensor")
    dev = torch.device("cuda")
    trt_rt = make_tensorrt(stem, dev, 2, 64, 48, precision=precision, cache_dir=tmp_path)
    ref_rt = make_runtime("torch", str(stem), "sensor", "cuda")
    inputs = parity_inputs(2, 64, 48, "sensor").inputs
    errors = max_abs_errors(ref_rt(inputs), trt_rt(inputs))
    limit = 1e-3 if precision == "fp32" else 5e-2  # fp16 trunk: logits/SH to a few 1e-2
    assert errors["means_m"] <= 1e-3 and errors["sem_logits"] <= limit and errors["color_sh"] <= limit, errors
    again = make_tensorrt(stem, dev, 2, 64, 48, precision=precision, cache_dir=tmp_path)  # cached engine
    assert again.engine((2, 48, 64)).path == trt_rt.engine((2, 48, 64)).path
