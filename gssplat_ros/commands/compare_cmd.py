"""`gssplat compare BASE.json OTHER.json [--metric miou psnr ...]`: two eval results, image by image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.evaluate import INTERVAL_KEYS

    parser.add_argument("base", type=Path, help="JSON written by gssplat eval --json (the reference)")
    parser.add_argument("other", type=Path, help="JSON written by gssplat eval --json (the candidate)")
    parser.add_argument("--metric", nargs="+", default=list(INTERVAL_KEYS) + ["total_accuracy"],
                        help="per-image metrics to compare")


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None


def run(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.eval_compare import compare_results, format_comparison

    rows = compare_results(_load(args.base), _load(args.other), args.metric)
    print(format_comparison(rows, args.base.stem, args.other.stem))
    return 0
