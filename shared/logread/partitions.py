"""The Event Hubs route's reader: batches of one hub partition handed to the same sink as the archive's chunks
(`ChunkSink`), exactly once although Event Hubs delivers at least once and may cut a redelivery differently.

Each partition has a checkpoint row: `Through`, the last sequence number whose records are written, and, while a
batch is being written, its range (`Pending`) and the places its rows go. A batch keeps only the events after
`Through`, so a redelivered event is skipped by its sequence number, never by the batch it came in. A pending range
left by a crash is retired first (the sink deletes what it wrote for that range), whatever the cut of the batch
that follows. Every write of the checkpoint is under If-Match: of two instances that hold one partition during a
rebalance, one goes on and the other raises, and its retry finds the events already applied."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.logread.reader import Chunk, ChunkSink
from shared.store.ports import StoredRow, Table, TableReader, TableWriter
from shared.store.usage_keys import keyed, source, stream_checkpoint_keys

log = logging.getLogger("apim_inventory")
STREAM_GENERATION = 0  # a partition's sequence numbers never start again: one generation


@dataclass(frozen=True)
class StreamEvent:
    """One event of a partition as the trigger hands it over: its sequence number and its body (`{"records": […]}`)."""

    sequence: int
    body: bytes
    enqueued_at: datetime | None = None


@dataclass
class StreamReport:
    events: int = 0  # events whose records were written by this call
    redelivered: int = 0  # events at or before the checkpoint: already written
    retired: int = 0  # rows deleted of a range a crashed call left pending
    gaps: int = 0  # sequence numbers missing between the checkpoint and the batch (expired from the hub, or skipped)


@dataclass
class _State:
    through: int = -1
    pending: tuple[int, int] | None = None
    places: list[str] | None = None

    @staticmethod
    def of(row: StoredRow | None) -> _State:
        if row is None:
            return _State()
        e = row.entity
        pending = (int(e["PendingStart"]), int(e["PendingEnd"])) if int(e.get("PendingEnd", -1)) >= 0 else None
        return _State(int(e["Through"]), pending, json.loads(e.get("Places") or "[]"))

    def columns(self, hub: str, partition: str) -> dict[str, Any]:
        start, end = self.pending or (-1, -1)
        # Sequence numbers are 64-bit: text, since Table Storage's integers are 32 bits unless typed.
        return {"Hub": hub, "Partition": partition, "Through": str(self.through), "PendingStart": str(start), "PendingEnd": str(end),
                "Places": json.dumps(sorted(self.places or []))}


class PartitionReader:
    def __init__(self, reader: TableReader, writer: TableWriter, table: Table, sink: ChunkSink, clock: Callable[[], datetime]) -> None:
        self._reader, self._writer, self._table, self._sink, self._clock = reader, writer, table, sink, clock

    def take(self, hub: str, partition: str, events: Sequence[StreamEvent]) -> StreamReport:
        """Write the records of the events after the partition's checkpoint. Raises on a storage failure or when
        another instance moved the checkpoint meanwhile (WriteConflict): the trigger's retry delivers the batch again."""
        report = StreamReport()
        keys = stream_checkpoint_keys(hub, partition)
        row = self._reader.get(self._table, *keys)
        state = _State.of(row)
        fresh = sorted({e.sequence: e for e in events if e.sequence > state.through}.values(), key=lambda e: e.sequence)
        report.redelivered = len(events) - len(fresh)
        if not fresh:
            return report
        etag = row.etag if row else None
        if state.pending is not None:
            report.retired = self._sink.retire(state.places or [], self._name(hub, partition, *state.pending))
            log.info("logs: %s/%s: retired the pending range %s of a call that did not finish", hub, partition, state.pending)
        if state.through >= 0 and fresh[0].sequence > state.through + 1:
            report.gaps = fresh[0].sequence - state.through - 1
            log.warning("logs: %s/%s: sequence numbers %d to %d never arrived (expired from the hub, or skipped by the host)",
                        hub, partition, state.through + 1, fresh[0].sequence - 1)
        start, end = fresh[0].sequence, fresh[-1].sequence + 1
        chunk = Chunk(self._blob(hub, partition), STREAM_GENERATION, start, end, [(e.sequence, e.body) for e in fresh], self._clock())
        prepared = self._sink.prepare(chunk)
        pending = _State(state.through, (start, end), sorted(prepared.touched))
        stored = self._writer.put(self._table, keyed(keys, pending.columns(hub, partition)), etag)
        self._sink.commit(prepared)
        self._writer.put(self._table, keyed(keys, _State(end - 1).columns(hub, partition)), stored.etag)
        report.events = len(fresh)
        return report

    @staticmethod
    def _blob(hub: str, partition: str) -> str:
        return f"eventhub/{hub}/{partition}"

    def _name(self, hub: str, partition: str, start: int, end: int) -> str:
        return source(self._blob(hub, partition), STREAM_GENERATION, start, end)  # what Chunk.read names the range
