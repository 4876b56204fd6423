"""Where an inventory row is written: one row's read-compute-write under optimistic concurrency, for events,
sweeps, enrichment and sync alike. Every write brings the row's flags up to now, and the alerts of any flag
transition go into the outbox before the row is written, so a crash between the two loses no alert. A row is
written in one transaction with its partition's count row, and with the history record of the event (or of what
a sync or a management-plane read did) that wrote it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.errors import ConflictRetriesExhausted, WriteConflict
from shared.domain.flags import Alert, FlagPolicy, evaluate, transitions
from shared.domain.model import Change, Stamp, apply_changes, same_row
from shared.domain.outcomes import Outcome
from shared.domain.resources import ResourceRef
from shared.store.keys import history_keys, with_keys
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, HistoryLog, HistoryRecord, InventoryRows, Loaded, PartitionWrite, RowChange, StoredRow, Table
from shared.store.records import history_entity
from shared.store.status import StatusTracker

Compute = Callable[[StoredRow | None, StoredRow | None], Entity | None]  # None: leave the row as it is
EventRecord = Callable[[StoredRow | None, StoredRow | None], HistoryRecord]  # the event's record, for the row as read
Notes = Callable[[Entity | None, Entity], tuple[HistoryRecord, ...]]  # records of what a write did (before, after)
Index = Callable[[list[tuple[Entity | None, Entity]]], None]  # writes the index entries of rows about to be written
BATCH_ROWS = 99  # rows of one `apply_batch` transaction, beside the count row (Table Storage's limit is 100)


@dataclass(frozen=True)
class Applied:
    """What one `apply` did: whether the row changed, the row it started from and what it computed (on the
    attempt that counted), and the alerts it put in the outbox."""

    changed: bool
    before: Entity | None
    computed: Entity | None
    alerts: tuple[Alert, ...] = ()
    record: Entity | None = None  # the event's history record, as stored (the feed is written from it)
    stale: bool = False


@dataclass(frozen=True)
class Prepared:
    entity: Entity
    alerts: tuple[Alert, ...]


class RowStore(InventoryRows, HistoryLog, Protocol):
    """The rows, and the change feed of the records written with them."""


def brought_up(ref: ResourceRef, before: Entity | None, computed: Entity, now: datetime,
               policy: FlagPolicy) -> tuple[Entity, tuple[Alert, ...]] | None:
    """`computed` under the resource's keys with its flags brought up to `now`, and the alerts of its flag
    transitions from `before`; None when the row would not change. Pure: the writer and a sweep's dry run share it."""
    new = evaluate(with_keys(ref, computed), now, policy)
    if before is not None and same_row(before, new):
        return None
    return new, tuple(transitions(before, new, now))


