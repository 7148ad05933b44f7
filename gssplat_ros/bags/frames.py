"""Read a rosbag2 bag as a stream of synced pipeline Frames (image + camera_info + pose [+ depth]), no rclpy.

Usage:
    with open_bag("scene_bag") as reader:           # opened here (DataError on a bad bag); `with` closes
        topics = resolve_topics(reader, FrameTopics(), depth="auto")
        for item in iter_frames(reader, topics, slop_ns=20_000_000):
            pipe.add_frame(item.frame)

Sync: each image is matched, by header stamp, to the nearest pose and depth within `slop_ns` (exact
stamps match at any slop) and to the nearest camera_info (intrinsics are static, so any age is used
when none is within the slop). Memory stays bounded: only recent messages are buffered.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError

from gssplat_ros.bags import msgs
from gssplat_ros.bags.mcap_check import bag_mcap_files, damage_hint
from gssplat_ros.bags.scene_bag import TOPIC_CAMERA_INFO, TOPIC_DEPTH, TOPIC_IMAGE, TOPIC_POSE, _resize_nearest
from gssplat_ros.errors import DataError
from gssplat_ros.window import Frame

log = logging.getLogger(__name__)

POSE_TYPES = (
    msgs.POSE_STAMPED,
    "geometry_msgs/msg/PoseWithCovarianceStamped",
    "nav_msgs/msg/Odometry",
)


@dataclass
class FrameTopics:
    image: str = TOPIC_IMAGE
    camera_info: str = TOPIC_CAMERA_INFO
    pose: str = TOPIC_POSE  # PoseStamped, PoseWithCovarianceStamped or Odometry: the camera optical frame in world
    depth: Optional[str] = TOPIC_DEPTH  # None = do not read depth


@dataclass
class SyncedFrame:
    frame: Frame
    camera_frame_id: str  # the image's header.frame_id
    world_frame_id: str  # the pose's header.frame_id


@dataclass
class SyncStats:
    images: int = 0
    frames: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count


class BagReader(Reader):
    """A rosbags Reader that `open_bag` has already opened; `with` closes it."""

    def __enter__(self) -> BagReader:
        if not self.is_open:
            self.open()
        return self


def open_bag(path: str | Path, verify: bool = True) -> BagReader:
    """An opened rosbags Reader for a bag directory, .mcap or .db3 file; raises DataError with one clear line.

    Args:
        verify: first check every CRC an MCAP file carries and that it is complete (one read of the
            file): a corrupted chunk or a truncated file is refused, naming the file and byte offset,
            with the `gssplat bag recover` command that salvages it, instead of being half processed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").exists():
        if bag_mcap_files(path):  # a recorder killed before closing leaves no metadata.yaml
            raise DataError(damage_hint(path) or f"{path}: no metadata.yaml (the recording was not closed?); "
                            f"`gssplat bag recover {path} NEW_BAG` writes a complete bag from its MCAP files")
        raise DataError(f"{path} is not a rosbag2 bag: no metadata.yaml")
    if verify and (hint := damage_hint(path)):
        raise DataError(hint)
    try:
        reader = BagReader(path)
        reader.open()
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        raise DataError(damage_hint(path) or f"cannot open bag {path}: {exc}") from None
    return reader


