"""gsplat (CUDA) renderer vs the CPU (numba) renderer: forward images and gradients, one table.

    python tools/gpu_parity.py                 # gsplat vs cpu (needs CUDA and gsplat)
    python tools/gpu_parity.py --device cpu    # dry run: cpu vs the float64 reference renderer

Scenes: the renderer tests' scenes (odd sizes, Gaussians behind the camera, one straddling the border, one
near-degenerate covariance, a dense opaque stack), and the shipped tiny_sensor model's colour and semantic
Gaussians predicted from a generated window, rendered at its context cameras. Per output: max abs difference
and PSNR between the backends (peak = the CPU image's value range); per Gaussian attribute: the gradient's
relative error max|g_a - g_b| / max|g_b| under one random weighting of rgb, features, depth and alpha.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gssplat_ros.cameras import Cameras  # noqa: E402
from gssplat_ros.gaussians import Gaussians  # noqa: E402
from gssplat_ros.render import RenderSettings, render  # noqa: E402

LEAVES = ("means", "quats", "scales", "opacities", "sh", "features")
OUTPUTS = ("rgb", "features", "depth", "alpha")


def test_scenes():
    """(name, gaussians, cameras): the renderer tests' scenes."""
    from tests.test_render_cpu import make_scene

    for seed, degree in [(0, 0), (1, 1), (2, 2), (3, 3)]:
        g, cams = make_scene(seed=seed, degree=degree)
        yield f"test scene {seed} (SH {degree}, 37x29)", g, cams
    g, cams = make_scene(n=150, seed=7, spread=0.15, opacity=(0.9, 0.98))
    yield "dense opaque stack", g, cams
    g, cams = make_scene(n=300, seed=4, spread=2.5)
    yield "wide: off-screen + behind", g, cams


def model_scene(views: int = 4, width: int = 160, height: int = 120):
    """The shipped tiny_sensor model on the encoder benchmark's window (cameras on an arc facing a textured box
    at random depth): its colour and semantic Gaussians, rendered at the context cameras."""
    from gssplat_ros.bench.encoder import synthetic_inputs
    from gssplat_ros.prediction import Prediction
    from gssplat_ros.runtime_factory import make_runtime
    from gssplat_ros.weights import default_checkpoint

    inputs = synthetic_inputs(views, width, height, with_depth=True)
    cams = Cameras(inputs.K, inputs.world_from_cam, width, height)
    rt = make_runtime("torch", str(default_checkpoint("sensor")), "sensor", "cpu", views, width, height)
    with torch.inference_mode():
        pred = Prediction.from_outputs(rt(inputs))
    clone = lambda g: Gaussians(**{k: None if getattr(g, k) is None else getattr(g, k).clone() for k in LEAVES})  # noqa: E731
    yield f"tiny_sensor colour, V={views} {width}x{height}", clone(pred.color), cams
    yield f"tiny_sensor semantic, V={views} {width}x{height}", clone(pred.semantic), cams


def render_fn(backend: str, device: str):
    if backend == "reference":
        from tests.reference_renderer import render_reference

        return lambda g, cams: render_reference(g, cams)

    def run(g: Gaussians, cams: Cameras):
        out = render(g.to(device), cams.to(device), RenderSettings(backend=backend))
        return {k: getattr(out, k) for k in OUTPUTS}

    return run


def forward_and_grads(fn, g: Gaussians, cams: Cameras, dtype: torch.dtype):
    """Rendered outputs (CPU float64) and d(loss)/d(leaf) for a fixed random weighting of every output."""
    leaves = {k: getattr(g, k).detach().to(dtype).requires_grad_(True) for k in LEAVES if getattr(g, k) is not None}
    out = fn(Gaussians(**leaves), cams)
    gen = torch.Generator().manual_seed(0)
    loss = 0
    for key in OUTPUTS:
        t = out.get(key)
        if t is not None:
            loss = loss + (t * torch.rand(t.shape, generator=gen, dtype=torch.float64).to(t.device, t.dtype)).sum()
    loss.backward()
    images = {k: (None if out.get(k) is None else out[k].detach().double().cpu()) for k in OUTPUTS}
    return images, {k: v.grad.double().cpu() for k, v in leaves.items() if v.grad is not None}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    peak = float(b.max() - b.min()) or 1.0
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cuda: gsplat vs cpu; cpu: a dry run, cpu vs the float64 reference")  # fmt: skip
    parser.add_argument("--no-model", action="store_true", help="skip the shipped-model scene")
    args = parser.parse_args()
    torch.set_num_threads(min(8, torch.get_num_threads()))
    if args.device == "cuda":
        a_name, b_name = "gsplat", "cpu"
        a_fn, b_fn, a_dtype = render_fn("gsplat", "cuda"), render_fn("cpu", "cpu"), torch.float32
    else:
        a_name, b_name = "cpu", "reference"
        a_fn, b_fn, a_dtype = render_fn("cpu", "cpu"), render_fn("reference", "cpu"), torch.float32
    b_dtype = torch.float64 if b_name == "reference" else torch.float32
    print(f"# renderer parity: {a_name} vs {b_name}; torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name(0)}" if args.device == "cuda" else ""))
    print("| scene | N | " + " | ".join(f"{k} max abs / PSNR dB" for k in OUTPUTS)
          + " | grad rel err (worst leaf) | grad rel err per leaf |")  # fmt: skip
    print("|---|---|" + "---|" * len(OUTPUTS) + "---|---|")
    # the float64 reference renderer is pure Python: the dry run predicts a small window only
    size = dict(views=4, width=160, height=120) if args.device == "cuda" else dict(views=2, width=32, height=16)
    scenes = list(test_scenes()) + ([] if args.no_model else list(model_scene(**size)))
    worst = {k: 0.0 for k in OUTPUTS}
    for name, g, cams in scenes:
        img_a, grad_a = forward_and_grads(a_fn, g, cams, a_dtype)
        img_b, grad_b = forward_and_grads(b_fn, g, cams, b_dtype)
        cells = []
        for k in OUTPUTS:
            if img_a[k] is None or img_b[k] is None:
                cells.append("-")
                continue
            err = float((img_a[k] - img_b[k]).abs().max())
            worst[k] = max(worst[k], err)
            cells.append(f"{err:.1e} / {psnr(img_a[k], img_b[k]):.1f}")
        rel = {k: float((grad_a[k] - grad_b[k]).abs().max()) / (float(grad_b[k].abs().max()) + 1e-12)
               for k in grad_b if k in grad_a}  # fmt: skip
        per_leaf = ", ".join(f"{k} {v:.1e}" for k, v in rel.items())
        worst_leaf = max(rel, key=rel.get)
        print(f"| {name} | {len(g.means)} | " + " | ".join(cells) + f" | {rel[worst_leaf]:.1e} ({worst_leaf}) | "
              f"{per_leaf} |", flush=True)  # fmt: skip
    print("worst max abs: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