class RowWriter:
    def __init__(self, rows: RowStore, outbox: AlertOutbox, policy: FlagPolicy,
                 clock: Callable[[], datetime], conflict_retries: int = 10, status: StatusTracker | None = None,
                 index: Index | None = None) -> None:
        self._rows = rows
        self._status = status  # each service's status row is written before its first commit in this process
        self.index: Index = index or (lambda writes: None)  # shared.store.access_index: entries before their rows
        self._outbox = outbox
        self._policy = policy
        self._clock = clock
        self._conflict_retries = conflict_retries
        self.alerts_raised = 0  # by every thread since start, for the record; no decision reads it
        self._counting = threading.Lock()

    def apply(self, ref: ResourceRef, changes: Sequence[Change] | Compute, loaded: Loaded | None = None, *,
              event: EventRecord | None = None, notes: Notes | None = None) -> Applied:
        """Merge `changes` into the resource's row (or give the new row by `compute(row, parent)`). `loaded` is what
        the caller already read, so the first attempt reads nothing. `event` gives the event's history record, written
        in the same transaction (even when the row does not change: a stale event), `notes` the records of what the
        write did. A 412/409 reloads and computes again; AlreadyRecorded (a redelivery) propagates."""
        compute = changes if callable(changes) else _merging(list(changes))
        alerts: list[Alert] = []
        for attempt in range(self._conflict_retries):
            row, parent = loaded if attempt == 0 and loaded else self._rows.load(ref, fresh=attempt > 0)
            computed = compute(row, parent)
            prepared = self.prepare(ref, row, computed) if computed is not None else None
            record = event(row, parent) if event is not None else None
            before = row.entity if row else None
            if prepared is None and record is None:
                return Applied(False, before, computed, tuple(alerts))
            alerts += prepared.alerts if prepared else ()
            rows = (RowChange(prepared.entity, row),) if prepared else ()
            written = notes(before, prepared.entity) if notes is not None and prepared else ()
            outcome = None if record is None else Outcome.STALE if record.stale else Outcome.APPLIED
            if prepared:
                self.index([(before, prepared.entity)])
            try:
                self._commit(PartitionWrite(ref, rows, record, notes=written, outcome=outcome,
                                            at=record.recorded_at if record else None))
            except WriteConflict:
                continue
            self._feed(written)
            return Applied(prepared is not None, before, computed, tuple(alerts), _stored_record(record), bool(record and record.stale))
        raise ConflictRetriesExhausted(f"{ref.service.name}/{ref.path}: {self._conflict_retries} write conflicts in a row")

    def note_duplicate(self, ref: ResourceRef, existing: StoredRow) -> Entity:
        """One more delivery of a recorded event: Duplicates on its record and the count row's duplicate bucket, in
        one transaction (the record under its ETag, so concurrent redeliveries each count). The record as stored."""
        for _ in range(self._conflict_retries):
            now = self._clock()
            try:
                self._commit(PartitionWrite(ref, duplicate=existing, outcome=Outcome.DUPLICATE, at=now))
                return existing.entity
            except WriteConflict:
                again = self._rows.get(Table.INVENTORY, existing.entity["PartitionKey"], existing.entity["RowKey"])
                if again is None:
                    raise  # purged meanwhile: the redelivery records it again
                existing = again
        raise ConflictRetriesExhausted(f"{ref.service.name}/{ref.path}: {self._conflict_retries} write conflicts in a row")

    def prepare(self, ref: ResourceRef, row: StoredRow | None, computed: Entity) -> Prepared | None:
        """The entity to write under the resource's keys, with its flags brought up to the clock and the alerts of
        any flag transition in the outbox; None when the row would not change."""
        prepared = brought_up(ref, row.entity if row else None, computed, self._clock(), self._policy)
        if prepared is None:
            return None
        new, alerts = prepared
        if alerts:
            self._outbox.add(list(alerts))
            with self._counting:
                self.alerts_raised += len(alerts)
        return Prepared(new, alerts)

    def apply_batch(self, items: list[tuple[ResourceRef, list[Change], StoredRow | None]], parent: StoredRow | None) -> list[Applied]:
        """Changes to rows of one partition (a cascade's children, as read, under `parent`), in transactions of
        BATCH_ROWS rows and the count row; a transaction that meets a conflict is applied row by row instead."""
        applied: list[Applied] = []
        for at in range(0, len(items), BATCH_ROWS):
            chunk = items[at:at + BATCH_ROWS]
            prepared = [(ref, row, self.prepare(ref, row, apply_changes(row.entity if row else None, changes, parent.entity if parent else None)))
                        for ref, changes, row in chunk]
            writes = [RowChange(p.entity, row) for _, row, p in prepared if p is not None]
            try:
                if writes:
                    self.write_batch(chunk[0][0], writes)
                applied += [Applied(p is not None, row.entity if row else None, p.entity if p else None, p.alerts if p else ())
                            for _, row, p in prepared]
            except WriteConflict:
                applied += [self.apply(ref, changes) for ref, changes, _ in chunk]
        return applied

    def write_batch(self, ref: ResourceRef, rows: list[RowChange], notes: tuple[HistoryRecord, ...] = (), *,
                    indexed: bool = False) -> None:
        """Rows `prepare` gave, of `ref`'s partition, with their records and the count row, in one transaction (a
        sync's, a cascade's), after their index entries (unless the caller wrote them: `indexed`). Raises
        WriteConflict: the caller then applies them one by one."""
        if not indexed:
            self.index([(r.before.entity if r.before else None, r.entity) for r in rows])
        self._commit(PartitionWrite(ref, tuple(rows), notes=notes))
        self._feed(notes)

    def _commit(self, write: PartitionWrite) -> None:
        if self._status is not None:
            self._status.ensure(write.ref.service.key, write.ref.service.name)
        self._rows.commit(write)

    def refeed(self, ref: ResourceRef, stamp: Stamp) -> bool:
        """The feed entries of the record a sync or a management-plane read stamped `stamp` wrote beside `ref`'s row,
        upserted again: a rerun that finds the row already written heals a crash between the record's transaction
        and its feed's. One point read (the record's keys come from the resource and the stamp); False when there is
        no such record (the write changed no detail)."""
        pk, rk = history_keys(ref, stamp.time, stamp.event_id)
        record = self._rows.get(Table.INVENTORY, pk, rk)
        if record is not None:
            self._rows.add_feed([record.entity])
        return record is not None

    def _feed(self, notes: tuple[HistoryRecord, ...]) -> None:
        """The feed entries of a sync's or a management-plane read's records, after their transaction. (An event's
        are written by the pipeline, which writes them again on a redelivery.)"""
        if notes:
            self._rows.add_feed([history_entity(note) for note in notes])


def _merging(changes: list[Change]) -> Compute:
    def compute(row: StoredRow | None, parent: StoredRow | None) -> Entity:
        return apply_changes(row.entity if row else None, changes, parent.entity if parent else None)
    return compute


def _stored_record(record: HistoryRecord | None) -> Entity | None:
    return history_entity(record) if record else None
