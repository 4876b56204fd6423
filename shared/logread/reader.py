"""A reader of positions and lines over a log archive (shared.integrations.log_archive): it lists the hour blobs
of each unit (a service's or a subscription's folder) since its read mark, takes each blob from its checkpoint to its
last complete line, in chunks, and hands each chunk to a sink. It knows nothing of what the lines say, so every Azure
Monitor archive (gateway logs, the Activity Log) plugs into it. Each log gives the table its checkpoints and marks
live in and a name for its log lines (both keep them in Table.USAGE: the gateway logs as "usage", the Activity Log as
"audit"); the keys hold the container, so two logs never share a checkpoint.

Exactly once, although no transaction spans the checkpoint and what the sink writes: a chunk's range is written
into the checkpoint (Pending) before the sink writes, and the sink keys everything it writes by that range
(`Chunk.read`), so a range read again (after a crash, or by a run that took over a lapsed claim) lands on the same
rows. Each write of the checkpoint is under If-Match, so of two runs at once only one goes on."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from shared.domain.errors import WriteConflict
from shared.integrations.log_archive import BlobInfo, LogArchive
from shared.store.ports import StoredRow, Table, TableReader, TableWriter
from shared.store.usage_keys import checkpoint_keys, keyed, mark_keys, source, source_prefix

log = logging.getLogger("apim_inventory")
CHUNK = 4 * 1024 * 1024  # bytes read at once: memory stays bounded whatever the blob's size
# A claim outlives the longest invocation (host.json's functionTimeout, 30 minutes), so a run is dead, killed by the
# host, before another takes its blob over; renewed with every chunk. A run that died leaves a claim that lapses.
LEASE = timedelta(minutes=31)
LATE = timedelta(hours=48)  # a blob of hour H can hold records up to 48 h older, and grows a little after H
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HOUR = re.compile(r"y=(\d{4})/m=(\d\d)/d=(\d\d)/h=(\d\d)/")
_YEAR = re.compile(r"y=\d{4}/$")


def hour_of(name: str) -> datetime | None:
    """The hour a blob's name says (`…/y=2026/m=12/d=02/h=13/m=00/PT1H.json`), or None."""
    found = _HOUR.search(name)
    if found is None:
        return None
    year, month, day, hour = map(int, found.groups())
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


