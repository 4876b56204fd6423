"""The gateway logs' stream route: one call of `gateway_logs_stream` (a batch of one Event Hubs partition) counted by
the same sink as the archive's chunks (ingest.UsageSink), read exactly once by the partition reader
(shared/logread/partitions.py), its last uses written at most a minute late. Each event's body is `{"records": [...]}`, which the tally reads as it reads the
archive's older wrapped lines. Roll-ups and retention stay the `gateway_logs` timer's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from shared.domain.usage import streamed
from shared.logread.partitions import PartitionReader, StreamEvent, StreamReport
from shared.logs import USAGE as USAGE_RUN
from shared.logs import Line
from shared.store.ports import Table, TableDeleter, TableReader, TableWriter
from shared.usage.ingest import Known, UsageSink

log = logging.getLogger("apim_inventory")


FLUSH_EVERY = timedelta(seconds=60)  # how late a call's last uses may be written: a busy partition calls every second


class GatewayLogStream:
    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, clock: Callable[[], datetime],
                 container: str, services: frozenset[str] | None = None) -> None:
        """`container` names where the bad lines are listed (`usage rejected` lists the archive's and the stream's
        together); `services`, those this route counts (None: all), as GATEWAY_LOGS_STREAMED_SERVICES says."""
        self._reader, self._writer, self._deleter, self._clock = reader, writer, deleter, clock
        self.container, self.services = container, services
        self._known: dict[tuple[str, str], Known] = {}  # the last-use rows this process wrote, shared by its calls
        # One sink per worker thread, kept across calls: the last uses of many calls are written together, at most
        # FLUSH_EVERY apart (once a call, they were 84 % of a call's time in a backlog). What the sink has counted
        # and not written is named in its pending row, which a later call merges again if this process dies.
        self._local = threading.local()

    def take(self, hub: str, partition: str, events: Sequence[StreamEvent]) -> StreamReport:
        sink, flushed = self._sink()
        report = PartitionReader(self._reader, self._writer, Table.USAGE, sink, self._clock).take(hub, partition, events)
        if self._clock() - flushed >= FLUSH_EVERY:
            self.flush()
        log.info(Line(USAGE_RUN, {"hub": hub, "partition": partition, "events": report.events, "redelivered": report.redelivered,
                                  "records": sink.records, "badLines": sink.bad_lines, "notStreamed": sink.not_counted,
                                  "retired": report.retired, "gaps": report.gaps}))
        sink.records = sink.bad_lines = sink.not_counted = 0  # the next call's line counts its own
        return report

    def flush(self) -> None:
        """This thread's last uses written now, and those of calls that died merged again."""
        sink, _ = self._sink()
        sink.flush()
        sink.recover()
        self._local.flushed = self._clock()

    def _sink(self) -> tuple[UsageSink, datetime]:
        sink: UsageSink | None = getattr(self._local, "sink", None)
        if sink is None:
            sink = UsageSink(self._reader, self._writer, self._deleter, self.container, self._known, clock=self._clock,
                             counts=lambda service: streamed(service, self.services))
            sink.recover()
            self._local.sink, self._local.flushed = sink, self._clock()
        return sink, self._local.flushed
