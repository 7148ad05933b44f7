"""Load: 30 Hz input with inference slower than the input. Memory stays bounded, nothing queues,
and the newest frame is the one rendered last. 10 s in `make test`; 60 s in `make test-long`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from gssplat_ros.ros import conversions as conv  # noqa: E402
from tests.ros_harness import Harness, random_checkpoint, scene_frames  # noqa: E402

RATE_HZ = 30.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_30hz_input_with_slow_inference(tmp_path, capsys):
    run_30hz(tmp_path, capsys, 10.0)


@pytest.mark.long
def test_30hz_input_for_60s_memory_flat(tmp_path, capsys):
    run_30hz(tmp_path, capsys, 60.0)


def run_30hz(tmp_path, capsys, duration_s: float):
    ckpt = random_checkpoint(tmp_path)
    frames = scene_frames(tmp_path, frames=12, size=(160, 120))
    h = Harness({"checkpoint": ckpt, "device": "cpu", "depth_mode": "sensor", "window_size": 4, "model_width": 160,
                 "model_height": 120, "qos_profile": "reliable", "keyframe_translation_m": 0.02,
                 "keyframe_rotation_deg": 2.0, "diagnostics_period_s": 1.0})
    try:
        # warm up (first inference, numba compile), then measure
        for i in range(4):
            rgb, K, pose, depth = frames[i]
            h.publish_frame(10**9 + i * 33_000_000, rgb, K, pose, depth)
        assert h.wait_for(lambda: h.received["image"], 60)
        rss_start = rss_mib()
        t0 = time.monotonic()
        i, last_stamp, rss_mid = 4, None, None
        while time.monotonic() - t0 < duration_s:
            if rss_mid is None and time.monotonic() - t0 >= duration_s / 2:
                rss_mid = rss_mib()
            rgb, K, pose, depth = frames[i % len(frames)]
            last_stamp = 10**9 + i * 33_333_333
            h.publish_frame(last_stamp, rgb, K, pose, depth, send_info=(i % 30 == 0))
            i += 1
            time.sleep(max(0.0, t0 + (i - 4) / RATE_HZ - time.monotonic()))
        published = i - 4
        # the newest frame is processed last: its render arrives and nothing older comes after it
        assert h.wait_for(lambda: any(conv.stamp_to_ns(m.header.stamp) == last_stamp for m in h.received["image"]), 30)
        rss_end = rss_mib()
        s = h.node.stats()
        renders = s["renders_out"]
        with capsys.disabled():
            print(f"\nload: {published} frames in {duration_s:.0f} s ({published / duration_s:.1f} Hz), "
                  f"{s['frames_in']} synced, {renders} renders, {s['superseded']} superseded, "
                  f"predict p50 {s['latency_ms'].get('predict', {}).get('p50')} ms, "
                  f"RSS {rss_start:.0f} -> {rss_mid:.0f} (half-way) -> {rss_end:.0f} MiB")
        assert s["superseded"] > 0  # inference is slower than the input: stale work was replaced
        assert renders < s["frames_in"]
        assert h.node._pending is None  # one pending slot, drained
        assert rss_end - rss_start < 300, "memory grew under load"
    finally:
        h.close()
