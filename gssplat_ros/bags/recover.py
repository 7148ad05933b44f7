"""`gssplat bag recover`: every readable message of a damaged MCAP bag copied into a new, valid bag.

Usage:
    stats = recover_bag("cut_bag", "fixed_bag")  # every message up to the damage -> a new valid rosbag2 bag
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mcap.records import Channel, Message, Schema

from gssplat_ros.bags import msgs
from gssplat_ros.bags.mcap_check import McapReport, bag_mcap_files, scan_mcap
from gssplat_ros.bags.scene_bag import _qos_reliable, open_writer
from gssplat_ros.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class RecoverStats:
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # topic -> messages written
    reports: list[McapReport] = field(default_factory=list)  # one per input file


def recover_bag(src: str | Path, dst: str | Path) -> RecoverStats:
    """Copy every readable message of a damaged (truncated or corrupted) MCAP bag into a new rosbag2 bag.

    Complete chunks with good CRCs are kept; a chunk that fails its CRC is skipped; a file cut short is
    read up to the last complete record. The new bag (mcap, written with CRCs) has a fresh metadata.yaml,
    which a recorder killed mid-run never wrote. Topics keep their message definitions; offered QoS
    profiles are not carried over (reliable, volatile).

    Raises:
        DataError: no MCAP file in `src`, `dst` exists, or nothing readable.
    """
    files = bag_mcap_files(src)
    if not Path(src).exists():
        raise DataError(f"bag not found: {src}")
    if not files:
        raise DataError(f"{src}: no .mcap file to recover (only MCAP bags can be recovered)")
    stats = RecoverStats()
    writer = open_writer(Path(dst), "mcap")
    conns: dict[tuple[str, str], object] = {}
    try:
        for file in files:
            schemas: dict[int, Schema] = {}
            channels: dict[int, object] = {}

            def on_record(record, schemas=schemas, channels=channels) -> None:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = _connection(writer, conns, record, schemas.get(record.schema_id),
                                                      msgs.typestore(), _qos_reliable)
                elif isinstance(record, Message) and channels.get(record.channel_id) is not None:
                    conn = channels[record.channel_id]
                    writer.write(conn, record.log_time, record.data)
                    stats.messages += 1
                    stats.topics[conn.topic] = stats.topics.get(conn.topic, 0) + 1

            stats.reports.append(scan_mcap(file, on_record))
    finally:
        writer.close()
    if stats.messages == 0:
        shutil.rmtree(dst, ignore_errors=True)  # we created it; leave no empty bag behind
        raise DataError(f"no readable message in {src}: {stats.reports[0].describe()}")
    return stats


def _connection(writer, conns: dict, channel: Channel, schema: Optional[Schema], typestore, qos_reliable):
    """The output connection for an input channel (shared by channels with the same topic and type)."""
    if schema is None:
        log.warning("skipping topic %s: its schema was lost", channel.topic)
        return None
    key = (channel.topic, schema.name)
    if key not in conns:
        rihs01 = channel.metadata.get("topic_type_hash") or ""
        if not rihs01:
            try:
                rihs01 = typestore.hash_rihs01(schema.name)
            except Exception:  # noqa: BLE001 - a type we do not know: rosbag2 readers do not need the hash
                rihs01 = "RIHS01_" + "0" * 64
        conns[key] = writer.add_connection(
            channel.topic, schema.name, msgdef=schema.data.decode(), rihs01=rihs01,
            serialization_format=channel.message_encoding, offered_qos_profiles=[qos_reliable(10)])
    return conns[key]
