"""`gssplat bench encoder`: ms per window by V x size (and runtime), parameters, peak memory.

Median of `--runs` after one warm-up, device-synchronised. Peak memory: the process's peak resident
set (VmHWM, reset per row through /proc/self/clear_refs) on CPU, torch's max allocated on CUDA.
`--runtime` selects the encoder runtime through the one runtime interface (gssplat_ros.runtime).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", nargs="+", default=["torch"], choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--views", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--sizes", nargs="+", default=["160x120", "320x240"])
    parser.add_argument("--depth", choices=["sensor", "estimated"], nargs="+", default=["sensor", "estimated"])
    parser.add_argument("--checkpoint", default="", help="default: the shipped weights of each depth mode")
    parser.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--runs", type=int, default=5)


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
    from gssplat_ros.cameras import Cameras, look_at, make_K
    from gssplat_ros.prediction import EncoderInputs

    g = torch.Generator().manual_seed(0)
    poses = torch.stack([look_at([0.15 * i, 0.0, 0.0], [0.0, 0.0, 3.0], up=(0, -1, 0)) for i in range(views)])
    K = make_K(0.9 * width, 0.9 * width, width / 2, height / 2).expand(views, 3, 3).contiguous()
    cams = Cameras(K, poses, width, height)
    depth = (2.0 + torch.rand(views, 1, height, width, generator=g)) if with_depth else None
    return EncoderInputs.from_cameras(torch.rand(views, 3, height, width, generator=g), cams, depth)


def _checkpoint_for(depth: str, given: str) -> str:
    if given:
        return given
    from gssplat_ros.weights import default_checkpoint

    stem = default_checkpoint(depth)
    if stem.with_suffix(".safetensors").exists():
        return str(stem)
    # No shipped weights (a development checkout): time a freshly initialised tiny model of the same shape.
    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.model.checkpoint import save_checkpoint

    cfg = ModelConfig.preset("tiny", depth_mode=depth)
    tmp = Path(tempfile.mkdtemp()) / f"tiny_{depth}"
    save_checkpoint(tmp, GSsplatNet(cfg), cfg, {})
    return str(tmp)


def run(args: argparse.Namespace) -> int:
    from gssplat_ros.runtime import make_runtime

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; median of {args.runs} after warm-up")
    print("| runtime | device | depth | V | size | ms / window | params | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for depth in args.depth:
        ckpt = _checkpoint_for(depth, args.checkpoint)
        for runtime_name in args.runtime:
            for device in devices:
                for size in args.sizes:
                    w, h = (int(v) for v in size.split("x"))
                    for v in args.views:
                        try:
                            rt = make_runtime(runtime_name, ckpt, depth, device, v, w, h)
                        except Exception as exc:  # a runtime that cannot run here: say why, keep going
                            print(f"| {runtime_name} | {device} | {depth} | {v} | {size} | unavailable: {exc} | | |")
                            break
                        inputs = synthetic_inputs(v, w, h, depth == "sensor")
                        dev = rt.info.device
                        _peak_reset()
                        rt(inputs)
                        times = []
                        for _ in range(args.runs):
                            if dev.type == "cuda":
                                torch.cuda.synchronize()
                            t0 = time.perf_counter()
                            rt(inputs)
                            if dev.type == "cuda":
                                torch.cuda.synchronize()
                            times.append((time.perf_counter() - t0) * 1e3)
                        net = getattr(rt, "net", None)
                        params = sum(p.numel() for p in net.parameters()) if net is not None else ""
                        print(f"| {runtime_name} | {dev.type} | {depth} | {v} | {size} | {statistics.median(times):.1f} | "
                              f"{params} | {_peak_mib(dev):.0f} |", flush=True)
    return 0
