"""`gssplat train --config FILE.yaml [--override key=value ...] [--resume]`.

Also runnable under torchrun: `torchrun --nproc_per_node 2 -m gssplat_ros.commands.train_cmd --config ...`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training YAML (a serialised TrainConfig)")
    # extend: `--override a=1 --override b=2` keeps both (a plain nargs list would keep only the last)
    parser.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="e.g. optim.steps=100 data.root=scenes/ (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last")


def run(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.train import main_cli

    metrics = main_cli(args.config, args.override, args.resume)
    if metrics:
        print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":  # torchrun entry point
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="gssplat train")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
