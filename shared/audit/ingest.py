"""The Activity Log's archive read (the `activity_logs` timer and `apim-inventory audit ingest`): the generic
LineReader (shared/logread/reader.py) over `insights-activity-logs`, its checkpoints in the usage table under the
container's name, with a sink that hands each chunk's records to the AuditWriter (records.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.audit.records import AuditWriter, WriteReport
from shared.domain import audit
from shared.integrations.log_archive import LogArchive
from shared.logread.reader import CHUNK, Chunk, LineReader, Prepared
from shared.logs import AUDIT, Line
from shared.store.ports import Table, TableReader, TableWriter

log = logging.getLogger("apim_inventory")
READER_NAME = "audit"  # the reader's log lines


@dataclass(frozen=True)
class PreparedChunk:
    chunk: Chunk
    items: list[tuple[str, audit.AuditRecord | audit.BadRecord | audit.Ignored, object]]

    @property
    def touched(self) -> frozenset[str]:
        return frozenset()  # audit rows are keyed by their operation, not by the read: nothing to retire


class AuditSink:
    """Parses a chunk's lines (domain/audit.py) and writes them through the AuditWriter. A range read again, a
    replaced blob read from its start, or two runs meeting fold onto the same rows: `retire` has nothing to do."""

    def __init__(self, writer: AuditWriter) -> None:
        self.writer, self.report = writer, WriteReport()

    def prepare(self, chunk: Chunk) -> PreparedChunk:
        if chunk.too_long is not None:
            message = f"a line of {chunk.end - chunk.start} bytes, longer than a chunk"
            return PreparedChunk(chunk, [(f"archive:{chunk.blob}@{chunk.start}", audit.BadRecord(audit.TOO_LONG, message), chunk.too_long)])
        items: list[tuple[str, audit.AuditRecord | audit.BadRecord | audit.Ignored, object]] = []
        for offset, line in chunk.lines:
            reads = audit.read_line_records(line)
            # A wrapped line's records are told apart by their place in it (a bad row is keyed by its origin).
            items.extend((f"archive:{chunk.blob}@{offset}" + (f"#{n}" if len(reads) > 1 else ""), read, raw)
                         for n, (read, raw) in enumerate(reads))
        return PreparedChunk(chunk, items)

    def commit(self, prepared: Prepared) -> None:
        assert isinstance(prepared, PreparedChunk)
        self.report.add(self.writer.write_read(prepared.items, seen_at=prepared.chunk.at))

    def retire(self, touched: list[str], prefix: str) -> int:
        return 0


@dataclass(frozen=True)
class AuditIngestReport:
    blobs: int
    bytes: int
    records: int
    written: int
    ignored: int
    bad: int
    skipped: int
    seconds: float


class ActivityLogs:
    """`ingest(now)`: one run of the `activity_logs` timer."""

    def __init__(self, archive: LogArchive, reader: TableReader, writer: TableWriter, audit_writer: AuditWriter,
                 clock: Callable[[], datetime], *, chunk_size: int = CHUNK) -> None:
        self.archive, self._reader, self._writer, self.audit_writer, self.clock = archive, reader, writer, audit_writer, clock
        self.chunk_size = chunk_size

    def ingest(self, now: datetime | None = None) -> AuditIngestReport:
        started = time.perf_counter()
        sink = AuditSink(self.audit_writer)
        read = LineReader(self.archive, self._reader, self._writer, sink, self.clock, table=Table.USAGE, name=READER_NAME,
                          chunk_size=self.chunk_size).run(now or self.clock())
        done = sink.report
        report = AuditIngestReport(read.blobs, read.bytes, done.records, done.written, done.ignored, len(done.bad), read.skipped,
                                   round(time.perf_counter() - started, 3))
        log.info(Line(AUDIT, {"blobs": report.blobs, "bytes": report.bytes, "records": report.records, "written": report.written,
                              "ignored": report.ignored, "badRecords": report.bad, "claimedElsewhere": report.skipped, "seconds": report.seconds}))
        return report
