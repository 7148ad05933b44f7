"""`gssplat export onnx|tensorrt|parity|check`: encoder export, engine build and checks (also `python -m gssplat_ros.export`).

Usage:
    gssplat export onnx --checkpoint runs/a/tiny_sensor --views 4 --width 160 --height 120 [--fp16] [--slim]
    gssplat export onnx --views 4 --width 160 --height 120 --scatter host --int8       # onnxruntime-CPU int8 pair
    gssplat export tensorrt --onnx runs/a/tiny_sensor_v4_160x120_fp32.onnx --fp16 --timing-cache trt.cache
    gssplat export parity --checkpoint runs/a/tiny_sensor --views 2 --width 64 --height 48 [--fp16]
    gssplat export check runs/a/tiny_sensor_v4_160x120_fp32.onnx        # TensorRT 10.3 operator check

`--checkpoint` defaults to the shipped weights of `--depth-mode`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _shape_args(p: argparse.ArgumentParser, views: int = 4, width: int = 160, height: int = 120) -> None:
    p.add_argument("--checkpoint", default="", help="checkpoint stem, .safetensors or .json (default: shipped)")
    p.add_argument("--depth-mode", default="sensor", choices=("sensor", "estimated"),
                   help="picks the shipped weights when --checkpoint is not given")  # fmt: skip
    p.add_argument("--views", type=int, default=views, help=f"V, views per window (default {views})")
    p.add_argument("--width", type=int, default=width, help=f"W in pixels, multiple of 4 (default {width})")
    p.add_argument("--height", type=int, default=height, help=f"H in pixels, multiple of 4 (default {height})")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="half precision trunk, fp32 geometry (default fp32)")
    precision.add_argument("--int8", action="store_true",
                           help="int8 convolutions calibrated on generated scenes, for onnxruntime on the CPU "
                                "(with --scatter host; gssplat_ros/export/quantize.py)")  # fmt: skip


def _scatter_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scatter", default="elements", choices=("elements", "host"),
                   help="elements: one portable graph pooling voxels with ScatterElements (TensorRT, CUDA); "
                        "host: two graphs for onnxruntime on the CPU, the voxel pooling between them on the host "
                        "(numba, else torch; <file> and <file stem>_gaussians.onnx); default elements")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="export_target", metavar="TARGET", required=True)

    p = sub.add_parser("onnx", help="export the encoder to ONNX for one V x H x W", description="ONNX export")
    _shape_args(p)
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18; TensorRT 10.3 reads 9..20)")
    p.add_argument("--slim", action="store_true", help="simplify with onnxslim")
    p.add_argument("--out", default=None, help="output file or directory (default: beside the checkpoint; . for shipped weights)")
    _scatter_arg(p)

    p = sub.add_parser("tensorrt", help="build a TensorRT engine", description="TensorRT engine build")
    _shape_args(p)
    p.add_argument("--onnx", default=None, help="exported ONNX file (default: export from --checkpoint first)")
    p.add_argument("--out", default=None, help="engine file (default: the ONNX path with .engine)")
    p.add_argument("--workspace-mb", type=int, default=2048, help="workspace memory pool limit (MiB)")
    p.add_argument("--timing-cache", default=None, help="timing cache file, read and updated")
    p.add_argument("--optimization-level", type=int, default=None, help="builder optimisation level 0..5")

    p = sub.add_parser("parity", help="onnxruntime vs torch on a generated scene", description="parity check")
    _shape_args(p, views=2, width=64, height=48)
    p.add_argument("--onnx", default=None, help="exported ONNX file (default: export to a temporary file)")
    _scatter_arg(p)

    p = sub.add_parser("check", help="check an ONNX file against TensorRT 10.3's operators", description="op check")
    p.add_argument("onnx", help="ONNX file")


def run(args: argparse.Namespace) -> int:
    return {"onnx": _run_onnx, "tensorrt": _run_tensorrt, "parity": _run_parity, "check": _run_check}[args.export_target](args)


def _precision(args) -> str:
    return "fp16" if args.fp16 else "int8" if getattr(args, "int8", False) else "fp32"


def _run_onnx(args) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.export.onnx_export import export_checkpoint
    from gssplat_ros.export.trt_ops import check_model

    result = export_checkpoint(
        args.checkpoint, args.out, args.views, args.width, args.height, _precision(args), args.opset, args.slim,
        args.depth_mode, args.scatter,
    )  # fmt: skip
    print(f"wrote {result.path} ({result.num_nodes} nodes, {result.seconds:.1f} s)")
    if args.scatter == "host":
        # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
        from gssplat_ros.export.onnx_export import depth_graph_path, gaussians_graph_path

        print(f"  and its second graph {gaussians_graph_path(result.path)} (onnxruntime on the CPU only; "
              "TensorRT takes --scatter elements)")  # fmt: skip
        if depth_graph_path(result.path).exists():
            print(f"  and the depth graph before them {depth_graph_path(result.path)} (the depth refinement "
                  "runs on the host between it and the first)")  # fmt: skip
        return 0
    problems = check_model(result.path)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(f"  {p}")
    print(f"TensorRT 10.3 operator check: {'OK' if not errors else f'{len(errors)} problem(s)'}")
    return 0


def _run_check(args) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.export.trt_ops import TRT_VERSION, check_model

    problems = check_model(Path(args.onnx))
    for p in problems:
        print(p)
    errors = [p for p in problems if p.severity == "error"]
    print(f"{args.onnx}: {'compatible with' if not errors else 'NOT compatible with'} TensorRT {TRT_VERSION}")
    return 1 if errors else 0


def _run_tensorrt(args) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.export.tensorrt_build import BuildConfig, build_engine, require_tensorrt

    if args.int8:
        raise ValueError("--int8 is for onnxruntime on the CPU (gssplat export onnx --scatter host --int8); "
                         "TensorRT engines build in fp32 or --fp16")  # fmt: skip
    require_tensorrt()  # the one clear error before any export work
    onnx_path = Path(args.onnx) if args.onnx else None
    if onnx_path is None:
        # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
        from gssplat_ros.export.onnx_export import export_checkpoint

        onnx_path = export_checkpoint(
            args.checkpoint, None, args.views, args.width, args.height, "fp32", depth_mode=args.depth_mode
        ).path
    out = Path(args.out) if args.out else onnx_path.with_name(onnx_path.stem.replace("_fp32", "") + f"_{_precision(args)}.engine")
    cfg = BuildConfig(_precision(args), args.workspace_mb, args.timing_cache, optimization_level=args.optimization_level)
    result = build_engine(onnx_path, out, cfg)
    for w in result.warnings:
        print(f"  {w}")
    print(f"wrote {result.path} (TensorRT {result.tensorrt_version}, {result.precision}, {result.seconds:.1f} s)")
    return 0


def _run_parity(args) -> int:
    import tempfile

    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.export.onnx_export import export_onnx
    from gssplat_ros.export.parity import run_parity
    from gssplat_ros.model.checkpoint import load_model
    from gssplat_ros.weights import checkpoint_stem, default_checkpoint

    stem = checkpoint_stem(args.checkpoint) if args.checkpoint else default_checkpoint(args.depth_mode)
    net, _ = load_model(stem)
    precision = _precision(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.onnx) if args.onnx else Path(tmp) / "encoder.onnx"
        if not args.onnx:
            export_onnx(net, path, args.views, args.width, args.height, precision, scatter=args.scatter)
        report = run_parity(net, path, args.views, args.width, args.height, precision)
    print(report.table())
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    from gssplat_ros.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
