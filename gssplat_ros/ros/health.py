"""What /diagnostics says: a ROS-free account of recent events, turned into a level, a named cause and rates.

Usage:
    health = Health(window_s=10, stale_input_s=5, no_render_error_s=10)
    health.note("image")                 # image, pose, camera_info, frame (synced), keyframe, prediction, render
    health.note_drop("depth_invalid")    # a dropped frame and why
    report = health.report(window_ready=False)   # HealthReport(level, message, rates_hz, drop_fraction)

Levels follow diagnostic_msgs/DiagnosticStatus (OK 0, WARN 1, ERROR 2, STALE 3). Everything is over the last
`window_s` seconds, so a node that rendered fine an hour ago and fails now reports the failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

OK, WARN, ERROR, STALE = 0, 1, 2, 3
EVENTS = ("image", "pose", "camera_info", "frame", "keyframe", "prediction", "render")
# drop reason -> what a user should hear
_CAUSES = {
    "missing_camera_info": "camera_info missing",
    "depth_invalid": "depth invalid (NaN, zero or out of range)",
    "bad_pose": "poses invalid or outside the world box",
    "inference_error": "inference fails",
    "internal_error": "internal error",
    "missing_depth": "depth missing on keyframes",
}


@dataclass
class HealthReport:
    level: int
    message: str
    rates_hz: dict = field(default_factory=dict)  # event -> per second over the window
    drops: dict = field(default_factory=dict)  # reason -> count over the window
    drop_fraction: float = 0.0  # dropped / frames over the window


class Health:
    """Thread-safe: input callbacks, the worker and the diagnostics timer all report here."""

    def __init__(self, window_s: float = 10.0, stale_input_s: float = 5.0, no_render_error_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.window_s, self.stale_input_s, self.no_render_error_s = window_s, stale_input_s, no_render_error_s
        self.clock = clock
        self._events: deque = deque()  # (t, kind), kind an event name or "drop:<reason>"
        self._last: dict[str, float] = {}
        self._started = clock()
        self._lock = threading.Lock()

    def note(self, kind: str) -> None:
        self._add(kind)

    def note_drop(self, reason: str) -> None:
        self._add("drop:" + reason)

    def _add(self, kind: str) -> None:
        now = self.clock()
        with self._lock:
            self._events.append((now, kind))
            self._last[kind] = now
            self._trim(now)

    def _trim(self, now: float) -> None:
        horizon = now - max(self.window_s, self.no_render_error_s, self.stale_input_s)
        while self._events and self._events[0][0] < horizon:
            self._events.popleft()

    def _since(self, kind: str, now: float) -> float:
        """Seconds since the last `kind` (inf when never)."""
        t = self._last.get(kind)
        return float("inf") if t is None else now - t

    def report(self, window_ready: bool = False) -> HealthReport:
        now = self.clock()
        with self._lock:
            self._trim(now)
            recent = Counter(k for t, k in self._events if t >= now - self.window_s)
            since = {k: self._since(k, now) for k in EVENTS}
        span = max(min(self.window_s, now - self._started), 1e-3)
        rates = {k: round(recent[k] / span, 2) for k in EVENTS}
        drops = {k[5:]: n for k, n in recent.items() if k.startswith("drop:")}
        frames = recent["frame"]
        dropped = sum(drops.values())
        fraction = min(dropped / frames, 1.0) if frames else 0.0
        level, message = self._judge(now, since, recent, drops, frames, fraction, window_ready)
        return HealthReport(level, message, rates, drops, round(fraction, 3))

    def _judge(self, now, since, recent, drops, frames, fraction, window_ready) -> tuple[int, str]:
        up = now - self._started
        top = max(drops, key=drops.get) if drops else None
        cause = _CAUSES.get(top, top) if top else None
        last_input = min(since["image"], since["pose"], since["frame"])
        if last_input > self.stale_input_s:
            if last_input == float("inf"):
                return STALE, "no input received yet (image, pose)"
            return STALE, f"no input for {last_input:.0f} s"
        if since["image"] <= self.stale_input_s and since["pose"] > self.stale_input_s:
            return WARN, "no pose received: images arrive, poses do not (check the pose/odom topic and its QoS)"
        if since["pose"] <= self.stale_input_s and since["image"] > self.stale_input_s:
            return WARN, "no image received: poses arrive, images do not (check the image topic and its QoS)"
        frames_flow = since["frame"] <= self.stale_input_s
        if frames_flow and since["render"] > self.no_render_error_s and up > self.no_render_error_s:
            if not window_ready and not drops:
                return WARN, ("motion below keyframe thresholds: frames arrive but the camera has not moved "
                              "enough for a second keyframe (keyframe_translation_m / keyframe_rotation_deg)")
            why = f": {cause}" if cause else ""
            return ERROR, f"frames arrive but nothing rendered for {min(since['render'], up):.0f} s{why}"
        if since["image"] <= self.stale_input_s and not frames_flow and recent["image"] and recent["pose"]:
            return WARN, "images and poses arrive but never within the sync slop (check stamps and sync_slop_s)"
        if frames and fraction > 0.5:
            return WARN, f"{fraction:.0%} of recent frames dropped ({cause})"
        if "missing_camera_info" in drops:
            return WARN, "camera_info missing"
        if since["render"] > self.no_render_error_s:
            if not window_ready:
                return WARN, "waiting for a window (keyframes)"
            return WARN, "waiting for the first render"
        return OK, "running"
