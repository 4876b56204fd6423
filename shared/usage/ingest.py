"""The gateway logs' ingest: the reader's chunks (reader.py) tallied (tally.py) and written as usage rows
(shared/store/usage_keys.py): per read range and (service, kind, hour), its ids' counts packed into a few entities
(usage_rows.packs), a row per bad line, the last-use rows (maximum and minimum, at most one write an hour per row) and the services' tracking
rows; then the roll-ups and retention (rollup.py)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.errors import WriteConflict
from shared.domain.times import parse_time
from shared.domain.usage import COUNTED_KINDS, SERVICE_TOTAL, TOO_LONG, Counters, service_of_folder
from shared.integrations.log_archive import LogArchive
from shared.logread.reader import LEASE, Chunk, LineReader, Prepared, ReadReport
from shared.logs import USAGE as USAGE_RUN
from shared.logs import Line
from shared.store.ports import Entity, StoredRow, Table, TableDeleter, TableReader, TableWriter
from shared.store.usage_keys import (
    bad_line_keys,
    hourly_keys,
    hourly_partition,
    keyed,
    last_use_keys,
    partition_rows,
    read_of,
    tracking_keys,
)
from shared.store.usage_rows import TRANSACTION_CHARS, counters_of, packed_columns, packs, unpack
from shared.usage.pending_uses import PendingUses
from shared.usage.read_ahead import ReadAhead
from shared.usage.rollup import RETRIES, RollupReport, Rollups, UsageRetention
from shared.usage.tally import Key, Rejected, tally

log = logging.getLogger("apim_inventory")
LAST_USE = ("FirstSeenUsedAt", "LastUsedAt")
KNOWN_ROWS = 100_000  # last-use and tracking rows remembered between runs of one process
# Bytes read at once (the reader's CHUNK is 4 MiB): every chunk costs its checkpoint's two writes and a transaction per
# day partition it counts, so a busy hour's blob (20 MB) read in 16 MiB chunks costs 2 of them, not 5. Memory stays
# bounded: a chunk and its lines, about 40 MB, whatever the blob's size.
INGEST_CHUNK = 16 * 1024 * 1024
MAX_SPANS = 50_000  # last uses held before a flush: bounded memory on an archive that names more resources


@functools.lru_cache(maxsize=4096)
def hour_start(hour: str) -> datetime:
    """`2026-12-02T13` as the hour's first moment, UTC."""
    return datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]), tzinfo=timezone.utc)


def moment(text: str) -> datetime:
    return parse_time(text, "time")


def widened(old: Entity | None, first: str, last: str, first_column: str, last_column: str | None) -> tuple[str, str] | None:
    """A last-use or tracking row's minimum and maximum with `first` and `last` taken in, or None when neither moves
    to another hour (then the row is not rewritten: any order of reads gives the same row, a write an hour)."""
    if old is None:
        return first, last
    old_first = old.get(first_column) or first
    old_last = (old.get(last_column) or "") if last_column else ""
    new_first, new_last = min(old_first, first), max(old_last, last)
    return None if new_first[:13] >= old_first[:13] and new_last[:13] <= old_last[:13] else (new_first, new_last)


@dataclass(frozen=True)
class Known:
    """A last-use or tracking row as this process last read or wrote it (times as ISO text), with its ETag."""

    row: StoredRow


@dataclass(frozen=True)
class PreparedChunk:
    chunk: Chunk
    counts: dict[Key, Counters]
    rejected: list[Rejected]
    records: int
    touched: frozenset[str]


@dataclass
class IngestReport:
    blobs: int = 0
    bytes: int = 0
    records: int = 0
    bad_lines: int = 0
    contributions: int = 0
    skipped: int = 0
    replaced: int = 0
    seconds: float = 0.0
    rollup: RollupReport = field(default_factory=RollupReport)


