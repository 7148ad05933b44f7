"""Join a sensor-depth model's network to an estimated-depth model's depth path, as one estimated-depth model.

Usage:
    python -m maint.compose gssplat_ros/assets/weights/tiny_sensor \\
        runs/prev_ship/tiny_estimated gssplat_ros/assets/weights/tiny_estimated --note "..."

The result is an ordinary estimated-depth checkpoint (no depth input) with `depth_encoder: true`: the
cascade (and the photometric refinement) runs on the estimated model's own backbone and weights, and
everything else (the shared encoder, both branches, aggregation, heads) is the sensor model's, which then
reads the estimated depth where it was trained on sensor depth. Reason: the shipped sensor network was
trained for far longer than the estimated model's branches, and on validation rooms it labels and renders
better from the refined estimated depth than the estimated model's own branches do.
No weight is changed; the two sources must share the preset's encoder widths and the class list.
"""

from __future__ import annotations

import argparse
import sys

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
from gssplat_ros.model.network import GSsplatNet

# config fields that must agree (the encoder shapes and the classes both halves were trained for)
SHARED_FIELDS = ("num_classes", "class_names", "stem_channels", "color_channels", "semantic_channels",
                 "encoder_blocks", "norm_groups", "near_m", "far_m")
# config fields taken from the estimated model (its cascade and refinement)
DEPTH_FIELDS = ("sweep_near_m", "sweep_far_m", "sweep_inverse_depth", "depth_candidates", "depth_feature_channels",
                "cost_groups", "cost_channels", "cost_unet", "photometric_cost", "depth_neighbors",
                "depth_reference_width", "depth_refine_planes", "depth_refine_range", "depth_refine_radius")


def compose(sensor: str, estimated: str, dest: str, note: str = "") -> None:
    """Write `dest` (.safetensors + .json): `sensor`'s network on `estimated`'s depth."""
    sensor_net, sensor_cfg = load_model(sensor)
    estimated_net, estimated_cfg = load_model(estimated)
    if sensor_cfg.depth_mode != "sensor" or estimated_cfg.depth_mode != "estimated":
        raise CheckpointError(f"compose needs a sensor-depth and an estimated-depth model, got {sensor_cfg.depth_mode} "
                              f"({sensor}) and {estimated_cfg.depth_mode} ({estimated})")
    if estimated_cfg.depth_encoder:
        raise CheckpointError(f"{estimated} is already composed")
    mismatched = [f for f in SHARED_FIELDS if getattr(sensor_cfg, f) != getattr(estimated_cfg, f)]
    if mismatched:
        raise CheckpointError(f"{sensor} and {estimated} differ in {', '.join(mismatched)}")
    cfg = sensor_cfg.replace(depth_mode="estimated", depth_encoder=True,
                             **{f: getattr(estimated_cfg, f) for f in DEPTH_FIELDS})
    net = GSsplatNet(cfg)
    state = dict(sensor_net.state_dict())
    state.update({f"depth_encoder.{k}": v for k, v in estimated_net.encoder.state_dict().items()
                  if not k.startswith("semantic.")})
    state.update({f"depth_net.{k}": v for k, v in estimated_net.depth_net.state_dict().items()})
    net.load_state_dict(state, strict=True)
    extra = dict(read_checkpoint_meta(sensor).get("extra", {}))  # the sensor branch's semantic_reference_width
    extra.update({"composed_from": {"network": str(sensor), "depth": str(estimated)},
                  "sensor_note": extra.pop("note", ""),
                  "depth_note": read_checkpoint_meta(estimated).get("extra", {}).get("note", "")})
    extra.pop("shipped_from", None)
    if note:
        extra["note"] = note
    save_checkpoint(dest, net, cfg, extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maint.compose", description=__doc__.splitlines()[0])
    parser.add_argument("sensor", help="sensor-depth checkpoint stem (the network)")
    parser.add_argument("estimated", help="estimated-depth checkpoint stem (the depth path)")
    parser.add_argument("dest", help="output stem")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    try:
        compose(args.sensor, args.estimated, args.dest, args.note)
    except (CheckpointError, ValueError) as exc:
        print(f"compose: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.dest}.safetensors / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
