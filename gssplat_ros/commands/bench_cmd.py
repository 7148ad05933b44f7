"""`gssplat bench render|encoder|node`: speed and memory tables (never timed tests).

Each benchmark module exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "render": ("gssplat_ros.bench.render", "rasteriser: ms per frame by N x size, forward and backward"),
    "encoder": ("gssplat_ros.bench.encoder", "encoder: ms per window by V x size and runtime"),
    "node": ("gssplat_ros.bench.node", "node end-to-end latency over DDS"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_bench_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError as exc:  # an optional dependency of that benchmark is missing
            p.set_defaults(_bench_error=f"benchmark '{name}' is unavailable: {exc}")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_error", None):
        raise RuntimeError(args._bench_error)
    return importlib.import_module(args._bench_module).run(args)
