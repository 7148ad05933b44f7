"""The built-in ApproximateSync against message_filters' documented ApproximateTimeSynchronizer cases.

Cases follow message_filters' own test_approxsync.py: pairs combine; scrambled sequences of length
N with queue size N recombine exactly; stamps further apart than the slop never combine; the queue
keeps only the newest `queue_size` messages. When message_filters is importable (a ROS install),
the same cases run against it too.
"""

import random
from types import SimpleNamespace

import pytest

from gssplat_ros.ros.sync import ApproximateSync


def msg(t_s: float, tag=None):
    sec = int(t_s)
    stamp = SimpleNamespace(sec=sec, nanosec=int(round((t_s - sec) * 1e9)))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), tag=tag)


class Builtin:
    def __init__(self, n, queue_size, slop, cb):
        self.sync = ApproximateSync(n, queue_size, slop, cb)

    def add(self, i, m):
        self.sync.add(m, i)


class MessageFilters:
    def __init__(self, n, queue_size, slop, cb):
        import message_filters
        from rclpy.time import Time

        class Mock(message_filters.SimpleFilter):
            pass

        self.inputs = [Mock() for _ in range(n)]
        self.sync = message_filters.ApproximateTimeSynchronizer(self.inputs, queue_size, slop)
        self.sync.registerCallback(cb)
        self._time = Time

    def add(self, i, m):
        self.inputs[i].signalMessage(m)


def impls():
    out = [Builtin]
    try:
        import message_filters  # noqa: F401

        out.append(MessageFilters)
    except ImportError:
        pass
    return out


@pytest.fixture(params=impls(), ids=lambda c: c.__name__)
def impl(request):
    return request.param


def test_pairs_combine(impl):
    got = []
    s = impl(2, 1, 0.1, lambda *m: got.append(m))
    for t in range(10):
        got.clear()
        a, b = msg(t), msg(t)
        s.add(0, a)
        assert got == []
        s.add(1, b)
        assert got == [(a, b)]


@pytest.mark.parametrize("n", range(1, 10))
def test_scrambled_sequences_recombine(impl, n):
    rng = random.Random(n)
    seq0, seq1 = [msg(t) for t in range(n)], [msg(t) for t in range(n)]
    got = []
    s = impl(2, n, 0.1, lambda *m: got.append(m))
    for m in rng.sample(seq0, n):
        s.add(0, m)
    assert got == []
    for m in rng.sample(seq1, n):
        s.add(1, m)
    assert {(id(a), id(b)) for a, b in got} == {(id(a), id(b)) for a, b in zip(seq0, seq1)}


def test_within_slop_combines_outside_does_not(impl):
    got = []
    s = impl(2, 10, 0.05, lambda *m: got.append(m))
    s.add(0, msg(1.0))
    s.add(1, msg(1.07))  # 70 ms apart: beyond the slop
    assert got == []
    s.add(1, msg(1.03))  # 30 ms: within
    assert len(got) == 1 and got[0][1].header.stamp.nanosec == 30_000_000


def test_nearest_candidate_wins(impl):
    got = []
    s = impl(2, 10, 0.1, lambda *m: got.append(m))
    s.add(1, msg(2.08))
    s.add(1, msg(2.01))
    s.add(0, msg(2.0))
    assert len(got) == 1 and got[0][1].header.stamp.nanosec == 10_000_000


def test_queue_drops_oldest(impl):
    got = []
    s = impl(2, 2, 0.1, lambda *m: got.append(m))
    for t in (1, 2, 3):
        s.add(0, msg(t))
    s.add(1, msg(1))  # stamp 1 was pushed out of input 0's queue
    assert got == []
    s.add(1, msg(3))
    assert len(got) == 1


def test_three_inputs(impl):
    got = []
    s = impl(3, 5, 0.05, lambda *m: got.append(m))
    s.add(0, msg(5.00))
    s.add(2, msg(5.02))
    assert got == []
    s.add(1, msg(4.99))
    assert len(got) == 1 and [m.header.stamp.sec for m in got[0]] == [5, 4, 5]