class UsageSink:
    """What the reader hands each chunk to: the writes of the gateway logs' rows."""

    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, container: str,
                 known: dict[tuple[str, str], Known] | None = None, *, clock: Callable[[], datetime] | None = None,
                 lease: timedelta = LEASE, counts: Callable[[str], bool] = lambda service: True) -> None:
        self._reader, self._writer, self._deleter, self.container = reader, writer, deleter, container
        self._counts = counts  # the services this route counts: another route counts the others (GATEWAY_LOGS_STREAMED_SERVICES)
        self.not_counted = 0  # records of services another route counts
        self._known = {} if known is None else known
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.lease = lease
        self.records = self.bad_lines = self.contributions = self.entities = 0
        # Last uses are written once a run (flush), not once a chunk: a backlog of many hours moves a busy resource's
        # row once, not once an hour. A crash before the flush would lose them, so the hours this run counted are
        # first named in its pending row (`uw`), and a later run re-merges a dead run's hours (recover).
        self._spans: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._pending = PendingUses(reader, writer, deleter, self._clock, lease)

    def prepare(self, chunk: Chunk) -> PreparedChunk:
        if chunk.too_long is not None:
            excerpt = chunk.too_long.decode("utf-8", "replace")[:200]
            found = Rejected(chunk.start, TOO_LONG, f"a line of {chunk.end - chunk.start} bytes, longer than a chunk", excerpt)
            return PreparedChunk(chunk, {}, [found], 0, frozenset())
        counted = tally(chunk.lines)
        others = {key for key in counted.counts if not self._counts(key[0])}
        if others:
            left = sum(counted.counts[key].total for key in others if key[1] == SERVICE_TOTAL)  # a record's one service total
            self.not_counted += left
            counted.records -= left
            counted.counts = {key: value for key, value in counted.counts.items() if key not in others}
        # (hour, service) pairs, not partitions: 49 hours of late records stay a few kilobytes in the checkpoint
        touched = frozenset(f"{hour}/{service}" for service, _, hour, _ in counted.counts)
        return PreparedChunk(chunk, counted.counts, counted.rejected, counted.records, touched)

    def commit(self, prepared: Prepared) -> None:
        assert isinstance(prepared, PreparedChunk)
        chunk = prepared.chunk
        rows = packed_rows(prepared.counts, chunk.read)
        for bad in prepared.rejected:
            log.warning(Line(USAGE_RUN, {"badLine": f"{chunk.blob}@{bad.offset}", "reason": bad.reason, "message": bad.message}))
            rows.append(keyed(bad_line_keys(self.container, chunk.at, chunk.read, bad.offset),
                              {"Container": self.container, "Blob": chunk.blob, "Offset": float(bad.offset), "Reason": bad.reason,
                               "Message": bad.message, "Excerpt": bad.excerpt, "SeenAt": chunk.at}))
        self._pending.name(prepared.touched)  # before the counts: a crash after them leaves their hours named
        for group in _transactions(rows):
            self._writer.upsert(Table.USAGE, group)
        self.records += prepared.records
        self.bad_lines += len(prepared.rejected)
        self.contributions += len(prepared.counts)
        self.entities += len(rows)
        self._span(prepared.counts)
        if len(self._spans) >= MAX_SPANS:
            self.flush()
        self._tracking(prepared.counts, chunk.at)

    def flush(self) -> None:
        """The last uses counted since the last flush, written; then this run's pending row is let go."""
        spans, self._spans = self._spans, {}
        self._last_uses(spans)
        self._pending.release()

    def recover(self) -> int:
        """The last uses of runs that died before their flush, merged again from the counts of the hours they named."""
        recovered = 0
        for days, row in self._pending.dead():
            spans: dict[tuple[str, str, str], tuple[str, str]] = {}
            for entity in self._pending.counted(days):
                for resource, counters in unpack(entity) if "Counts" in entity else [(str(entity["Id"]), counters_of(entity))]:
                    _widen(spans, (str(entity["Service"]), str(entity["Kind"]), resource), counters.first_at, counters.last_at)
            self._last_uses(spans)
            self._pending.forget(row)
            recovered += 1
        return recovered

    def _span(self, counts: dict[Key, Counters]) -> None:
        for (service, kind, _, resource), counters in counts.items():
            if kind in COUNTED_KINDS:
                _widen(self._spans, (service, kind, resource), counters.first_at, counters.last_at)

    def retire(self, touched: list[str], prefix: str) -> int:
        retired = 0
        days = sorted({(service, hour[:10]) for hour, service in (place.split("/", 1) for place in touched)})
        for service, day in days:
            query = partition_rows(hourly_partition(service, hour_start(f"{day}T00")))
            for page in self._reader.scan(query, select=("PartitionKey", "RowKey")):
                gone = [row for row in page if read_of(row.entity["RowKey"]).startswith(prefix)]
                retired += self._deleter.delete_rows(Table.USAGE, gone) if gone else 0
        return retired

    # -- maxima and minima ---------------------------------------------------------------------
    def _last_uses(self, spans: dict[tuple[str, str, str], tuple[str, str]]) -> None:
        """The last-use rows that move, written in transactions of up to 100 per partition: a row this process knows
        under its ETag, a row it has never seen as an insert. A transaction whose condition fails (a row another
        process wrote, or one this process has not read) falls back to a read and a merge per row, so a busy archive
        costs a request per 100 resources a run, not one or two per resource."""
        batches: dict[str, list[tuple[tuple[str, str], Entity, str | None, tuple[str, str], dict[str, Any]]]] = {}
        for (service, kind, resource), (first, last) in spans.items():
            keys, columns = last_use_keys(service, kind, resource), {"Service": service, "Kind": kind, "Id": resource}
            known = self._known.get(keys)
            moved = widened(known.row.entity if known else None, first, last, *LAST_USE)
            if moved is None:
                continue
            old = known.row.entity if known else {}
            entity = keyed(keys, {**old, **columns, LAST_USE[0]: moment(moved[0]), LAST_USE[1]: moment(moved[1])})
            batches.setdefault(keys[0], []).append((keys, entity, known.row.etag if known else None, (first, last), columns))
        for batch in (group[at:at + 100] for group in batches.values() for at in range(0, len(group), 100)):
            try:
                stored = self._writer.put_all(Table.USAGE, [(entity, etag) for _, entity, etag, _, _ in batch])
            except WriteConflict:
                for keys, _, _, (first, last), columns in batch:
                    self._merge(keys, first, last, *LAST_USE, columns)
                continue
            for (keys, *_), row in zip(batch, stored, strict=True):
                self._remember(keys, self._stored(row, *LAST_USE))

    def _tracking(self, counts: dict[Key, Counters], read_at: datetime) -> None:
        firsts: dict[str, str] = {}
        for (service, _, _, _), counters in counts.items():
            firsts[service] = min(firsts.get(service, counters.first_at), counters.first_at)
        for service, first in firsts.items():
            self._merge(tracking_keys(service), first, None, "FirstRecordAt", None, {"Service": service}, read_at)

    def _merge(self, keys: tuple[str, str], first: str, last: str | None, first_column: str, last_column: str | None,
               columns: dict[str, Any], read_at: datetime | None = None) -> None:
        """The row's minimum and maximum, rewritten only when one moves to another hour: any order of reads gives
        the same row, and a busy resource costs a write an hour, not one a chunk."""
        known = self._known.get(keys)
        if known is not None and widened(known.row.entity, first, last or "", first_column, last_column) is None:
            return
        row = known.row if known is not None else None  # this process's own last write: tried first, read only on a conflict
        for attempt in range(RETRIES):
            if attempt or known is None:
                row = self._stored(self._reader.get(Table.USAGE, *keys), first_column, last_column)
            moved = widened(row.entity if row else None, first, last or "", first_column, last_column)
            if row and moved is None:
                self._remember(keys, row)
                return
            assert moved is not None
            entity: Entity = {**(row.entity if row else {}), **columns, first_column: moment(moved[0])}
            if last_column:
                entity[last_column] = moment(moved[1])
            if read_at is not None:
                entity.setdefault("FirstReadAt", read_at)
            try:
                stored = self._writer.put(Table.USAGE, keyed(keys, entity), row.etag if row else None)
            except WriteConflict:
                continue
            self._remember(keys, self._stored(stored, first_column, last_column))
            return
        raise WriteConflict(f"{keys} kept changing: {RETRIES} merges lost")

    @staticmethod
    def _stored(row: StoredRow | None, first_column: str, last_column: str | None) -> StoredRow | None:
        """The row with its times as the domain's ISO text, to compare with the records' times."""
        if row is None:
            return None
        entity = {**row.entity, first_column: _text(row.entity.get(first_column))}
        if last_column:
            entity[last_column] = _text(row.entity.get(last_column))
        return StoredRow(entity, row.etag)

    def _remember(self, keys: tuple[str, str], row: StoredRow | None) -> None:
        if row is None:
            return
        if len(self._known) >= KNOWN_ROWS:
            self._known.clear()  # bounded memory: a busy archive names more resources than this only rarely
        self._known[keys] = Known(row)


