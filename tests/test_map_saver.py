"""Map saving rules (ros/map_saver.py, ROS-free): confined to map_save_dir, never overwrites what is not our PLY,
never follows links or blocks on FIFOs, atomic under kill -9, one save at a time."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gssplat_ros.map_saver import MapSaver, SaveRefused, check_file_name, resolve_target
from gssplat_ros.ply import load_ply, save_ply
from tests.test_core_types import random_gaussians

ROOT = Path(__file__).resolve().parents[1]


def gaussians(n=64):
    g = random_gaussians(n, degree=0, features=4)
    g.opacities.clamp_(0.01, 0.99)
    return g


def test_saves_inside_the_directory_and_overwrites_its_own_ply(tmp_path):
    saver = MapSaver(str(tmp_path))
    ok, message = saver.start(gaussians(10), "map.ply").wait(30)
    assert ok and str(tmp_path / "map.ply") in message and len(load_ply(tmp_path / "map.ply")) == 10
    ok, _ = saver.start(gaussians(20), "map.ply").wait(30)  # our own PLY: replaced
    assert ok and len(load_ply(tmp_path / "map.ply")) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.ply"]  # no temp file left behind


def test_existing_text_file_is_not_overwritten(tmp_path):
    victim = tmp_path / "notes.ply"
    victim.write_text("my notes\n")
    job = MapSaver(str(tmp_path)).start(gaussians(), "notes.ply")
    assert job.refused and "not a Gaussian PLY" in job.refused
    assert victim.read_text() == "my notes\n"


def test_symlink_is_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "map.ply").symlink_to(outside)
    job = MapSaver(str(maps)).start(gaussians(), "map.ply")
    assert job.refused and "symbolic link" in job.refused
    assert outside.read_text() == "keep me"


def test_symlink_to_our_own_ply_is_not_followed_either(tmp_path):
    real = tmp_path / "real.ply"
    save_ply(real, gaussians(5))
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "map.ply").symlink_to(real)
    with pytest.raises(SaveRefused, match="symbolic link"):
        resolve_target(str(maps), "map.ply")


@pytest.mark.parametrize("name", ["../map.ply", "/tmp/map.ply", "sub/map.ply", "map.txt", ".ply", "", "..", "a\0.ply"])
def test_only_bare_ply_names(tmp_path, name):
    with pytest.raises(ValueError):
        check_file_name(name)
    job = MapSaver(str(tmp_path)).start(gaussians(), name)
    assert job.refused
    assert list(tmp_path.iterdir()) == []


def test_relative_save_dir_is_resolved_once_and_saving_is_off_without_it(tmp_path, monkeypatch):
    assert "map saving is off" in MapSaver("").start(gaussians(), "map.ply").refused
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maps").mkdir()
    saver = MapSaver("maps")
    ok, message = saver.start(gaussians(), "map.ply").wait(30)
    assert ok and str(tmp_path / "maps" / "map.ply") in message


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "map.ply")
    result = {}
    t = threading.Thread(target=lambda: result.update(job=MapSaver(str(tmp_path)).start(gaussians(), "map.ply")),
                         daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "a save request blocked on a FIFO"
    assert "not a regular file" in result["job"].refused


def test_a_second_request_while_one_runs_is_refused(tmp_path, monkeypatch):
    import gssplat_ros.map_saver as ms

    release = threading.Event()
    real = ms.write_atomically
    monkeypatch.setattr(ms, "write_atomically", lambda target, g: (release.wait(10), real(target, g)))
    saver = MapSaver(str(tmp_path))
    first = saver.start(gaussians(), "map.ply")
    second = saver.start(gaussians(), "other.ply")
    assert not first.refused and "still running" in second.refused
    release.set()
    assert first.wait(30)[0]
    assert saver.start(gaussians(), "other.ply").wait(30)[0]  # free again once the first one ended


def test_empty_map_is_refused(tmp_path):
    assert "empty" in MapSaver(str(tmp_path)).start(None, "map.ply").refused


WRITER = """
import sys, torch
from gssplat_ros.map_saver import MapSaver
from tests.test_core_types import random_gaussians
g = random_gaussians(int(sys.argv[2]), degree=0, features=20)
g.opacities.clamp_(0.01, 0.99)
saver = MapSaver(sys.argv[1])
print("ready", flush=True)
while True:
    ok, message = saver.start(g, "map.ply").wait()
    assert ok, message
"""


@pytest.mark.slow  # seconds of real processes: left out of make test-fast
def test_kill_9_during_saves_leaves_a_whole_map(tmp_path):
    """A writer saves a ~20 MB map over and over; SIGKILL at random moments never leaves the target partial."""
    n_old, n_new = 1000, 150_000
    saver = MapSaver(str(tmp_path))
    assert saver.start(gaussians(n_old), "map.ply").wait(30)[0]
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n_new)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(load_ply(tmp_path / "map.ply")) in (n_old, n_new)
