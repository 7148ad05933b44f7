"""Approximate time synchronisation with the semantics of message_filters' ApproximateTimeSynchronizer.

Usage:
    sync = make_synchronizer(node, [(Image, "image"), (PoseStamped, "pose")], qos, queue_size=10, slop_s=0.05,
                             callback=on_synced)

With message_filters importable (a ROS install) its ApproximateTimeSynchronizer is used. Otherwise
`ApproximateSync` reproduces the algorithm of message_filters' Python implementation (rclpy has
no message_filters on PyPI): each input keeps up to `queue_size` messages keyed by stamp (the
oldest dropped first); when a message arrives, for every other input the candidates within `slop`
of its stamp are taken nearest first, the first combination whose stamps span less than `slop` is
emitted, and the emitted messages leave their queues. A message never waits for a newer one that
could be closer: it is emitted as soon as a combination within `slop` exists. A message older than
everything a full queue keeps is trimmed on arrival and never emitted: `add` never raises on any
order of stamps.

Beyond message_filters: with `reset_on_jump_back_s` set, a message more than that much older than the newest
one seen on its input (a looped bag, a restarted driver) clears every queue first. Without it the queues keep
the previous loop's newest stamps and trim every new message on arrival until the new stamps catch up: no
synced set for most of a loop. make_synchronizer uses the built-in class whenever this is asked for.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Optional

from gssplat_ros.ros.conversions import stamp_to_ns


class ApproximateSync:
    """The built-in equivalent of message_filters.ApproximateTimeSynchronizer (stamps in nanoseconds)."""

    def __init__(self, num_inputs: int, queue_size: int, slop_s: float, callback: Callable[..., None],
                 reset_on_jump_back_s: Optional[float] = None):
        if num_inputs < 1 or queue_size < 1 or slop_s < 0:
            raise ValueError("ApproximateSync needs >= 1 input, queue_size >= 1 and slop >= 0")
        self.queues: list[dict[int, object]] = [{} for _ in range(num_inputs)]
        self.reset_ns = None if reset_on_jump_back_s is None else int(round(reset_on_jump_back_s * 1e9))
        self._newest: list[Optional[int]] = [None] * num_inputs
        self.resets = 0
        self.queue_size = queue_size
        self.slop_ns = int(round(slop_s * 1e9))
        self.callback = callback
        self._lock = threading.Lock()

    def add(self, msg, index: int, stamp_ns: int | None = None) -> None:
        """Add a message of input `index` (stamp from msg.header unless given)."""
        stamp = stamp_to_ns(msg.header.stamp) if stamp_ns is None else int(stamp_ns)
        matched = None
        with self._lock:
            newest = self._newest[index]
            if self.reset_ns is not None and newest is not None and stamp < newest - self.reset_ns:
                for q in self.queues:
                    q.clear()
                self._newest = [None] * len(self.queues)
                self.resets += 1
            self._newest[index] = stamp if self._newest[index] is None else max(self._newest[index], stamp)
            queue = self.queues[index]
            queue[stamp] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
            if stamp not in queue:
                # Older than every message kept (time jumped back into a full queue): trimmed on
                # arrival, so it cannot be matched; message_filters skips such a combination too.
                return
            others = [q for i, q in enumerate(self.queues) if i != index]
            candidates = []
            for q in others:
                near = sorted((abs(s - stamp), s) for s in q if abs(s - stamp) <= self.slop_ns)
                if not near:
                    return
                candidates.append([s for _, s in near])
            for combo in itertools.product(*candidates):
                stamps = list(combo)
                stamps.insert(index, stamp)
                if max(stamps) - min(stamps) < self.slop_ns:  # strict, as message_filters
                    matched = [self.queues[i].pop(s) for i, s in enumerate(stamps)]
                    break
        if matched is not None:
            self.callback(*matched)


def make_synchronizer(node, inputs: Sequence[tuple[type, str]], qos, queue_size: int, slop_s: float,
                      callback: Callable[..., None], callback_group=None,
                      guard: Callable[[Callable], Callable] = lambda fn: fn,
                      reset_on_jump_back_s: Optional[float] = None):
    """Subscribe to `inputs` [(msg_type, topic)] and call `callback(*msgs)` on approximately synced sets.

    `guard` wraps each subscription callback (the node's catches and counts exceptions);
    `reset_on_jump_back_s`: see the module docstring.
    Returns the object that keeps the subscriptions alive.
    """
    try:
        if reset_on_jump_back_s is not None:
            raise ImportError("message_filters has no reset on a jump back")
        import message_filters

        subs = [message_filters.Subscriber(node, t, topic, qos_profile=qos) for t, topic in inputs]
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop_s)
        sync.registerCallback(callback)
        return (subs, sync)
    except ImportError:
        sync = ApproximateSync(len(inputs), queue_size, slop_s, callback, reset_on_jump_back_s)
        subs = [
            node.create_subscription(t, topic, guard(lambda m, i=i: sync.add(m, i)), qos,
                                     callback_group=callback_group)
            for i, (t, topic) in enumerate(inputs)
        ]
        return (subs, sync)