def _widen(spans: dict[tuple[str, str, str], tuple[str, str]], key: tuple[str, str, str], first: str, last: str) -> None:
    old = spans.get(key)
    spans[key] = (first, last) if old is None else (min(old[0], first), max(old[1], last))


def packed_rows(counts: dict[Key, Counters], read: str) -> list[Entity]:
    """One read's counts as packed contributions: per (service, kind, hour), its ids in as few entities as hold them
    (usage_rows.packs), keyed by the read, so the same range read again lands on the same entities."""
    by_place: dict[tuple[str, str, str], dict[str, Counters]] = {}
    for (service, kind, hour, resource), counters in counts.items():
        by_place.setdefault((service, kind, hour), {})[resource] = counters
    rows = []
    for (service, kind, hour), ids in by_place.items():
        for pack, (text, held) in enumerate(packs(ids)):
            columns = {"Service": service, "Kind": kind, "Hour": f"{hour}:00:00Z", "Ids": held, **packed_columns(text)}
            rows.append(keyed(hourly_keys(service, kind, hour_start(hour), read, pack), columns))
    return rows


def _transactions(rows: list[Entity]) -> Iterator[list[Entity]]:
    """The rows in groups of at most TRANSACTION_CHARS of packed text (a transaction holds 4 MiB), by partition."""
    group: list[Entity] = []
    size = 0
    for row in sorted(rows, key=lambda r: (r["PartitionKey"], r["RowKey"])):
        chars = sum(len(v) for k, v in row.items() if k.startswith("Counts") and isinstance(v, str))
        if group and size + chars > TRANSACTION_CHARS:
            yield group
            group, size = [], 0
        group.append(row)
        size += chars
    if group:
        yield group


