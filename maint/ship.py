"""Copy a trained checkpoint to where shipped weights live, optionally with every offset gate closed.

Usage:
    python -m maint.ship runs/train/tiny_sensor/best gssplat_ros/assets/weights/tiny_sensor \\
        --close-offset-gates --semantic-reference-width 160 --note "..."

`--semantic-reference-width W` records the image width at which the model's semantic branch is most
accurate; `semantic_scales: auto` (eval, the node) then adds a pass near that width for larger windows
(gssplat_ros/runtime/semantic_scales.py). `--depth-refine-planes N` turns on the photometric depth
refinement of an estimated-depth model (N candidates; gssplat_ros/model/depth_refine.py); it has no weights.
`--colour-gaussians observed` builds the colour set from the observation by construction
(ModelConfig.colour_gaussians); the colour head's weights stay in the file, unused. `--observed-footprint-px`
and `--observed-opacity` change that set's splats (wider and fainter average a noisy camera's views).
"""

from __future__ import annotations

import argparse
import sys

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
from gssplat_ros.model.heads import close_offset_gates
from gssplat_ros.runtime.semantic_scales import REFERENCE_WIDTH_KEY


def ship(source: str, dest: str, close_gates: bool = False, note: str = "", semantic_reference_width: int = 0,
         depth_refine_planes: int | None = None, colour_gaussians: str | None = None,
         model_changes: dict | None = None) -> None:
    """Load `source`, apply the shipping edits, write `dest` (.safetensors + .json) with provenance."""
    net, cfg = load_model(source)
    if depth_refine_planes is not None:
        if cfg.depth_mode != "estimated":
            raise CheckpointError(f"{source}: --depth-refine-planes needs an estimated-depth model")
        cfg = cfg.replace(depth_refine_planes=depth_refine_planes)
        net.cfg = cfg  # the refinement reads only GSsplatNet.cfg
    changes = dict(model_changes or {})
    if colour_gaussians is not None:
        changes["colour_gaussians"] = colour_gaussians
    if changes:
        cfg = cfg.replace(**changes)
        net.cfg = cfg  # read at every forward pass; no weight changes
    if close_gates:
        close_offset_gates(net)
    extra = dict(read_checkpoint_meta(source).get("extra", {}))
    extra.update({"shipped_from": str(source), "offset_gates_closed": close_gates})
    if note:
        extra["note"] = note
    if semantic_reference_width:
        extra[REFERENCE_WIDTH_KEY] = int(semantic_reference_width)
    save_checkpoint(dest, net, cfg, extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maint.ship", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained checkpoint stem")
    parser.add_argument("dest", help="output stem")
    parser.add_argument("--close-offset-gates", action="store_true")
    parser.add_argument("--note", default="")
    parser.add_argument("--semantic-reference-width", type=int, default=0, metavar="W",
                        help="record W as the width where the semantic branch is most accurate (0: none)")
    parser.add_argument("--depth-refine-planes", type=int, default=None, metavar="N",
                        help="estimated depth: photometric refinement with N candidates (0: off)")
    parser.add_argument("--colour-gaussians", choices=["learned", "observed"], default=None,
                        help="how the colour set is built (default: as trained)")
    parser.add_argument("--observed-footprint-px", type=float, default=None, metavar="PX",
                        help="observed colour sets: the splats' std in pixels of their own view (shipped 0.2)")
    parser.add_argument("--observed-opacity", type=float, default=None, metavar="A",
                        help="observed colour sets: each splat's opacity (shipped 0.5)")
    args = parser.parse_args(argv)
    changes = {k: v for k, v in (("observed_footprint_px", args.observed_footprint_px),
                                 ("observed_opacity", args.observed_opacity)) if v is not None}
    try:
        ship(args.source, args.dest, args.close_offset_gates, args.note, args.semantic_reference_width,
             args.depth_refine_planes, args.colour_gaussians, changes)
    except (CheckpointError, ValueError) as exc:
        print(f"ship: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.dest}.safetensors / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