def generation(created: datetime) -> int:
    """A blob's creation time in microseconds since 1970: what tells a replaced blob apart."""
    return (created - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Chunk:
    """One range of one blob: whole lines, or one line longer than a chunk (`too_long`, only its head kept)."""

    blob: str
    generation: int
    start: int
    end: int
    lines: list[tuple[int, bytes]]  # (the line's offset in the blob, the line without its newline)
    at: datetime  # when the range was first taken up: the same when it is read again
    too_long: bytes | None = None

    @property
    def read(self) -> str:
        return source(self.blob, self.generation, self.start, self.end)


class Prepared(Protocol):
    @property
    def touched(self) -> frozenset[str]:
        """Where the writes will land (the sink's own tokens), for retiring this generation if the blob is replaced."""


class ChunkSink(Protocol):
    def prepare(self, chunk: Chunk) -> Prepared:
        """Parse and aggregate (no write)."""

    def commit(self, prepared: Prepared) -> None:
        """Write what was prepared, idempotently (keys from `chunk.read`): a range read again lands on the same rows."""

    def retire(self, touched: list[str], prefix: str) -> int:
        """Delete what the sink wrote for reads whose source starts with `prefix`, in the `touched` places."""


@dataclass
class ReadReport:
    units: int = 0
    blobs: int = 0  # blobs that had something new
    skipped: int = 0  # claimed by another run
    replaced: int = 0
    chunks: int = 0
    bytes: int = 0
    lines: int = 0
    too_long: int = 0


@dataclass
class _Checkpoint:
    name: str
    generation: int
    offset: int = 0
    pending: tuple[int, int] | None = None
    pending_at: datetime | None = None
    hours: list[str] = field(default_factory=list)
    pending_too_long: bool = False  # the pending range is one line longer than a chunk (whatever the chunk size is now)

    @staticmethod
    def of(row: StoredRow) -> _Checkpoint:
        e = row.entity
        pending = (int(e["PendingStart"]), int(e["PendingEnd"])) if int(e.get("PendingEnd", -1)) >= 0 else None
        return _Checkpoint(str(e["Name"]), int(e["Generation"]), int(e["Offset"]), pending, e.get("PendingAt"), json.loads(e.get("Hours") or "[]"),
                           bool(e.get("PendingTooLong")))

    def columns(self, claim_by: str, claim_until: datetime) -> dict[str, Any]:
        start, end = self.pending or (-1, -1)
        # Table Storage's integers are 32 bits unless typed: a creation time in µs is text, offsets doubles (exact to 2**53).
        return {"Name": self.name, "Generation": str(self.generation), "Offset": float(self.offset), "PendingStart": float(start),
                "PendingEnd": float(end),
                "PendingAt": self.pending_at or EPOCH, "PendingTooLong": self.pending_too_long, "Hours": json.dumps(sorted(self.hours)), "ClaimBy": claim_by,
                "ClaimUntil": claim_until}


class _Lost(Exception):
    """The checkpoint changed under this run: another run took the blob over."""


class LineReader:
    def __init__(self, archive: LogArchive, reader: TableReader, writer: TableWriter, sink: ChunkSink, clock: Callable[[], datetime],
                 *, table: Table, name: str, chunk_size: int = CHUNK, lease: timedelta = LEASE) -> None:
        self.archive, self._reader, self._writer, self._sink, self._clock = archive, reader, writer, sink, clock
        self.table, self.name = table, name  # where the checkpoints and read marks live; the log lines' prefix
        self.chunk_size, self.lease = chunk_size, lease
        self.owner = uuid.uuid4().hex  # this run's name in the claims it holds

    def run(self, now: datetime, keep: Callable[[str], bool] = lambda unit: True) -> ReadReport:
        """Read every unit `keep` accepts (a log whose units another route reads leaves them out)."""
        report = ReadReport()
        for unit in self.units():
            if keep(unit):
                report.units += 1
                self._unit(unit, now, report)
        return report

    def units(self, prefix: str = "") -> Iterator[str]:
        """The folders whose children are year folders (`y=2026/`), found by listing folder by folder."""
        children = self.archive.prefixes(prefix)
        if any(_YEAR.search(child[len(prefix):]) for child in children):
            yield prefix
            return
        for child in children:
            yield from self.units(child)

    # -- one unit ---------------------------------------------------------------------------
    def _unit(self, unit: str, now: datetime, report: ReadReport) -> None:
        mark = self._reader.get(self.table, *mark_keys(self.archive.container, unit))
        through = mark.entity["ReadThrough"] if mark else None
        start = through - LATE if through is not None else None
        oldest_open: datetime | None = None
        newest: datetime | None = None
        for info in self._listing(unit, start, now):
            hour = hour_of(info.name)
            assert hour is not None  # the listing keeps only hour blobs
            newest = hour if newest is None else max(newest, hour)
            if not self._blob(info, report) and (oldest_open is None or hour < oldest_open):
                oldest_open = hour
        # Every blob read through: the mark moves to the hour before now even when no blob is new (a quiet or deleted
        # service), so the next listing still starts LATE before now, not LATE before the service's last blob.
        quiet = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        read_through = oldest_open - timedelta(hours=1) if oldest_open is not None else max(filter(None, (newest, quiet, through)))
        if read_through is not None and (through is None or read_through > through):
            entity = keyed(mark_keys(self.archive.container, unit), {"Unit": unit, "ReadThrough": read_through})
            with contextlib.suppress(WriteConflict):  # another run moved it: the next lists from its LATE margin anyway
                self._writer.put(self.table, entity, mark.etag if mark else None)

    def _listing(self, unit: str, start: datetime | None, now: datetime) -> Iterator[BlobInfo]:
        """The unit's hour blobs from `start` (every one when None) to now, a day folder at a time."""
        if start is None:
            days = [d for y in self.archive.prefixes(unit) for m in self.archive.prefixes(y) for d in self.archive.prefixes(m)]
        else:
            first = start.replace(hour=0, minute=0, second=0, microsecond=0)
            days = [f"{unit}y={d:%Y}/m={d:%m}/d={d:%d}/" for d in _days(first, now)]
        for day in days:
            for info in self.archive.blobs(day):
                hour = hour_of(info.name)
                if hour is not None and (start is None or hour >= start.replace(minute=0, second=0, microsecond=0)):
                    yield info

    # -- one blob ----------------------------------------------------------------------------
    def _blob(self, info: BlobInfo, report: ReadReport) -> bool:
        """Read what is new in the blob. False when another run holds it (or took it over): not read through."""
        keys = checkpoint_keys(self.archive.container, info.name)
        row = self._reader.get(self.table, *keys)
        state = _Checkpoint.of(row) if row else _Checkpoint(info.name, generation(info.created))
        replaced = state.generation != generation(info.created) or info.size < state.offset
        if row and not replaced and state.pending is None and info.size == state.offset:
            return True  # read through: one point read, no write (a half-written line past the offset is claimed and looked at)
        if row and row.entity.get("ClaimBy") not in ("", self.owner) and row.entity["ClaimUntil"] > self._clock():
            report.skipped += 1
            return False
        try:
            stored = self._put(keys, state, row.etag if row else None)
            report.blobs += 1
            if replaced:
                log.info("%s: %s was replaced (created %s, %d bytes): reading it again from the start", self.name, info.name, info.created, info.size)
                self._sink.retire(state.hours, source_prefix(state.name, state.generation))
                report.replaced += 1
                state = _Checkpoint(info.name, generation(info.created))
                stored = self._put(keys, state, stored.etag)
            if state.pending is not None:
                stored = self._take(keys, state, stored, self._again(state), report)
            while state.offset < info.size:
                chunk = self._next(state, info.size)
                if chunk is None:
                    break  # a line being appended: the next read takes it
                stored = self._take(keys, state, stored, chunk, report)
            self._put(keys, state, stored.etag, release=True)
        except _Lost:  # a conflict of the sink's own rows is no lost claim: it raises
            log.info("%s: another run took %s over", self.name, info.name)
            return False
        return True

    def _put(self, keys: tuple[str, str], state: _Checkpoint, etag: str | None, *, release: bool = False) -> StoredRow:
        until = self._clock() if release else self._clock() + self.lease
        try:
            return self._writer.put(self.table, keyed(keys, state.columns("" if release else self.owner, until)), etag)
        except WriteConflict:
            raise _Lost() from None

    def _take(self, keys: tuple[str, str], state: _Checkpoint, stored: StoredRow, chunk: Chunk, report: ReadReport) -> StoredRow:
        """Pending and the places touched first, then the sink's writes, then the offset: a crash anywhere between
        leaves a pending range that the next run reads again, exactly, onto the same rows."""
        prepared = self._sink.prepare(chunk)
        state.pending, state.pending_at, state.pending_too_long = (chunk.start, chunk.end), chunk.at, chunk.too_long is not None
        state.hours = sorted(set(state.hours) | prepared.touched)
        stored = self._put(keys, state, stored.etag)
        self._sink.commit(prepared)
        state.offset, state.pending, state.pending_at, state.pending_too_long = chunk.end, None, None, False
        stored = self._put(keys, state, stored.etag)
        report.chunks += 1
        report.bytes += chunk.end - chunk.start
        report.lines += len(chunk.lines) + (chunk.too_long is not None)
        report.too_long += chunk.too_long is not None
        return stored

    def _again(self, state: _Checkpoint) -> Chunk:
        """The pending range as it was first read (an append blob's bytes never change within a generation): whole lines of
        at most one chunk of the run that wrote it, read at once, or the head of one line longer than that chunk."""
        assert state.pending is not None
        start, end = state.pending
        at = state.pending_at or self._clock()
        if state.pending_too_long:
            head = self.archive.read(state.name, start, min(200, end - start))
            return Chunk(state.name, state.generation, start, end, [], at, too_long=head)
        return _whole_lines(state.name, state.generation, start, self.archive.read(state.name, start, end - start), at)

    def _next(self, state: _Checkpoint, size: int) -> Chunk | None:
        start = state.offset
        data = self.archive.read(state.name, start, min(self.chunk_size, size - start))  # offset < size: never past the end
        cut = data.rfind(b"\n")
        if cut >= 0:
            return _whole_lines(state.name, state.generation, start, data[:cut + 1], self._clock())
        if len(data) < self.chunk_size:
            return None
        end = self._line_end(state.name, start + len(data), size)
        if end is None:
            return None
        return Chunk(state.name, state.generation, start, end, [], self._clock(), too_long=data[:200])

    def _line_end(self, name: str, at: int, size: int) -> int | None:
        """Just past the next newline from `at`, a chunk at a time; None when the line is still being written."""
        while at < size:
            data = self.archive.read(name, at, min(self.chunk_size, size - at))
            found = data.find(b"\n")
            if found >= 0:
                return at + found + 1
            at += len(data)
        return None


def _whole_lines(name: str, gen: int, start: int, data: bytes, at: datetime) -> Chunk:
    lines, position = [], start
    for line in data.split(b"\n")[:-1]:  # data ends with a newline
        if line.strip():
            lines.append((position, line.rstrip(b"\r")))
        position += len(line) + 1
    return Chunk(name, gen, start, start + len(data), lines, at)


def _days(first: datetime, last: datetime) -> Iterator[datetime]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)