def _text(value: object) -> str:
    """A stored time as the domain's ISO text (to the second, Z)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


class GatewayLogs:
    """`ingest(now)`: one run of the `gateway_logs` timer (and `apim-inventory usage ingest`)."""

    def __init__(self, archive: LogArchive | None, reader: TableReader, writer: TableWriter, deleter: TableDeleter,
                 clock: Callable[[], datetime], settings: UsageRetention, *, chunk_size: int = INGEST_CHUNK,
                 lease: timedelta | None = None, container: str | None = None,
                 streamed: Callable[[str], bool] = lambda service: False) -> None:
        """`archive` None: the logs come only through the stream route, and a run only rolls up and applies retention.
        `streamed` says which services the stream route counts: their archive folders are not read."""
        self.archive, self._reader, self._writer, self._deleter, self.clock = archive, reader, writer, deleter, clock
        self.settings, self.chunk_size, self.lease, self.streamed = settings, chunk_size, lease, streamed
        self.container = container or (archive.container if archive is not None else "")
        self._known: dict[tuple[str, str], Known] = {}  # shared by the runs of this process (the timer's, one at a time or not)

    def ingest(self, now: datetime | None = None) -> IngestReport:
        started = time.perf_counter()
        now = now or self.clock()
        options = {"lease": self.lease} if self.lease is not None else {}
        sink = UsageSink(self._reader, self._writer, self._deleter, self.container, self._known, clock=self.clock,
                         lease=self.lease or LEASE)
        sink.recover()
        read = ReadReport()
        if self.archive is not None:
            archive = ReadAhead(self.archive)  # the next range of a blob downloaded while this one is counted and written
            try:
                reader = LineReader(archive, self._reader, self._writer, sink, self.clock, table=Table.USAGE, name="usage",
                                    chunk_size=self.chunk_size, **options)
                read = reader.run(now, keep=lambda unit: not self.streamed(service_of_folder(unit) or ""))
            finally:
                archive.close()
        sink.flush()  # not on a failure: what the run counted is named in its pending row, for the next run to merge
        rollup = Rollups(self._reader, self._writer, self._deleter, self.settings, self.container).run(now)
        report = IngestReport(read.blobs, read.bytes, sink.records, sink.bad_lines, sink.contributions, read.skipped, read.replaced,
                              round(time.perf_counter() - started, 3), rollup)
        log.info(Line(USAGE_RUN, {"blobs": report.blobs, "bytes": report.bytes, "records": report.records, "badLines": report.bad_lines,
                                  "contributions": report.contributions, "claimedElsewhere": report.skipped, "replaced": report.replaced,
                                  "rolledDays": rollup.days, "purged": rollup.purged, "seconds": report.seconds}))
        return report
