#!/usr/bin/env python3
"""The top-level `export/` folder holds scripts only: the code is `gssplat_ros.export` (installed with the
package). Same tool as `gssplat export ...`.

Usage:
    python export/export_encoder.py onnx --views 4 --width 160 --height 120
    python export/export_encoder.py --help
"""

import sys

from gssplat_ros.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
