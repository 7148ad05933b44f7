"""Average the weights of several checkpoints of one network (a "model soup").

Usage:
    python -m maint.average runs/stage12/tiny_sensor runs/train/tiny_sensor_lovasz/last \\
        runs/soup/tiny_sensor [--weights 0.5 0.5] [--note "..."]

Meant for fine-tunes of one parent (for example tiny_sensor recipe step 8 continuing step 7), which sit in one basin of
the loss, so that the mean of their weights is itself a working network (Wortsman et al. 2022, "Model
soups"). The checkpoints must share the whole model config; floating-point tensors are averaged with the
given weights (default: equal), any integer buffer is taken from the first checkpoint. The result's
provenance (`averaged_from`, the weights) is recorded in its JSON; the first checkpoint's other metadata
(for example `semantic_reference_width`) is kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

import torch

from gssplat_ros.errors import CheckpointError
from gssplat_ros.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint


def average_state(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes (integer tensors: the first's)."""
    first = states[0]
    out = {}
    for key, value in first.items():
        if not value.is_floating_point():
            out[key] = value.clone()
            continue
        acc = torch.zeros_like(value, dtype=torch.float64)
        for state, w in zip(states, weights):
            acc += float(w) * state[key].to(torch.float64)
        out[key] = acc.to(value.dtype)
    return out


def average(sources: Sequence[str], dest: str, weights: Optional[Sequence[float]] = None, note: str = "") -> None:
    """Write `dest` (.safetensors + .json): the weighted mean of `sources`' weights."""
    if len(sources) < 2:
        raise CheckpointError("average needs at least two checkpoints")
    weights = [1.0 / len(sources)] * len(sources) if weights is None else [float(w) for w in weights]
    if len(weights) != len(sources):
        raise CheckpointError(f"{len(weights)} weights for {len(sources)} checkpoints")
    if abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0:
        raise CheckpointError(f"the weights must be >= 0 and sum to 1, got {weights}")
    nets, cfgs = zip(*(load_model(s) for s in sources))
    for source, cfg in zip(sources[1:], cfgs[1:]):
        differ = cfg.diff(cfgs[0])
        if differ:
            raise CheckpointError(f"{source} and {sources[0]} have different model configs ({', '.join(differ)})")
    net = nets[0]
    net.load_state_dict(average_state([n.state_dict() for n in nets], weights), strict=True)
    extra = dict(read_checkpoint_meta(sources[0]).get("extra", {}))
    extra.pop("note", None)
    extra.update({"averaged_from": [str(s) for s in sources], "average_weights": weights})
    if note:
        extra["note"] = note
    save_checkpoint(dest, net, cfgs[0], extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maint.average", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="two or more checkpoint stems, then the output stem")
    parser.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    if len(args.paths) < 3:
        parser.error("give at least two checkpoints and the output stem")
    try:
        average(args.paths[:-1], args.paths[-1], args.weights, args.note)
    except (CheckpointError, ValueError) as exc:
        print(f"average: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.paths[-1]}.safetensors / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
