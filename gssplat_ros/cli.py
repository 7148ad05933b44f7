"""The `gssplat` command: one entry point with subcommands.

Usage:
    gssplat render SCENE.ply --camera CAMERA.json --out OUT.png
    gssplat bench render
    gssplat --help

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their subcommand runs, so `gssplat --help` stays fast and a missing
optional dependency breaks only the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, one-line help). Nested groups (bench, data, bag, export) dispatch inside their module.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "render": ("gssplat_ros.commands.render_cmd", "render a PLY scene from a camera (CAMERA.json)"),
    "data": ("gssplat_ros.commands.data_cmd", "generate procedural training scenes"),
    "train": ("gssplat_ros.commands.train_cmd", "train the GSsplat network from a YAML config"),
    "eval": ("gssplat_ros.commands.eval_cmd", "evaluate a checkpoint (PSNR, SSIM, mIoU, speed)"),
    "compare": ("gssplat_ros.commands.compare_cmd", "compare two eval results image by image (paired)"),
    "bench": ("gssplat_ros.commands.bench_cmd", "benchmarks: render, encoder, node"),
    "export": ("gssplat_ros.commands.export_cmd", "export the encoder to ONNX or TensorRT"),
    "bag": ("gssplat_ros.commands.bag_cmd", "write, play, check and recover rosbag2 bags"),
    "process": ("gssplat_ros.commands.process_cmd", "run the pipeline offline over a bag"),
    "save-map": ("gssplat_ros.commands.save_map_cmd", "ask a running node to save its fused map"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gssplat", description="GSsplat: generalizable semantic Gaussian splatting tools."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Find the command name first, so its module adds its own options before parsing (and --help shows them).
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        if command is None and (not argv or argv[0] in ("-h", "--help")):
            parser.print_help()
            return 0
        parser.parse_args(argv)  # argparse reports the missing or unknown command and exits 2
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    sub_parser = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001
    module.add_arguments(sub_parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("gssplat: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, never a traceback (unless --debug)
        if args.debug:
            raise
        print(f"gssplat {command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
