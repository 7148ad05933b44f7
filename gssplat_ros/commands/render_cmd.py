"""`gssplat render SCENE.ply --camera CAMERA.json --out OUT.png [--depth-out D.npy] [--backend ...]`.

Gaussians with NaN / inf fields (or fields that overflow float32, e.g. a log scale of 100) are skipped
with a warning that counts them; a PLY where none is left, or an empty one, is an error (exit 1).

CAMERA.json: {"width": W, "height": H, "fx", "fy", "cx", "cy", "camera_to_world": [[4 rows of 4]]}.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scene", type=Path, help="3DGS PLY file")
    parser.add_argument("--camera", type=Path, required=True, help="CAMERA.json")
    parser.add_argument("--out", type=Path, required=True, help="output RGB PNG")
    parser.add_argument("--depth-out", type=Path, help="write expected depth [H, W] float32 metres (.npy)")
    parser.add_argument("--labels-out", type=Path, help="write the argmax label PNG (PLY with sem_* fields)")
    parser.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    parser.add_argument("--background", type=float, nargs=3, metavar=("R", "G", "B"), help="0-1, default black")
    parser.add_argument("--colour", choices=["observed", "learned"], default="learned",
                        help="observed: render as the shipped models' colour sets are (sub-pixel splats: no "
                             "screen-space dilation, normalised by alpha, cracks filled), e.g. a map the node "
                             "saved; learned: classic 3DGS blending (default)")


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.cameras import Cameras
    from gssplat_ros.errors import GssplatError
    from gssplat_ros.ply import load_ply
    from gssplat_ros.render import RenderSettings, colour_settings, render

    gaussians = load_ply(args.scene)  # drops (and warns about) non-finite Gaussians; raises if none is left
    if len(gaussians) == 0:
        raise GssplatError(f"{args.scene} holds no Gaussians: nothing to render")
    cameras = Cameras.from_json(args.camera)
    if not args.out.parent.exists():
        raise GssplatError(f"output directory does not exist: {args.out.parent}")
    settings = RenderSettings(backend=args.backend, background=tuple(args.background) if args.background else None)
    out = render(gaussians, cameras, colour_settings(settings, args.colour == "observed"))
    rgb = (out.rgb[0].clamp(0, 1) * 255 + 0.5).byte().numpy()
    Image.fromarray(rgb).save(args.out)
    if args.depth_out:
        np.save(args.depth_out, out.depth[0].numpy().astype(np.float32))
    if args.labels_out:
        if out.features is None:
            raise GssplatError(f"{args.scene} has no semantic fields (sem_*): cannot write labels")
        labels = out.features[0].argmax(-1).to(dtype=out.features.dtype)
        labels = np.where(out.alpha[0].numpy() >= 0.5, labels.numpy(), 255).astype(np.uint8)
        Image.fromarray(labels).save(args.labels_out)
    print(f"rendered {len(gaussians)} Gaussians at {cameras.width}x{cameras.height} with '{out.backend}' -> {args.out}")
    return 0