def _topic_types(reader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def resolve_topics(reader, topics: FrameTopics, depth: str = "auto") -> FrameTopics:
    """Check the bag has the topics with the right types; returns topics with depth None when unused.

    Args:
        depth: "sensor" (depth topic required), "estimated" (ignored) or "auto" (used when present).

    Raises:
        DataError: naming the missing topic and listing what the bag has.
    """
    types = _topic_types(reader)
    listing = ", ".join(f"{t} ({ty})" for t, ty in sorted(types.items())) or "no topics"
    wanted = [("image", topics.image, (msgs.IMAGE,)), ("camera_info", topics.camera_info, (msgs.CAMERA_INFO,)),
              ("pose", topics.pose, POSE_TYPES)]
    if depth == "sensor" and topics.depth:
        wanted.append(("depth", topics.depth, (msgs.IMAGE,)))
    for role, topic, accepted in wanted:
        if topic not in types:
            raise DataError(f"bag has no {role} topic {topic!r}; it has: {listing}")
        if types[topic] not in accepted:
            raise DataError(f"{role} topic {topic!r} is {types[topic]}, expected {' or '.join(accepted)}")
    if depth == "sensor" and not topics.depth:
        raise DataError("depth mode 'sensor' needs a depth topic")
    use_depth = depth != "estimated" and topics.depth is not None and types.get(topics.depth) == msgs.IMAGE
    if depth == "auto" and topics.depth and not use_depth:
        log.info("no depth topic %s in the bag: frames carry no depth", topics.depth)
    return replace(topics, depth=topics.depth if use_depth else None)


class _Buffer:
    """Recent (stamp_ns, value) pairs of one topic."""

    def __init__(self, maxlen: int):
        self.items: deque = deque(maxlen=maxlen)
        self.latest: Optional[int] = None

    def add(self, stamp: int, value) -> None:
        self.items.append((stamp, value))
        self.latest = stamp if self.latest is None else max(self.latest, stamp)

    def nearest(self, stamp: int, slop_ns: Optional[int]):
        if not self.items:
            return None
        s, v = min(self.items, key=lambda item: abs(item[0] - stamp))
        return v if slop_ns is None or abs(s - stamp) <= slop_ns else None


def _stamp(header, log_time: int) -> int:
    stamp = msgs.stamp_ns_of(header)
    return stamp if stamp > 0 else log_time  # some drivers leave stamps empty: fall back to record time


def _pose_of(msg, msgtype: str):
    if msgtype == msgs.POSE_STAMPED:
        return msg.pose
    return msg.pose.pose  # PoseWithCovarianceStamped, Odometry


def iter_frames(
    reader,
    topics: FrameTopics,
    slop_ns: int = 20_000_000,
    stats: Optional[SyncStats] = None,
    max_pending: int = 64,
) -> Iterator[SyncedFrame]:
    """Yield synced frames in image-stamp order of arrival; drops are counted in `stats.dropped`."""
    stats = stats if stats is not None else SyncStats()
    types = _topic_types(reader)
    wanted = {topics.image, topics.camera_info, topics.pose} | ({topics.depth} if topics.depth else set())
    conns = [c for c in reader.connections if c.topic in wanted]
    infos, poses = _Buffer(256), _Buffer(4096)
    depths = _Buffer(max_pending) if topics.depth else None
    pending: deque = deque()  # (stamp, Image msg)
    warned_info = False

    def ready(stamp: int) -> bool:
        horizon = stamp + slop_ns
        if poses.latest is None or poses.latest < horizon or infos.latest is None:
            return False
        return depths is None or (depths.latest is not None and depths.latest >= horizon)

    def resolve(stamp: int, image_msg) -> Optional[SyncedFrame]:
        nonlocal warned_info
        pose = poses.nearest(stamp, slop_ns)
        if pose is None:
            stats.dropped["no_pose"] += 1
            return None
        info = infos.nearest(stamp, slop_ns)
        if info is None:
            info = infos.nearest(stamp, None)
            if info is None:
                stats.dropped["no_camera_info"] += 1
                return None
            if not warned_info:
                log.warning("no camera_info within the slop of image %d: using the nearest one", stamp)
                warned_info = True
        depth = None
        if depths is not None:
            depth_msg = depths.nearest(stamp, slop_ns)
            if depth_msg is None:
                stats.dropped["no_depth"] += 1
                return None
        try:
            image = msgs.image_from_msg(image_msg)
            h, w = image.shape[:2]
            K = msgs.K_from_camera_info(info)
            if info.width and info.height and (info.width, info.height) != (w, h):
                K = K.copy()
                K[0] *= w / info.width
                K[1] *= h / info.height
                K[2] = [0.0, 0.0, 1.0]
            if depths is not None:
                depth = _resize_nearest(msgs.depth_from_msg(depth_msg), (w, h))
        except DataError as exc:
            stats.dropped["bad_message"] += 1
            log.warning("dropping image %d: %s", stamp, exc)
            return None
        world_from_cam, world_frame = pose
        frame = Frame(stamp_ns=stamp, image=image, K=K, world_from_cam=world_from_cam, depth=depth)
        return SyncedFrame(frame, image_msg.header.frame_id, world_frame)

    def flush(force: bool) -> Iterator[SyncedFrame]:
        while pending and (force or len(pending) > max_pending or ready(pending[0][0])):
            out = resolve(*pending.popleft())
            if out is not None:
                stats.frames += 1
                yield out

    for conn, log_time, raw in reader.messages(connections=conns):
        try:
            msg = msgs.deserialize(bytes(raw), conn.msgtype)
        except Exception as exc:  # a corrupt record: count it, keep going
            stats.dropped["undecodable"] += 1
            log.warning("cannot decode a %s message on %s: %s", conn.msgtype, conn.topic, exc)
            continue
        stamp = _stamp(msg.header, log_time)
        if conn.topic == topics.image:
            stats.images += 1
            pending.append((stamp, msg))
        elif conn.topic == topics.pose:
            m = msgs.matrix_from_pose_msg(_pose_of(msg, types[conn.topic]))
            poses.add(stamp, (m, msg.header.frame_id))
        elif conn.topic == topics.camera_info:
            infos.add(stamp, msg)
        elif depths is not None and conn.topic == topics.depth:
            depths.add(stamp, msg)
        yield from flush(force=False)
    yield from flush(force=True)
