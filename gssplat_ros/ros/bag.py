"""Play a rosbag2 bag over DDS with rclpy, for machines without `ros2 bag play`.

Usage:
    stats = play_bag("scene_bag", PlayConfig(rate=2.0, loop=False, clock=True))

Messages are published as the bag stores them (CDR bytes, `Publisher.publish(bytes)`), so no field is
converted and the bytes on the wire are exactly the recorded ones; each topic's rclpy type is imported
only to create its publisher. Topics whose message package is not installed (tf2_msgs is not on PyPI)
are skipped with a warning. Header stamps are left as recorded: with --loop they jump back at each
restart, and so does /clock.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from gssplat_ros.bags import msgs
from gssplat_ros.bags.frames import open_bag
from gssplat_ros.errors import DataError

log = logging.getLogger(__name__)

CLOCK_PERIOD_S = 0.025  # /clock is published at 40 Hz between messages (ros2 bag play's default)
MIN_PASS_S = 0.1  # with --loop, a pass lasts at least this long


@dataclass
class PlayConfig:
    rate: float = 1.0  # playback speed factor (2.0 = twice as fast)
    loop: bool = False  # restart at the end (stamps jump back)
    clock: bool = False  # publish /clock (rosgraph_msgs/Clock) with the bag time
    topics: Optional[Sequence[str]] = None  # only these topics; None = all
    qos: str = "reliable"  # reliable | sensor_data (best effort: reliable subscribers will not hear it)
    delay_s: float = 0.5  # wait before the first message so subscribers discover the publishers
    prefix: str = ""  # prepended to every topic name (e.g. "/test_ns")
    max_loops: int = 0  # with loop: stop after this many passes; 0 = forever


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)  # topic -> messages
    skipped_topics: dict[str, str] = field(default_factory=dict)  # topic -> reason
    passes: int = 0
    interrupted: bool = False


def import_msg_type(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class; raises ImportError when its package is missing."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise ImportError(f"malformed message type {msgtype!r}")
    pkg, sub, name = parts
    module = importlib.import_module(f"{pkg}.{sub}")
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"{pkg}.{sub} has no {name}") from None


def _qos(kind: str, topic: str):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if topic.endswith("/tf_static"):
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if topic.endswith("/tf"):
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    if kind == "sensor_data":
        return qos_profile_sensor_data
    if kind == "reliable":
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    raise DataError(f"qos must be reliable or sensor_data, got {kind!r}")


def _join(prefix: str, topic: str) -> str:
    return (prefix.rstrip("/") + "/" + topic.lstrip("/")) if prefix else topic


def play_bag(
    bag: str | Path,
    cfg: Optional[PlayConfig] = None,
    context=None,
    stop: Optional[threading.Event] = None,
) -> PlayStats:
    """Publish a bag's messages with their recorded timing (scaled by `cfg.rate`).

    Args:
        context: an initialised rclpy Context to use; None = create one here (no signal handlers:
            Ctrl-C raises KeyboardInterrupt, which ends playback cleanly) and shut it down at the end.
        stop: set it to end playback early (checked between messages and while waiting).

    Raises:
        DataError: missing bag, no playable topic, bad options.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    cfg = cfg or PlayConfig()
    if cfg.rate <= 0:
        raise DataError(f"rate must be positive, got {cfg.rate}")
    _qos(cfg.qos, "")  # validate before opening anything
    stats = PlayStats()
    reader = open_bag(bag)
    own_context = context is None
    node = None
    try:
        conns = [c for c in reader.connections if cfg.topics is None or c.topic in cfg.topics]
        if cfg.topics is not None:
            missing = sorted(set(cfg.topics) - {c.topic for c in reader.connections})
            if missing:
                raise DataError(f"bag has no topic {', '.join(missing)}; it has: "
                                f"{', '.join(sorted({c.topic for c in reader.connections}))}")
        if own_context:
            context = Context()
            rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node(f"gssplat_bag_play_{os.getpid()}", context=context)
        pubs, playable = {}, []
        for conn in conns:
            if conn.topic in stats.skipped_topics:
                continue
            if conn.ext.serialization_format != "cdr":
                stats.skipped_topics[conn.topic] = f"serialization {conn.ext.serialization_format!r} is not cdr"
                continue
            if conn.topic not in pubs:
                try:
                    msg_type = import_msg_type(conn.msgtype)
                except ImportError as exc:
                    stats.skipped_topics[conn.topic] = f"{conn.msgtype} is not installed ({exc})"
                    continue
                qos = _qos(cfg.qos, conn.topic)
                pubs[conn.topic] = node.create_publisher(msg_type, _join(cfg.prefix, conn.topic), qos)
            playable.append(conn)
        for topic, reason in stats.skipped_topics.items():
            log.warning("skipping %s: %s", topic, reason)
        if not playable:
            why = "; ".join(f"{t}: {r}" for t, r in stats.skipped_topics.items())
            raise DataError(f"nothing to play in {bag}: {why or 'no messages on the selected topics'}")
        clock_pub = None
        if cfg.clock:
            try:
                clock_type = import_msg_type(msgs.CLOCK)
                from rclpy.qos import QoSProfile, ReliabilityPolicy

                clock_pub = node.create_publisher(clock_type, _join(cfg.prefix, "/clock"),
                                                  QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
            except ImportError:
                log.warning("rosgraph_msgs is not installed: no /clock")
        _play_loop(reader, playable, pubs, clock_pub, cfg, context, stop, stats)
    except (KeyboardInterrupt, ExternalShutdownException):
        stats.interrupted = True
    finally:
        if node is not None:
            node.destroy_node()
        if own_context and context is not None:
            rclpy.try_shutdown(context=context)
        reader.close()
    return stats


def _play_loop(reader, playable, pubs, clock_pub, cfg: PlayConfig, context, stop, stats: PlayStats) -> None:
    def stopped() -> bool:
        if (stop is not None and stop.is_set()) or not context.ok():
            stats.interrupted = stats.interrupted or not context.ok()
            return True
        return False

    def publish_clock(bag_ns: int) -> None:
        if clock_pub is not None:
            msg = clock_pub.msg_type()
            msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
            clock_pub.publish(msg)

    def wait_until(deadline: float, bag_at) -> bool:
        """Sleep until `deadline` (monotonic), ticking /clock; False when asked to stop."""
        while True:
            if stopped():
                return False
            now = time.monotonic()
            if now >= deadline:
                return True
            publish_clock(bag_at(now))
            time.sleep(min(deadline - now, CLOCK_PERIOD_S))

    t0_bag: Optional[int] = None
    last_bag_ns = 0
    pass_start: Optional[float] = None
    while True:
        # A bag with (almost) no duration must not loop at full CPU speed.
        if pass_start is not None and not wait_until(pass_start + MIN_PASS_S, lambda now, _t=last_bag_ns: _t):
            return
        start_wall = time.monotonic() + (cfg.delay_s if pass_start is None else 0.0)
        pass_start = start_wall
        for conn, log_time, raw in reader.messages(connections=playable):
            if t0_bag is None:
                t0_bag = log_time
            bag0 = t0_bag

            def bag_at(now: float, _start=start_wall, _b0=bag0) -> int:
                return _b0 + max(0, int((now - _start) * cfg.rate * 1e9))

            target = start_wall + (log_time - t0_bag) / 1e9 / cfg.rate
            if not wait_until(target, bag_at):
                return
            publish_clock(log_time)
            last_bag_ns = log_time
            pubs[conn.topic].publish(bytes(raw))
            stats.published[conn.topic] = stats.published.get(conn.topic, 0) + 1
        stats.passes += 1
        if not cfg.loop or (cfg.max_loops and stats.passes >= cfg.max_loops) or stopped():
            return
        log.info("bag finished (pass %d): restarting; stamps jump back", stats.passes)
