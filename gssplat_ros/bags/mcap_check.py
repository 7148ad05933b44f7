"""MCAP integrity: verify the CRCs a file carries, find truncation, add CRCs to our bags, salvage damaged ones.

Usage:
    report = scan_mcap("bag/bag.mcap")          # McapReport: chunks, CRCs checked, damage (kind, byte offset)
    if not report.ok: print(report.describe())
    seal_mcap_crcs("out/out.mcap")              # fill the CRC fields rosbags' writer leaves at 0

MCAP has three checksums: one per chunk (of its uncompressed records), one of the whole data section (in the
DataEnd record) and one of the summary (in the Footer); 0 means "not computed". rosbags checks only the
chunk one while reading and writes none, so a flipped bit in a bag written by us went unnoticed. The top-level
record walk is written here because the `mcap` library's StreamReader stops at the first problem without
saying at which byte offset; decompression, CRC checks of chunks and record parsing are the library's.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import breakup_chunk, get_chunk_data_stream

from gssplat_ros.errors import DataError

log = logging.getLogger(__name__)

MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_FOOTER, OP_DATA_END = 0x03, 0x04, 0x05, 0x06, 0x02, 0x0F
_RECORD_HEAD = struct.Struct("<BQ")  # opcode u8, body length u64
_CHUNK_CRC_AT = 9 + 24  # record head + message_start_time, message_end_time, uncompressed_size


@dataclass
class McapDamage:
    kind: str  # "truncated" | "crc" | "corrupt" | "not_mcap"
    offset: int  # byte offset in the file of the record (or the point) where it was found
    detail: str

    def __str__(self) -> str:
        return f"{self.detail} at byte {self.offset}"


@dataclass
class McapReport:
    path: Path
    size: int = 0
    chunks: int = 0  # chunk records whose bytes are complete
    chunks_crc_checked: int = 0  # of those, how many carried a CRC (and matched, unless in `damage`)
    messages_in_good_chunks: int = 0  # counted only when records are walked (recovery)
    data_crc_checked: bool = False
    summary_crc_checked: bool = False
    complete: bool = False  # the footer and closing magic were reached
    damage: list[McapDamage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.complete and not self.damage

    def describe(self) -> str:
        """One line: what was checked, or the first damage found."""
        if self.ok:
            crcs = [f"{self.chunks_crc_checked}/{self.chunks} chunk CRCs"]
            crcs += ["data CRC"] if self.data_crc_checked else []
            crcs += ["summary CRC"] if self.summary_crc_checked else []
            return f"{self.path}: intact ({', '.join(crcs)} verified)"
        if not self.damage:
            return f"{self.path}: ends at byte {self.size} without its footer"
        more = f" (+{len(self.damage) - 1} more)" if len(self.damage) > 1 else ""
        return f"{self.path}: {self.damage[0]}{more}"


RecordSink = Callable[[object], None]  # receives mcap Schema / Channel / Message records, in file order


def scan_mcap(path: str | Path, on_record: Optional[RecordSink] = None) -> McapReport:
    """Walk an MCAP file's records, check every CRC it carries and find where it is damaged.

    A chunk whose CRC or compression is bad is recorded and skipped (the record framing around it is
    intact, so the walk goes on); a record cut short ends the walk. With `on_record`, the Schema, Channel
    and Message records of good chunks (and of the top level) are passed to it in file order.
    """
    path = Path(path)
    report = McapReport(path=path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        report.size = f.seek(0, io.SEEK_END)
        f.seek(0)
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            report.damage.append(McapDamage("not_mcap", 0, "no MCAP magic"))
            return report
        data_crc = zlib.crc32(magic)
        offset = len(MAGIC)
        while True:
            head = f.read(_RECORD_HEAD.size)
            if len(head) < _RECORD_HEAD.size:
                report.damage.append(McapDamage("truncated", offset, "file ends without its footer (truncated)"))
                return report
            opcode, length = _RECORD_HEAD.unpack(head)
            if length > report.size - offset - len(head):
                report.damage.append(McapDamage(
                    "truncated", offset, f"record 0x{opcode:02x} of {length} bytes runs past the end (truncated)"))
                return report
            body = f.read(length)
            if opcode == OP_DATA_END:
                (expected,) = struct.unpack_from("<I", body)
                if expected:
                    report.data_crc_checked = True
                    if expected != data_crc:
                        report.damage.append(McapDamage("crc", offset, "data section CRC mismatch"))
            elif opcode == OP_CHUNK:
                _check_chunk(body, offset, report, on_record)
            elif opcode == OP_FOOTER:
                _check_footer(f, body, offset, report)
                f.seek(offset + len(head) + length)
                if f.read(len(MAGIC)) != MAGIC:
                    report.damage.append(McapDamage("truncated", offset + len(head) + length,
                                                    "closing magic missing (truncated)"))
                    return report
                report.complete = True
                return report
            elif on_record is not None and opcode in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE):
                on_record(_parse_record(opcode, body))
            data_crc = zlib.crc32(body, zlib.crc32(head, data_crc))
            offset += len(head) + length


def _parse_record(opcode: int, body: bytes):
    stream = ReadDataStream(io.BytesIO(body))
    if opcode == OP_SCHEMA:
        return Schema.read(stream)
    if opcode == OP_CHANNEL:
        return Channel.read(stream)
    return Message.read(stream, len(body))


def _check_chunk(body: bytes, offset: int, report: McapReport, on_record: Optional[RecordSink]) -> None:
    try:
        chunk = Chunk.read(ReadDataStream(io.BytesIO(body)))
        if on_record is None:
            stream, size = get_chunk_data_stream(chunk, validate_crc=True)
            records = []
        else:
            records = breakup_chunk(chunk, validate_crc=True)
    except Exception as exc:  # noqa: BLE001 - any failure to decode a chunk is damage to report, not a crash
        kind = "crc" if "crc" in type(exc).__name__.lower() else "corrupt"
        what = "CRC mismatch" if kind == "crc" else f"cannot be decoded ({type(exc).__name__}: {exc})"
        report.damage.append(McapDamage(kind, offset, f"chunk {report.chunks} {what}"))
        report.chunks += 1
        return
    report.chunks += 1
    report.chunks_crc_checked += chunk.uncompressed_crc != 0
    for record in records:
        report.messages_in_good_chunks += isinstance(record, Message)
        on_record(record)


def _check_footer(f, body: bytes, offset: int, report: McapReport) -> None:
    summary_start, _summary_offset_start, expected = struct.unpack_from("<QQI", body)
    if not expected or not summary_start:
        return
    # The summary CRC covers the summary section and the footer up to (not including) the CRC field.
    f.seek(summary_start)
    covered = f.read(offset + _RECORD_HEAD.size + 16 - summary_start)
    report.summary_crc_checked = True
    if zlib.crc32(covered) != expected:
        report.damage.append(McapDamage("crc", offset, "summary CRC mismatch"))


def seal_mcap_crcs(path: str | Path) -> None:
    """Fill the chunk, data-section and summary CRCs of an MCAP file written with them left at 0 (rosbags)."""
    path = Path(path)
    with open(path, "r+b") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise DataError(f"{path}: not an MCAP file")
        data_crc = zlib.crc32(magic)
        offset = len(MAGIC)
        while offset < size:
            f.seek(offset)
            head = f.read(_RECORD_HEAD.size)
            opcode, length = _RECORD_HEAD.unpack(head)
            body = bytearray(f.read(length))
            if opcode == OP_CHUNK:
                chunk = Chunk.read(ReadDataStream(io.BytesIO(bytes(body))))
                stream, chunk_size = get_chunk_data_stream(chunk)
                crc = zlib.crc32(stream.read(chunk_size)) or 1  # 0 would read as "no CRC"; 1-in-2^32 case
                struct.pack_into("<I", body, _CHUNK_CRC_AT - _RECORD_HEAD.size, crc)
                f.seek(offset + _CHUNK_CRC_AT)
                f.write(body[_CHUNK_CRC_AT - _RECORD_HEAD.size:_CHUNK_CRC_AT - _RECORD_HEAD.size + 4])
            elif opcode == OP_DATA_END:
                f.seek(offset + _RECORD_HEAD.size)
                f.write(struct.pack("<I", data_crc))
            elif opcode == OP_FOOTER:
                summary_start = struct.unpack_from("<Q", body)[0]
                if summary_start:
                    f.seek(summary_start)
                    covered = f.read(offset + _RECORD_HEAD.size + 16 - summary_start)
                    f.seek(offset + _RECORD_HEAD.size + 16)
                    f.write(struct.pack("<I", zlib.crc32(covered)))
                return
            data_crc = zlib.crc32(bytes(body), zlib.crc32(head, data_crc))
            offset += len(head) + length


def bag_mcap_files(bag: str | Path) -> list[Path]:
    """The .mcap files of a bag directory (sorted), or [bag] for an .mcap file; [] for other storage."""
    bag = Path(bag)
    if bag.is_dir():
        return sorted(bag.glob("*.mcap"))
    return [bag] if bag.suffix == ".mcap" else []


def damage_hint(bag: str | Path) -> Optional[str]:
    """One line saying what is wrong with a bag's MCAP files and what to do; None when they are intact."""
    for file in bag_mcap_files(bag):
        report = scan_mcap(file)
        if report.ok:
            continue
        if report.damage and report.damage[0].kind == "not_mcap":
            return f"{file}: not an MCAP file"
        return (f"{report.describe()}; `gssplat bag recover {bag} NEW_BAG` writes a new bag with every "
                "message readable up to the damage")
    return None
