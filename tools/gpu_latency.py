"""Keyframe-update latency: the pipeline's predict (encoder) + render of RGB, labels and depth at one camera.

    python tools/gpu_latency.py [--profile-dir DIR]      # CUDA: V 2 4 8 x 160x120 320x240 x fp32 bf16 fp16
    python tools/gpu_latency.py --device cpu --views 2 --sizes 64x48 --precisions fp32 --runs 1   # dry run

The encoder is the torch runtime of the shipped weights (sensor and estimated depth); bf16 / fp16 run its
forward under torch.autocast and hand float32 Gaussians to the renderer, as `gssplat train` does with amp.
The render is `Pipeline.render` (the node's call: colour pass, semantic pass, labels, copies to numpy).
Each row: median of --runs after two warm-ups, torch.cuda.synchronize() around every timed region.
With --profile-dir, a row slower than --goal-ms writes a torch.profiler table of its top CUDA kernels.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gssplat_ros.bench.encoder import synthetic_inputs  # noqa: E402
from gssplat_ros.pipeline import Pipeline, PipelineConfig  # noqa: E402
from gssplat_ros.prediction import Prediction  # noqa: E402
from gssplat_ros.runtime_factory import make_runtime  # noqa: E402
from gssplat_ros.weights import default_checkpoint  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def keyframe_update(rt, pipe: Pipeline, inputs, K, pose, w: int, h: int, dtype, sync):
    """(encode ms, render ms) of one update."""
    sync()
    t0 = time.perf_counter()
    with torch.inference_mode(), torch.autocast(inputs.images.device.type, dtype=dtype or torch.float32,
                                                enabled=dtype is not None):  # fmt: skip
        raw = rt(inputs)
    raw = {k: v.float() for k, v in raw.items()}  # the renderer projects and blends fp32
    pred = Prediction.from_outputs(raw)
    sync()
    t1 = time.perf_counter()
    result = pipe.render(pred, K, pose, w, h)
    sync()
    t2 = time.perf_counter()
    assert result.labels.shape == (h, w) and result.depth.shape == (h, w)
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--views", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--sizes", nargs="+", default=["160x120", "320x240"])
    p.add_argument("--precisions", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    p.add_argument("--depth", nargs="+", choices=["sensor", "estimated"], default=["sensor", "estimated"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--goal-ms", type=float, default=10.0)
    p.add_argument("--profile-dir", type=Path, default=None)
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    backend = "gsplat" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"# keyframe update (encode + render RGB/labels/depth at one camera), {name}, torch {torch.__version__}, "
          f"renderer {backend}, median of {args.runs} after 2 warm-ups")  # fmt: skip
    print("| depth | V | size | precision | encode ms | render ms | update ms | goal |")
    print("|---|---|---|---|---|---|---|---|")
    profiled = 0
    for depth in args.depth:
        ckpt = str(default_checkpoint(depth))
        for size in args.sizes:
            w, h = (int(x) for x in size.split("x"))
            for v in args.views:
                rt = make_runtime("torch", ckpt, depth, str(device), v, w, h)
                pipe = Pipeline(PipelineConfig(checkpoint=ckpt, device=str(device), depth_mode=depth,
                                               render_backend=backend, window_size=v, model_width=w, model_height=h))  # fmt: skip
                inputs = synthetic_inputs(v, w, h, depth == "sensor").to(device)
                K, pose = inputs.K[-1].cpu().numpy(), inputs.world_from_cam[-1].cpu().numpy()
                for precision in args.precisions:
                    dtype = DTYPES[precision]
                    call = functools.partial(keyframe_update, rt, pipe, inputs, K, pose, w, h, dtype, sync)
                    try:
                        call()
                        call()
                        times = [call() for _ in range(args.runs)]
                    except Exception as exc:  # a precision the model cannot run: say why, keep going
                        msg = str(exc).splitlines()[0][:120] if str(exc) else ""
                        print(f"| {depth} | {v} | {size} | {precision} | failed: {type(exc).__name__}: {msg} | | | |")
                        continue
                    enc = statistics.median(t[0] for t in times)
                    ren = statistics.median(t[1] for t in times)
                    total = statistics.median(t[0] + t[1] for t in times)
                    ok = "met" if total <= args.goal_ms else "over"
                    print(f"| {depth} | {v} | {size} | {precision} | {enc:.2f} | {ren:.2f} | {total:.2f} | {ok} |",
                          flush=True)  # fmt: skip
                    slow_goal = (v, size) == (max(args.views), args.sizes[-1]) and total > args.goal_ms
                    if args.profile_dir is not None and slow_goal and profiled < 4:
                        profiled += 1
                        write_profile(args.profile_dir / "profile.txt", call, f"{depth} V={v} {size} {precision}")
    return 0


def write_profile(path: Path, call, title: str) -> None:
    """Append torch.profiler's top kernels (by device time) of three updates to `path`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for _ in range(3):
            call()
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"## {title}: three keyframe updates\n")
        f.write(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=70) + "\n\n")


if __name__ == "__main__":
    sys.exit(main())
