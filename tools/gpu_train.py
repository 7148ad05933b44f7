"""Training throughput of `gssplat train` (the tiny and paper presets) and a short loss curve.

    python tools/gpu_train.py --root scenes --steps 60                          # CUDA, fp32 and bf16
    nice -n 10 python tools/gpu_train.py --root scenes --device cpu --amp none --steps 4 --warmup 1

Runs gssplat_ros.train.train on each preset's full-loss config (config/train/tiny_sensor/2_full_losses.yaml,
config/train/paper_scannet.yaml) with the data, window size, device and amp overridden, no validation
during the run and no initial checkpoint. Steps/s come from log.csv (one row per step) after --warmup steps;
images/s count the context views and rendered targets of a step.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESETS = {"tiny": "config/train/tiny_sensor/2_full_losses.yaml", "paper": "config/train/paper_scannet.yaml"}


def write_splits(root: Path) -> None:
    """All scenes but the last train, the last validates (generated data has no split files)."""
    scenes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("scene"))
    (root / "splits").mkdir(exist_ok=True)
    (root / "splits" / "train.txt").write_text("\n".join(scenes[:-1] or scenes) + "\n")
    (root / "splits" / "val.txt").write_text(scenes[-1] + "\n")


def run_one(preset: str, args, amp: str) -> str:
    from gssplat_ros.config import TrainConfig, load_typed_config
    from gssplat_ros.train import train

    w, h = (int(x) for x in args.size.split("x"))
    out = Path(tempfile.mkdtemp(prefix=f"gpu_train_{preset}_{amp}_"))
    backend = "gsplat" if args.device == "cuda" else "cpu"
    overrides = [f"data.root={args.root}", f"data.val_root={args.root}", "data.format=scannet",
                 f"data.views={args.views}", f"data.targets={args.targets}", f"data.width={w}", f"data.height={h}",
                 f"data.num_workers={args.workers}", "data.extra=[]", "init_from=''", f"optim.steps={args.steps}",
                 "optim.max_minutes=0", f"optim.warmup_steps={args.warmup}", "val_every=1000000000",
                 "ckpt_every=1000000000", "log_every=1", "val_windows=1", f"out_dir={out}", f"device={args.device}",
                 f"amp={amp}", f"render_backend={backend}", f"threads={args.threads}"]  # fmt: skip
    cfg = load_typed_config(REPO / PRESETS[preset], TrainConfig, overrides)
    metrics = train(cfg)
    rows = list(csv.DictReader(open(out / "log.csv")))
    steps = [int(r["step"]) for r in rows]
    elapsed = [float(r["elapsed_s"]) for r in rows]
    losses = [float(r["total"]) for r in rows]
    k = min(args.warmup, len(rows) - 2)
    rate = (steps[-1] - steps[k]) / max(elapsed[-1] - elapsed[k], 1e-9)
    per_step_images = args.views + args.targets
    every = max(1, len(losses) // 12)
    curve = " ".join(f"{steps[i]}:{losses[i]:.3f}" for i in range(0, len(losses), every))
    first, last = sum(losses[:5]) / len(losses[:5]), sum(losses[-5:]) / len(losses[-5:])
    print(f"loss curve {preset} {amp} (step:total): {curve}", flush=True)
    return (f"| {preset} | {args.device} | {amp} | V={args.views}+{args.targets} {args.size} | {rate:.2f} | "
            f"{1000.0 / rate:.0f} | {rate * per_step_images:.1f} | {first:.3f} -> {last:.3f} | "
            f"{metrics.get('psnr', float('nan')):.2f} |")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="generated scenes (gssplat data generate)")
    p.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--amp", nargs="+", choices=["none", "bf16"], default=["none", "bf16"])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5, help="steps not counted in steps/s")
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--targets", type=int, default=2)
    p.add_argument("--size", default="320x240")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    args.root = args.root.resolve()
    write_splits(args.root)
    import torch

    name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    rows = []
    for preset in args.presets:
        for amp in args.amp:
            try:
                rows.append(run_one(preset, args, amp))
            except Exception as exc:  # report and go on with the next configuration
                rows.append(f"| {preset} | {args.device} | {amp} | failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:150] if str(exc) else ''} | | | | | |")  # fmt: skip
            print(rows[-1], flush=True)
    print(f"# gssplat train throughput, {name}, torch {torch.__version__}, {args.steps} steps, "
          f"first {args.warmup} not timed")  # fmt: skip
    print("| preset | device | amp | window | steps/s | ms/step | images/s | loss first 5 -> last 5 | val PSNR |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
