"""The gateway logs' stream route: one call of `gateway_logs_stream` (a batch of one Event Hubs partition) counted by
the same sink as the archive's chunks (ingest.UsageSink), read exactly once by the partition reader
(shared/logread/partitions.py). Each event's body is `{"records": [...]}`, which the tally reads as it reads the
archive's older wrapped lines. Roll-ups and retention stay the `gateway_logs` timer's."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from shared.domain.usage import streamed
from shared.logread.partitions import PartitionReader, StreamEvent, StreamReport
from shared.logs import USAGE as USAGE_RUN
from shared.logs import Line
from shared.store.ports import Table, TableDeleter, TableReader, TableWriter
from shared.usage.ingest import Known, UsageSink

log = logging.getLogger("apim_inventory")


class GatewayLogStream:
    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, clock: Callable[[], datetime],
                 container: str, services: frozenset[str] | None = None) -> None:
        """`container` names where the bad lines are listed (`usage rejected` lists the archive's and the stream's
        together); `services`, those this route counts (None: all), as GATEWAY_LOGS_STREAMED_SERVICES says."""
        self._reader, self._writer, self._deleter, self._clock = reader, writer, deleter, clock
        self.container, self.services = container, services
        self._known: dict[tuple[str, str], Known] = {}  # the last-use rows this process wrote, shared by its calls

    def take(self, hub: str, partition: str, events: Sequence[StreamEvent]) -> StreamReport:
        sink = UsageSink(self._reader, self._writer, self._deleter, self.container, self._known, clock=self._clock,
                         counts=lambda service: streamed(service, self.services))
        sink.recover()
        report = PartitionReader(self._reader, self._writer, Table.USAGE, sink, self._clock).take(hub, partition, events)
        sink.flush()  # not on a failure: the hours counted are named in the call's pending row, for a later call to merge
        log.info(Line(USAGE_RUN, {"hub": hub, "partition": partition, "events": report.events, "redelivered": report.redelivered,
                                  "records": sink.records, "badLines": sink.bad_lines, "notStreamed": sink.not_counted,
                                  "retired": report.retired, "gaps": report.gaps}))
        return report
