"""The Activity Log's stream route: one call of `activity_logs_stream` (a batch of one Event Hubs partition) parsed and
written by the archive's own sink (ingest.AuditSink). Audit rows are keyed by their operation, so a redelivery could
only rewrite them; the partition reader (shared/logread/partitions.py) skips it anyway, by sequence number."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from shared.audit.ingest import AuditSink
from shared.audit.records import AuditWriter, WriteReport
from shared.logread.partitions import PartitionReader, StreamEvent, StreamReport
from shared.store.ports import Table, TableReader, TableWriter


class ActivityLogStream:
    def __init__(self, reader: TableReader, writer: TableWriter, audit_writer: AuditWriter, clock: Callable[[], datetime]) -> None:
        self._reader, self._writer, self._audit, self._clock = reader, writer, audit_writer, clock

    def take(self, hub: str, partition: str, events: Sequence[StreamEvent]) -> tuple[StreamReport, WriteReport]:
        sink = AuditSink(self._audit)
        report = PartitionReader(self._reader, self._writer, Table.USAGE, sink, self._clock).take(hub, partition, events)
        return report, sink.report
