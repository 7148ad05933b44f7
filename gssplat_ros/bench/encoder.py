"""`gssplat bench encoder`: ms per window by V x size (and runtime), parameters, peak memory.

Median of `--runs` after one warm-up, device-synchronised. Peak memory: the process's peak resident
set (VmHWM, reset per shape through /proc/self/clear_refs) on CPU, torch's max allocated on CUDA.
`--runtime` selects the encoder runtimes through the one runtime interface (gssplat_ros.runtime);
`--precision fp32 int8` times each exported runtime once per graph precision (rows "onnxruntime int8").

With several runtimes, each window shape is timed interleaved (torch, onnxruntime, torch, ...) on the
same inputs, so a machine whose speed drifts (shared VMs do, by up to 2x within minutes) slows every
runtime alike; `x torch` is torch's median over this row's (the speed-up; > 1 is faster than torch).
Interleaving call by call also makes each runtime start right after the other, on caches and thread
pools the other left behind; `--order blocks` instead times each runtime for `--block` calls in a row
(the first of each block not counted), blocks alternating, which is what a node running one runtime sees.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gssplat_ros.cameras import Cameras, look_at, make_K
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.checkpoint import save_checkpoint
from gssplat_ros.prediction import EncoderInputs
from gssplat_ros.runtime_factory import make_runtime
from gssplat_ros.weights import default_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", nargs="+", default=["torch"], choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--views", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--sizes", nargs="+", default=["160x120", "320x240"])
    parser.add_argument("--depth", choices=["sensor", "estimated"], nargs="+", default=["sensor", "estimated"])
    parser.add_argument("--checkpoint", default="", help="default: the shipped weights of each depth mode")
    parser.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--order", choices=["interleaved", "blocks"], default="interleaved",
                        help="with several runtimes: alternate call by call, or in blocks of --block calls")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "fp16", "int8"],
                        help="exported-graph precisions to time for onnxruntime / tensorrt (one row each; "
                             "torch runs fp32); int8: onnxruntime on the CPU")  # fmt: skip
    parser.add_argument("--block", type=int, default=4, help="calls per block with --order blocks (first not counted)")


def _peak_reset():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_inputs(views: int, width: int, height: int, with_depth: bool):
    """A window of V cameras on an arc looking at a textured box of random depth (speed only)."""

    g = torch.Generator().manual_seed(0)
    poses = torch.stack([look_at([0.15 * i, 0.0, 0.0], [0.0, 0.0, 3.0], up=(0, -1, 0)) for i in range(views)])
    K = make_K(0.9 * width, 0.9 * width, width / 2, height / 2).expand(views, 3, 3).contiguous()
    cams = Cameras(K, poses, width, height)
    depth = (2.0 + torch.rand(views, 1, height, width, generator=g)) if with_depth else None
    return EncoderInputs.from_cameras(torch.rand(views, 3, height, width, generator=g), cams, depth)


def _checkpoint_for(depth: str, given: str) -> str:
    if given:
        return given

    stem = default_checkpoint(depth)
    if stem.with_suffix(".safetensors").exists():
        return str(stem)
    # No shipped weights (a development checkout): time a freshly initialised tiny model of the same shape.

    cfg = ModelConfig.preset("tiny", depth_mode=depth)
    tmp = Path(tempfile.mkdtemp()) / f"tiny_{depth}"
    save_checkpoint(tmp, GSsplatNet(cfg), cfg, {})
    return str(tmp)


def _timed_call(rt, inputs) -> float:
    """Milliseconds of one call of runtime `rt`, device-synchronised."""
    cuda = rt.info.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    rt(inputs)
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


def _time_interleaved(runtimes: list, inputs, runs: int) -> list[float]:
    """Median ms per call of each runtime, the runtimes called in turn `runs` times after a warm-up."""
    times: list[list[float]] = [[] for _ in runtimes]
    for rt in runtimes:
        rt(inputs)
    for _ in range(runs):
        for i, rt in enumerate(runtimes):
            times[i].append(_timed_call(rt, inputs))
    return [statistics.median(t) for t in times]


def _time_blocks(runtimes: list, inputs, runs: int, block: int) -> list[float]:
    """Median ms per call of each runtime, timed in alternating blocks of `block` calls (the first call
    of a block, on the other runtime's leftovers, not counted) until each has `runs` timed calls."""
    block = max(2, block)
    times: list[list[float]] = [[] for _ in runtimes]
    while min(len(t) for t in times) < runs:
        for i, rt in enumerate(runtimes):
            for call in range(block):
                ms = _timed_call(rt, inputs)
                if call > 0 and len(times[i]) < runs:
                    times[i].append(ms)
    return [statistics.median(t) for t in times]


def _runtime_rows(runtimes: list[str], precisions: list[str]) -> list[tuple[str, str]]:
    """(runtime, precision) per table row: torch once (fp32), every other runtime once per precision."""
    rows = []
    for name in runtimes:
        for precision in ["auto"] if name == "torch" else precisions:
            if (name, precision) not in rows:
                rows.append((name, precision))
    return rows


def run(args: argparse.Namespace) -> int:
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    order = ""
    if len(args.runtime) > 1:
        order = "interleaved, " if args.order == "interleaved" else f"in alternating blocks of {args.block}, "
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; median of {args.runs} after warm-up"
          f" ({order}synthetic window)")  # fmt: skip
    print("| runtime | device | depth | V | size | ms / window | x torch | params | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for depth in args.depth:
        ckpt = _checkpoint_for(depth, args.checkpoint)
        for device in devices:
            for size in args.sizes:
                w, h = (int(v) for v in size.split("x"))
                for v in args.views:
                    runtimes, names = [], []
                    for runtime_name, precision in _runtime_rows(args.runtime, getattr(args, "precision", ["auto"])):
                        label = runtime_name if precision in ("auto", "fp32") else f"{runtime_name} {precision}"
                        try:
                            runtimes.append(make_runtime(runtime_name, ckpt, depth, device, v, w, h, precision=precision))
                            names.append(label)
                        except Exception as exc:  # a runtime that cannot run here: say why, keep going
                            print(f"| {label} | {device} | {depth} | {v} | {size} | unavailable: {exc} | | | |")
                    if not runtimes:
                        continue
                    _peak_reset()
                    inputs = synthetic_inputs(v, w, h, depth == "sensor")
                    if args.order == "blocks" and len(runtimes) > 1:
                        medians = _time_blocks(runtimes, inputs, args.runs, args.block)
                    else:
                        medians = _time_interleaved(runtimes, inputs, args.runs)
                    torch_ms = medians[names.index("torch")] if "torch" in names else None
                    for name, rt, ms in zip(names, runtimes, medians):
                        net = getattr(rt, "net", None)
                        params = sum(p.numel() for p in net.parameters()) if net is not None else ""
                        speedup = f"{torch_ms / ms:.2f}" if torch_ms else ""
                        print(f"| {name} | {rt.info.device.type} | {depth} | {v} | {size} | {ms:.1f} | {speedup} | "
                              f"{params} | {_peak_mib(rt.info.device):.0f} |", flush=True)  # fmt: skip
    return 0
