"""The built-in ApproximateSync against message_filters' documented ApproximateTimeSynchronizer cases.

Cases follow message_filters' own test_approxsync.py: pairs combine; scrambled sequences of length
N with queue size N recombine exactly; stamps further apart than the slop never combine; the queue
keeps only the newest `queue_size` messages. When message_filters is importable (a ROS install),
the same cases run against it too.
"""

import itertools
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


def test_message_older_than_a_full_queue_is_dropped_not_raised(impl):
    """A looped bag: the pose queue is full of stamps at 2 s, then image and pose arrive at 1 s."""
    got = []
    s = impl(2, 10, 0.05, lambda *m: got.append(m))
    for k in range(10):
        s.add(1, msg(2.0 + k * 0.005))
    s.add(0, msg(1.0))
    s.add(1, msg(1.0))  # older than all ten kept poses: trimmed on arrival, never matched
    assert got == []
    s.add(0, msg(2.02))  # the queue still works afterwards
    assert len(got) == 1 and got[0][1].header.stamp.nanosec == 20_000_000


def reference_add(queues, queue_size, slop_ns, index, stamp, msg_):
    """message_filters' ApproximateTimeSynchronizer.add (rclpy message_filters 4.x, BSD), transcribed with
    stamps in nanoseconds: the oracle for the property test (message_filters itself is not on PyPI)."""
    my_queue = queues[index]
    my_queue[stamp] = msg_
    while len(my_queue) > queue_size:
        del my_queue[min(my_queue)]
    stamps = []
    for q in queues[:index] + queues[index + 1:]:
        near = sorted(((s, abs(s - stamp)) for s in q if abs(s - stamp) <= slop_ns), key=lambda x: x[1])
        if not near:
            return None
        stamps.append([s for s, _ in near])
    for combo in itertools.product(*stamps):
        combo = list(combo)
        combo.insert(index, stamp)
        if max(combo) - min(combo) < slop_ns and all(t in q for q, t in zip(queues, combo)):
            out = tuple(q[t] for q, t in zip(queues, combo))
            for q, t in zip(queues, combo):
                del q[t]
            return out
    return None


@pytest.mark.parametrize("seed", range(40))
def test_random_stamp_orders_never_raise_and_match_message_filters(seed):
    """Random interleavings of 2-3 inputs with jitter, jumps back (bag loops), duplicate stamps and queues
    small enough to overflow: the same sets as message_filters' algorithm, every set within the slop."""
    rng = random.Random(seed)
    n, queue_size, slop_s = rng.choice((2, 3)), rng.choice((1, 2, 5, 10)), rng.choice((0.005, 0.02, 0.05))
    slop_ns = int(round(slop_s * 1e9))
    got = []
    sync = ApproximateSync(n, queue_size, slop_s, lambda *m: got.append(m))
    ref_queues = [{} for _ in range(n)]
    t = 1.0
    for step in range(400):
        r = rng.random()
        if r < 0.03:
            t -= rng.uniform(0.1, 5.0)  # time jumps back
        elif r < 0.1:
            pass  # duplicate stamp
        else:
            t += rng.uniform(0.0, 0.03)
        index = rng.randrange(n)
        m = msg(max(t, 0.0) + rng.choice((0.0, 0.001, -0.002)), tag=step)
        stamp = m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
        before = len(got)
        sync.add(m, index)
        expected = reference_add(ref_queues, queue_size, slop_ns, index, stamp, m)
        emitted = got[before:]
        assert emitted == ([expected] if expected is not None else []), f"step {step}"
        assert all(len(q) <= queue_size for q in sync.queues)
        for combo in emitted:
            ns = [c.header.stamp.sec * 1_000_000_000 + c.header.stamp.nanosec for c in combo]
            assert max(ns) - min(ns) < slop_ns
    tags = [c.tag for combo in got for c in combo]
    assert len(tags) == len(set(tags))  # nothing emitted twice


def test_reset_on_jump_back_clears_the_previous_loop():
    """A looped bag: without the reset, the full queues keep the old loop's stamps and trim every new
    message until the stamps catch up; with it, the first new pair is emitted at once."""
    for reset, expect_pairs in ((None, 0), (1.0, 1)):
        got = []
        s = ApproximateSync(2, 10, 0.05, lambda *m, got=got: got.append(m), reset_on_jump_back_s=reset)
        for k in range(20):
            s.add(msg(3.0 + k * 0.005), 1)
        s.add(msg(3.5), 0)  # unmatched image of the old loop
        got.clear()
        s.add(msg(1.0), 1)
        s.add(msg(1.0), 0)
        assert len(got) == expect_pairs
    small = ApproximateSync(2, 10, 0.05, lambda *m: None, reset_on_jump_back_s=1.0)
    small.add(msg(2.0), 1)
    small.add(msg(1.5), 1)  # out of order by less than the threshold: kept, no reset
    assert small.resets == 0 and len(small.queues[1]) == 2
