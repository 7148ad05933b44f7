"""ONNX Runtime encoder: the exported graph on the CPU or CUDA execution provider, torch tensors in and out.

Usage:
    runtime = make_runtime("onnxruntime", checkpoint="runs/a/tiny_sensor", device="cpu", views=4,
                           width=160, height=120)
    outputs = runtime(EncoderInputs.from_cameras(images, cams, depth))    # name -> [V, H, W, ...] on device

The graph for each window shape comes from `onnx_for_shape` (the runtime factory passes the exporter's
cache, gssplat_ros/export/onnx_cache.py: exported on first use), or is `onnx_path`. A window of another shape exports and
loads its own graph on first sight. On the CPU provider the network runs as two graphs with the voxel
pooling between them on the host (export scatter="host"): onnxruntime's CPU kernels have no scatter-add
that is both fast and correct on several threads (ScatterElements walks element by element; a reducing
ScatterND splits its rows across intra-op threads without atomics and loses updates, which an earlier
"rows" flavour did: logits off by up to 0.9 at V=4 160x120 with 2 threads). The host pooling is a
numba kernel where numba is installed, else torch (host_pooling). An estimated model with the
photometric depth refinement runs one graph more before the pair (its cascade), and the refinement
between that graph and the first on the host (DepthStage; host_refine.py). The CUDA provider runs the
one portable graph (ScatterElements). CPU sessions use full graph optimisation, no busy-waiting
(GSSPLAT_ORT_SPIN=1 enables it), by default as many intra-op threads as torch uses
(GSSPLAT_ORT_THREADS overrides), and denormal floats flushed to zero (GSSPLAT_ORT_DENORMALS=keep
keeps them). precision "int8" runs the host pair quantised (gssplat_ros/export/quantize.py; CPU provider only).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from gssplat_ros.prediction import DEPTH_GRAPH_OUTPUTS, OUTPUT_NAMES, POOLING_INPUT_OUTPUTS, REFINED_DEPTH_INPUT, EncoderInputs
from gssplat_ros.runtime import RuntimeInfo
from gssplat_ros.runtime.host_pooling import HostPooling
from gssplat_ros.runtime.host_refine import HostRefinement

log = logging.getLogger(__name__)

Shape = tuple[int, int, int]  # (V, H, W)
OnnxSource = Callable[[int, int, int, str, str], Path]  # (views, width, height, precision, scatter) -> graph path


def session_options(threads: Optional[int] = None):
    """Full graph optimisation, sequential execution, `threads` intra-op threads (default: torch's)."""
    import onnxruntime as ort  # lazy: onnxruntime is optional (only this runtime needs it)

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    env_threads = int(os.environ.get("GSSPLAT_ORT_THREADS", "0") or 0)
    so.intra_op_num_threads = int(threads or env_threads or torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: constant-folding notices about fp16 kernels are not actionable
    # No busy-waiting between runs: the renderer (torch) runs right after the encoder on the same cores,
    # and spinning pool threads steal them from it (and from anything else on a busy robot computer).
    spin = os.environ.get("GSSPLAT_ORT_SPIN", "0") not in ("", "0", "false")
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # Flush denormals to zero (FTZ/DAZ): the shipped sensor encoder runs ~9% faster in onnxruntime with the
    # same outputs (measured V=4 160x120, 1 thread: 402 -> 368 ms, max difference 0). onnxruntime sets the
    # flags on its pool threads and, once per process, on the thread that creates the first session, so
    # torch code on that thread flushes too (values below 1.2e-38 become 0; torch's speed is unchanged).
    if os.environ.get("GSSPLAT_ORT_DENORMALS", "flush") != "keep":
        so.add_session_config_entry("session.set_denormal_as_zero", "1")
    return so


def open_session(path: Union[str, Path], options, providers: list):
    """An InferenceSession for `path`; a graph exported with scatter="rows" (its metadata says so) runs on
    one intra-op thread, since its ScatterND(add) races on several (see the module docstring)."""
    import onnxruntime as ort  # lazy: onnxruntime is optional (only this runtime needs it)

    sess = ort.InferenceSession(str(path), options, providers=providers)
    if sess.get_modelmeta().custom_metadata_map.get("scatter") == "rows" and options.intra_op_num_threads != 1:
        log.warning("%s pools voxels with row-wise ScatterND, which races on several threads in onnxruntime: "
                    "running it on 1 thread", Path(path).name)  # fmt: skip
        sess = ort.InferenceSession(str(path), session_options(1), providers=providers)
    return sess


def providers_for(device: torch.device) -> list:
    """CUDA EP (then CPU for anything it lacks) on a CUDA device, the CPU EP otherwise."""
    import onnxruntime as ort  # lazy: onnxruntime is optional (only this runtime needs it)

    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        log.warning("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu); running on the CPU "
                    "and copying outputs to %s", device)  # fmt: skip
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]


class OnnxRuntimeEncoder:
    """EncoderRuntime over onnxruntime sessions, one per window shape."""

    def __init__(
        self,
        onnx_for_shape: Optional[OnnxSource],
        model_cfg,
        device: torch.device,
        precision: str = "fp32",
        threads: Optional[int] = None,
        onnx_path: Union[str, Path, None] = None,
    ):
        """onnx_for_shape(views, width, height, precision, scatter) -> the graph's path (exported when missing,
        by gssplat_ros.export through the runtime factory); unused with a fixed `onnx_path`."""
        self.onnx_for_shape = onnx_for_shape
        self.cfg = model_cfg
        self.precision = precision
        self.threads = threads
        self.fixed_onnx = Path(onnx_path) if onnx_path else None
        names = tuple(model_cfg.class_names or ())
        self.info = RuntimeInfo("onnxruntime", model_cfg.depth_mode, model_cfg.num_classes, names, device,
                                model_cfg.colour_gaussians)
        self.providers = providers_for(device)
        self._sessions: dict[Shape, object] = {}
        self._gaussian_sessions: dict[Shape, object] = {}  # the second graph of a scatter="host" pair
        self._poolers: dict[Shape, HostPooling] = {}  # the host pooling between a pair's graphs
        self._depth_stages: dict[Shape, Optional[DepthStage]] = {}  # the depth graph + host refinement, if any
        self._on_cuda: dict[Shape, bool] = {}
        self.onnx_paths: dict[Shape, Path] = {}

    # ------------------------------------------------------------------ sessions
    def session(self, shape: Shape):
        """The session for (V, H, W), exporting and loading it on first use."""
        if shape not in self._sessions:

            num_views, height, width = shape
            options = session_options(self.threads)
            if self.fixed_onnx is not None:
                path = self.fixed_onnx
            else:
                # the host-pooled pair on the CPU (module docstring); a model without aggregation has no pooling
                on_cpu = self.providers == ["CPUExecutionProvider"]
                scatter = "host" if on_cpu and self.cfg.aggregate else "elements"
                if self.precision == "int8" and scatter != "host":
                    raise ValueError("precision int8 runs on onnxruntime's CPU provider with an aggregating model "
                                     "(the quantised graph pair); use fp32 or fp16 here")  # fmt: skip
                if self.onnx_for_shape is None:
                    raise ValueError("no ONNX file for this window shape (the runtime was given one fixed graph)")
                path = Path(self.onnx_for_shape(num_views, width, height, self.precision, scatter))
            sess = open_session(path, options, self.providers)
            second = second_graph(path, sess)
            if second is not None:
                self._gaussian_sessions[shape] = open_session(second, options, self.providers)
                self._poolers[shape] = HostPooling(int(sess.get_modelmeta().custom_metadata_map["table_size"]))
                self._depth_stages[shape] = depth_stage_for(path, sess, options, self.providers)
            expect = [num_views, 3, height, width]
            got = list(sess.get_inputs()[0].shape)
            if got != expect:
                raise ValueError(f"{path} takes images {got}, the window is {expect}")
            self._sessions[shape] = sess
            self._on_cuda[shape] = sess.get_providers()[0] == "CUDAExecutionProvider" and device_is_cuda(self)
            self.onnx_paths[shape] = Path(path)
            log.info("onnxruntime session for V=%d %dx%d on %s (%s)", num_views, width, height,
                     sess.get_providers()[0], path.name)  # fmt: skip
        return self._sessions[shape]

    def warm(self, views: int, width: int, height: int) -> None:
        self.session((views, height, width))

    # ------------------------------------------------------------------ inference
    def __call__(self, inputs: EncoderInputs) -> dict[str, Tensor]:
        num_views, _, height, width = inputs.images.shape
        sess = self.session((num_views, height, width))
        feeds = {n: t for n, t in inputs.as_dict().items() if n != "depth" or self.info.depth_mode == "sensor"}
        # REFINED_DEPTH_INPUT is made on the host (DepthStage), not fed
        missing = [i.name for i in sess.get_inputs() if i.name not in feeds and i.name != REFINED_DEPTH_INPUT]
        if missing:
            raise ValueError(f"the {self.info.depth_mode}-depth encoder needs input(s) {missing}")
        shape = (num_views, height, width)
        if self._on_cuda[shape]:
            outs = self._run_cuda(sess, feeds)
        elif shape in self._gaussian_sessions:
            outs = run_host_pooled(sess, self._gaussian_sessions[shape], self._poolers[shape], feeds,
                                   self._depth_stages[shape])  # fmt: skip
        else:
            feed = {i.name: _as_numpy(feeds[i.name]) for i in sess.get_inputs()}
            outs = [torch.from_numpy(a) for a in sess.run(None, feed)]
        # Graph outputs come in OUTPUT_NAMES order (the depth output is called `depth_out` in the graph).
        return {name: t.to(self.info.device) for name, t in zip(OUTPUT_NAMES, outs)}

    def _run_cuda(self, sess, feeds: dict[str, Tensor]) -> list[Tensor]:
        """I/O binding on torch CUDA memory: no host round trip."""
        device = self.info.device
        binding = sess.io_binding()
        keep = []
        for meta in sess.get_inputs():
            t = feeds[meta.name].to(device=device, dtype=torch.float32).contiguous()
            keep.append(t)
            binding.bind_input(meta.name, "cuda", device.index or 0, np.float32, tuple(t.shape), t.data_ptr())
        outs = []
        for meta in sess.get_outputs():
            t = torch.empty(tuple(meta.shape), dtype=torch.float32, device=device)
            outs.append(t)
            binding.bind_output(meta.name, "cuda", device.index or 0, np.float32, tuple(t.shape), t.data_ptr())
        torch.cuda.current_stream(device).synchronize()  # inputs written by torch before ORT reads them
        sess.run_with_iobinding(binding)
        return outs


def second_graph(path: Union[str, Path], sess) -> Optional[Path]:
    """The second file of a scatter="host" pair whose first graph `sess` runs (None for a single graph).

    Raises ValueError for the second graph given alone, FileNotFoundError when the second is missing.
    """
    meta = sess.get_modelmeta().custom_metadata_map
    if meta.get("split_stage") == "gaussians":
        raise ValueError(f"{path} is the second graph of a split export (--scatter host); pass the first one")
    if meta.get("scatter") != "host":
        return None
    second = Path(path).with_name(meta["gaussians_graph"])
    if not second.exists():
        raise FileNotFoundError(f"{path} needs its second graph {second} (export both files together)")
    return second


class DepthStage:
    """The depth graph of a scatter="host" export that refines on the host, and that refinement
    (runtime/host_refine.py): contract inputs (numpy) -> the refined depth the first graph takes."""

    def __init__(self, sess, refine: HostRefinement):
        self.sess = sess
        self.refine = refine

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:  # [V, 1, h, w] float32
        out = dict(zip(DEPTH_GRAPH_OUTPUTS, self.sess.run(None, {i.name: feed[i.name] for i in self.sess.get_inputs()})))
        return self.refine(out["cascade_depth"], out["depth_images"], out["depth_K"], feed["world_from_cam"],
                           feed["cam_from_world"], out["depth_nbrs"])  # fmt: skip


def depth_stage_for(path: Union[str, Path], sess, options, providers: list) -> Optional[DepthStage]:
    """The DepthStage that the first graph `sess` of a scatter="host" export needs (None: it takes no
    refined depth). Raises FileNotFoundError when its depth graph is missing."""
    meta = sess.get_modelmeta().custom_metadata_map
    if "depth_graph" not in meta:
        return None
    depth_path = Path(path).with_name(meta["depth_graph"])
    if not depth_path.exists():
        raise FileNotFoundError(f"{path} needs its depth graph {depth_path} (export the files together)")
    return DepthStage(open_session(depth_path, options, providers), HostRefinement(**json.loads(meta["host_refine"])))


def run_host_pooled(first, second, pooling: Union[int, HostPooling], feeds: dict[str, Tensor],
                    depth_stage: Optional[DepthStage] = None) -> list[Tensor]:
    """Run a scatter="host" pair: [the depth graph and the host refinement,] the first graph, the voxel
    pooling on the host (numba, else torch), the second graph.

    pooling: a HostPooling (keeps its scratch between calls) or the table size from the first graph's
    metadata. depth_stage: depth_stage_for(...) of the first graph. Returns the contract outputs in
    OUTPUT_NAMES order (CPU tensors).
    """

    if not isinstance(pooling, HostPooling):
        pooling = HostPooling(pooling)

    feed = {n: _as_numpy(t) for n, t in feeds.items() if t is not None}
    return [torch.from_numpy(a) for a in second.run(None, second_graph_feeds(first, second, pooling, feed, depth_stage))]


def second_graph_feeds(first, second, pooling: HostPooling, feed: dict[str, np.ndarray],
                       depth_stage: Optional[DepthStage] = None) -> dict[str, np.ndarray]:
    """[The depth stage, then] the first graph of a scatter="host" pair on `feed` (contract inputs by name,
    numpy), then the host pooling: the second graph's inputs by name."""
    if depth_stage is not None:
        feed = {**feed, REFINED_DEPTH_INPUT: depth_stage(feed)}
    first_feed = {i.name: feed[i.name] for i in first.get_inputs()}
    mid = dict(zip(POOLING_INPUT_OUTPUTS, first.run(None, first_feed)))  # numpy
    color_pooled, sem_pooled = pooling(*(mid[n] for n in POOLING_INPUT_OUTPUTS[1:]))
    values = {**feed, **mid, "color_pooled": color_pooled, "sem_pooled": sem_pooled}
    return {i.name: values[i.name] for i in second.get_inputs()}


def device_is_cuda(runtime: OnnxRuntimeEncoder) -> bool:
    return runtime.info.device.type == "cuda"


def _as_numpy(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())
