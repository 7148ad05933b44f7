"""`python -m gssplat_ros.export onnx|tensorrt|parity|check ...`: the same tool as `gssplat export ...`.

Usage:
    python -m gssplat_ros.export onnx --checkpoint runs/a/tiny_sensor --views 4 --width 160 --height 120
    python -m gssplat_ros.export --help
"""

from __future__ import annotations

import sys

from gssplat_ros.cli import main as gssplat_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return gssplat_main(["export", *argv])


if __name__ == "__main__":
    sys.exit(main())
