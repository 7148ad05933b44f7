"""`gssplat bench render`: median ms per frame by Gaussian count x image size, forward and backward.

Scene: per-pixel-like Gaussians in front of one camera (the shape an encoder predicts), 3 colour +
20 feature channels + expected depth. Median of `--runs` after one warm-up. Peak memory is the
process's peak resident set (VmHWM) during that configuration, reset before each one through
/proc/self/clear_refs; it includes the Python process itself (~0.4 GB with torch loaded).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gssplat_ros.cameras import Cameras, make_K
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.render import RenderSettings, available_backends, render

COUNTS = (10_000, 50_000, 131_072, 500_000)
SIZES = ((160, 120), (256, 256), (320, 240), (640, 480))


def bench_scene(n: int, width: int, height: int, num_features: int = 20, device="cpu", seed: int = 0):
    """Gaussians spread over the view frustum, each about a pixel footprint to a few pixels wide."""
    g = torch.Generator().manual_seed(seed)
    z = 2.0 + 3.0 * torch.rand(n, generator=g)
    f = 0.9 * width
    u, v = torch.rand(n, generator=g) * width, torch.rand(n, generator=g) * height
    means = torch.stack([(u - width / 2) / f * z, (v - height / 2) / f * z, z], -1)
    # Scale so the n Gaussians tile the image about 3 deep (like V overlapping per-pixel views).
    footprint = (width * height * 3.0 / n) ** 0.5
    scales = (z * footprint / f)[:, None] * (0.3 + 0.5 * torch.rand(n, 3, generator=g))
    gs = Gaussians(
        means=means,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=scales,
        opacities=0.3 + 0.65 * torch.rand(n, generator=g),
        sh=torch.randn(n, 1, 3, generator=g) * 0.5,
        features=torch.randn(n, num_features, generator=g),
    )
    cams = Cameras(make_K(f, f, width / 2, height / 2), torch.eye(4), width, height)
    return gs.to(device), cams.to(device)


def _peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_config(backend: str, n: int, width: int, height: int, runs: int, backward: bool):
    device = torch.device("cuda" if backend == "gsplat" else "cpu")
    g, cams = bench_scene(n, width, height, device=device)
    settings = RenderSettings(backend=backend)
    leaves = ("means", "quats", "scales", "opacities", "sh", "features")

    def once() -> float:
        gg = Gaussians(**{k: getattr(g, k).detach().requires_grad_(backward) for k in leaves})
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        out = render(gg, cams, settings)
        if backward:
            (out.rgb.sum() + out.features.sum() + out.depth.sum()).backward()
        sync()
        return (time.perf_counter() - t0) * 1e3

    _peak_reset()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    once()  # warm-up (and numba compilation on a cold cache)
    times = [once() for _ in range(runs)]
    return statistics.median(times), _peak_mib(device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["cpu", "gsplat", "all"], default="all")
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    parser.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES], help="WxH")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one small configuration, 2 runs (smoke test)")


def run(args: argparse.Namespace) -> int:
    backends = available_backends() if args.backend == "all" else [args.backend]
    counts, sizes, runs = args.counts, [tuple(map(int, s.split("x"))) for s in args.sizes], args.runs
    if args.quick:
        counts, sizes, runs = [10_000], [(160, 120)], 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; channels: 3 colour + 20 features + depth")
    header = "| backend | N | size | forward ms | fwd+bwd ms | backward ms | bwd/fwd | peak MiB |"
    print(header)
    print("|" + "---|" * 8)
    for backend in backends:
        for n in counts:
            for w, h in sizes:
                fwd, _ = time_config(backend, n, w, h, runs, backward=False)
                both, peak = time_config(backend, n, w, h, runs, backward=True)
                bwd = both - fwd
                cells = [backend, n, f"{w}x{h}", f"{fwd:.1f}", f"{both:.1f}", f"{bwd:.1f}"]
                cells += [f"{bwd / fwd:.2f}", f"{peak:.0f}"]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    return 0
