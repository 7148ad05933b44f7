"""What the GPU machine has (python, torch, CUDA, optional packages), then gsplat's JIT compile, timed.

python tools/gpu_env.py      # one rasterised Gaussian: builds gsplat's CUDA sources on first use
"""

import importlib
import platform
import time

import torch

print(
    "python",
    platform.python_version(),
    "torch",
    torch.__version__,
    "cuda",
    torch.version.cuda,
    "available",
    torch.cuda.is_available(),
    flush=True,
)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), flush=True)
for name in ("gsplat", "onnxruntime", "tensorrt", "onnx", "numba", "rclpy"):
    try:
        mod = importlib.import_module(name)
        extra = mod.get_available_providers() if name == "onnxruntime" else ""
        print(name, getattr(mod, "__version__", "?"), extra, flush=True)
    except Exception as exc:  # report and go on: each missing piece only skips its checks
        print(name, "MISSING:", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", flush=True)
try:
    from gsplat import rasterization

    t0 = time.perf_counter()
    d = "cuda"
    out, alpha, _ = rasterization(
        torch.tensor([[0.0, 0.0, 2.0]], device=d),
        torch.tensor([[1.0, 0, 0, 0]], device=d),
        torch.full((1, 3), 0.1, device=d),
        torch.tensor([0.5], device=d),
        torch.ones(1, 3, device=d),
        torch.eye(4, device=d)[None],
        torch.tensor([[[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]], device=d),
        16,
        16,
    )
    torch.cuda.synchronize()
    print(
        f"gsplat compile + first rasterisation: {time.perf_counter() - t0:.1f} s; centre alpha {alpha[0, 8, 8, 0].item():.3f}",
        flush=True,
    )
except Exception as exc:
    print("gsplat compile FAILED:", type(exc).__name__, exc, flush=True)
