"""The diagnostics state machine (ros/health.py, ROS-free) with a fake clock."""

from gssplat_ros.ros.health import ERROR, OK, STALE, WARN, Health


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def run(health, clock, seconds, rate_hz, kinds, drop=None):
    for _ in range(int(seconds * rate_hz)):
        clock.t += 1.0 / rate_hz
        for k in kinds:
            health.note(k)
        if drop:
            health.note_drop(drop)


def make():
    clock = Clock()
    return Health(window_s=10, stale_input_s=5, no_render_error_s=10, clock=clock), clock


def test_stale_before_any_input_and_after_input_stops():
    h, c = make()
    assert h.report().level == STALE and "no input" in h.report().message
    run(h, c, 3, 30, ["image", "pose", "frame", "render"])
    assert h.report(True).level == OK
    c.t += 6
    r = h.report(True)
    assert r.level == STALE and "no input for 6 s" in r.message


def test_error_when_frames_arrive_and_every_one_fails():
    h, c = make()
    run(h, c, 12, 10, ["image", "pose", "frame"], drop="inference_error")
    r = h.report(window_ready=True)
    assert r.level == ERROR and "nothing rendered" in r.message and "inference fails" in r.message


def test_ok_turns_to_error_when_renders_stop_later():
    h, c = make()
    run(h, c, 5, 10, ["image", "pose", "frame", "render"])
    assert h.report(True).level == OK
    run(h, c, 11, 10, ["image", "pose", "frame"], drop="inference_error")
    assert h.report(True).level == ERROR


def test_no_pose_received_is_named():
    h, c = make()
    run(h, c, 3, 30, ["image"])
    r = h.report()
    assert r.level == WARN and "no pose received" in r.message


def test_motion_below_keyframe_thresholds_is_named():
    h, c = make()
    run(h, c, 12, 30, ["image", "pose", "frame"])
    r = h.report(window_ready=False)
    assert r.level == WARN and "motion below keyframe thresholds" in r.message


def test_more_than_half_dropped_warns_with_the_cause_and_rates_are_windowed():
    h, c = make()
    run(h, c, 20, 10, ["image", "pose", "frame", "render"])  # 10 Hz for 20 s
    assert h.report(True).rates_hz["render"] == 10.0
    for i in range(100):  # 10 s at 10 Hz, 4 of 5 frames dropped for a missing camera_info
        c.t += 0.1
        h.note("image"), h.note("pose"), h.note("frame")
        if i % 5:
            h.note_drop("missing_camera_info")
        else:
            h.note("render")
    r = h.report(True)
    assert r.level == WARN and "camera_info missing" in r.message and r.drop_fraction > 0.5
    assert r.rates_hz["render"] < 10.0  # the recent window, not the lifetime mean
