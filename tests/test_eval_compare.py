"""`gssplat compare`: paired differences between two eval results, intervals over scenes, clear errors."""

import json
import subprocess
import sys

import pytest

from gssplat_ros.eval_compare import compare_results, format_comparison


def result(values: dict, key="miou"):
    """An eval result with one image per (scene, target) -> value."""
    return {"images": [{"scene": s, "target": t, key: v, "depth_absrel": 1 - v} for (s, t), v in values.items()]}


BASE = {(f"scene{i}", t): 0.5 + 0.05 * i + 0.01 * t for i in range(6) for t in (2, 22)}


def test_a_constant_gain_is_exact_and_wins_every_scene():
    other = {q: v + 0.02 for q, v in BASE.items()}
    rows = {r["metric"]: r for r in compare_results(result(BASE), result(other), ("miou", "depth_absrel"))}
    miou = rows["miou"]
    assert miou["images"] == 12 and miou["scenes"] == 6
    assert miou["difference"] == pytest.approx(0.02) and miou["ci95"] == pytest.approx([0.02, 0.02])
    assert miou["scenes_won"] == 6
    # depth error fell by 0.02 everywhere: lower is better, so the candidate wins every scene there too
    assert rows["depth_absrel"]["difference"] == pytest.approx(-0.02) and rows["depth_absrel"]["scenes_won"] == 6


def test_a_mixed_change_straddles_zero_and_only_shared_images_count():
    other = {(s, t): v + (0.03 if int(s[-1]) % 2 else -0.03) for (s, t), v in BASE.items()}  # half the scenes gain
    other[("elsewhere", 2)] = 0.9  # not in the base result: ignored
    (row,) = compare_results(result(BASE), result(other), ("miou",))
    low, high = row["ci95"]
    assert row["images"] == 12 and low < 0 < high and row["scenes_won"] == 3
    assert "scenes other wins" in format_comparison([row]) and "| miou | 12 |" in format_comparison([row])


def test_results_without_images_or_without_shared_queries_are_clear_errors():
    with pytest.raises(ValueError, match="per-image"):
        compare_results({"metrics": {"miou": 0.7}}, result(BASE))
    with pytest.raises(ValueError, match="share no query"):
        compare_results(result(BASE), result({("other", 2): 0.4}))


def test_cli_prints_the_table_and_fails_in_one_line(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(result(BASE)))
    (tmp_path / "b.json").write_text(json.dumps(result({q: v + 0.01 for q, v in BASE.items()})))
    cmd = [sys.executable, "-m", "gssplat_ros.cli", "compare"]
    r = subprocess.run(cmd + [tmp_path / "a.json", tmp_path / "b.json", "--metric", "miou"], capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "| miou | 12 | " in r.stdout and "+0.0100" in r.stdout and "6/6" in r.stdout
    r = subprocess.run(cmd + [tmp_path / "a.json", tmp_path / "missing.json"], capture_output=True, text=True)
    assert r.returncode == 1 and "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
