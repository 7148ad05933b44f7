"""Paired comparison of two `gssplat eval` results: `gssplat compare BASE.json OTHER.json`.

Two checkpoints evaluated on the same queries differ far less between themselves than either figure
varies across scenes, so comparing their means alone wastes most of what the data says. This pairs the
images by (scene, target frame), takes OTHER - BASE per image and gives the mean difference with a 95%
interval from a bootstrap over scenes (evaluate.scene_bootstrap_interval), plus how many scenes OTHER
wins. An interval that excludes 0 is a difference the scenes support; one that straddles 0 is not.

Usage:
    from gssplat_ros.eval_compare import compare_results, format_comparison
    rows = compare_results(json.load(open("a.json")), json.load(open("b.json")), keys=("miou", "psnr"))
    print(format_comparison(rows))
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gssplat_ros.evaluate import INTERVAL_KEYS, scene_bootstrap_interval

# Metrics where lower is better (the "wins" column counts scenes where OTHER is lower).
LOWER_IS_BETTER = ("depth_absrel", "render_depth_absrel")


def _images_by_query(result: dict, label: str) -> dict[tuple[str, int], dict]:
    images = result.get("images")
    if not images:
        raise ValueError(f"{label} has no per-image results (written by a gssplat eval older than the comparison; "
                         "evaluate it again)")  # fmt: skip
    return {(str(m["scene"]), int(m["target"])): m for m in images}


def compare_results(base: dict, other: dict, keys: Iterable[str] = INTERVAL_KEYS) -> list[dict]:
    """One row per metric both results have: base / other means and the paired difference over common images."""
    a, b = _images_by_query(base, "the first result"), _images_by_query(other, "the second result")
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two results share no query image (same --data, --split, --views and size?)")
    rows = []
    for key in keys:
        pairs = [(q, a[q].get(key, np.nan), b[q].get(key, np.nan)) for q in common]
        pairs = [(q, x, y) for q, x, y in pairs if np.isfinite(x) and np.isfinite(y)]
        if not pairs:
            continue
        diffs = [{"scene": q[0], key: y - x} for q, x, y in pairs]
        per_scene: dict[str, list[float]] = {}
        for d in diffs:
            per_scene.setdefault(d["scene"], []).append(d[key])
        sign = -1.0 if key in LOWER_IS_BETTER else 1.0
        rows.append({
            "metric": key,
            "images": len(pairs),
            "scenes": len(per_scene),
            "base": float(np.mean([x for _, x, _ in pairs])),
            "other": float(np.mean([y for _, _, y in pairs])),
            "difference": float(np.mean([d[key] for d in diffs])),
            "ci95": scene_bootstrap_interval(diffs, key),
            "scenes_won": sum(1 for v in per_scene.values() if sign * np.mean(v) > 0),
        })  # fmt: skip
    return rows


def format_comparison(rows: list[dict], base_name: str = "base", other_name: str = "other") -> str:
    lines = [f"paired over the query images both results have; difference = {other_name} - {base_name}, 95% "
             "interval from a bootstrap over scenes",
             f"| metric | images | {base_name} | {other_name} | difference | 95% interval | scenes {other_name} wins |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        low, high = r["ci95"]
        lines.append(f"| {r['metric']} | {r['images']} | {r['base']:.4f} | {r['other']:.4f} | {r['difference']:+.4f} "
                     f"| {low:+.4f} to {high:+.4f} | {r['scenes_won']}/{r['scenes']} |")  # fmt: skip
    return "\n".join(lines)
