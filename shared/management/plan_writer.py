"""The writing of a sync's plans: what the sync does to each row (its changes, over the row as read), written in Table
transactions of one partition, or one row at a time through the RowWriter when a transaction meets a conflict.

Every write carries the sync's stamp S (the time its listing began) as event time, so the merge rules order it
against events exactly as they order events; a row whose last event is newer than S is never touched. Each replace
carries the ETag just read, so on Azure a row that an event changed meanwhile fails its transaction with 412, and its
rows are then written one by one through the RowWriter, which reads them again and merges again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import WriteConflict
from shared.domain.model import Change, Op, Stamp, apply_changes, inherit, row_stamp, same_row, written_by
from shared.domain.outcomes import SyncOutcome
from shared.domain.resources import ResourceRef, ServiceRef, parse_path
from shared.management.enrichment import details_changed, management_record
from shared.management.sync_invocation import Progress, SyncReport
from shared.store.keys import key_of, resource_keys
from shared.store.ports import Entity, HistoryRecord, RowChange, StoredRow
from shared.store.writer import Notes, RowWriter

SYNCED_TYPE = "ApimInventory.Synced"
TOMBSTONED_TYPE = "ApimInventory.SyncTombstoned"
BATCH = 49  # rows of a transaction: each with its history record, and the count row (Table Storage's limit is 100)
# What a listing moves on every row it sees, changed or not.
_STAMPS = frozenset({"LastEventTime", "LastEventId", "LastEventType", "UpdatedAt", "DetailsKey", "DetailsAt"})
Key = tuple[str, str]


@dataclass
class Plan:
    """What the sync does to one row: its changes (none: it only follows its parent), over the row as read."""

    ref: ResourceRef
    row: StoredRow | None
    changes: list[Change]


def plans_of(service: ServiceRef, stamp: Stamp, observed: dict[Key, list[Change]], stored: dict[Key, StoredRow],
             complete: set[str]) -> list[Plan]:
    """The plans of what a listing observed and of the rows stored under those keys, parents before children."""
    plans: dict[Key, Plan] = {}
    for key in sorted(set(observed) | set(stored)):  # RowKey order puts a parent before its children
        row = stored.get(key)
        if key in observed:
            changes = observed[key]
            plans[key] = Plan(changes[0].ref, row, changes)
        elif row is not None:
            ref = parse_path(service, row.entity["Path"])
            gone = row.entity["Kind"] in complete and not row.entity.get("IsDeleted")
            # Not listed: tombstoned if its kind was listed completely; else (a gateway instance,
            # say) it only follows a tombstoned parent.
            plans[key] = Plan(ref, row, [Change(ref, Op.DELETED, stamp, TOMBSTONED_TYPE)] if gone else [])
    return list(plans.values())


class PlanWriter:
    def __init__(self, writer: RowWriter, clock: Callable[[], datetime], *, transactions: bool = True) -> None:
        self._writer = writer
        self.clock = clock
        self.transactions = transactions  # off: every row is written alone (the RowWriter's path)

    def write(self, plans: list[Plan], stamp: Stamp, report: SyncReport, note: Progress,
              stored: dict[Key, Entity] | None = None, renew: Callable[[], None] = lambda: None) -> None:
        """`stored`: rows read beside the plans' own (their parents), which children inherit a deletion from.
        `renew` runs before each transaction: a flush of many rows must not outlast the lease (LeaseLost stops it)."""
        latest: dict[Key, Entity] = {**(stored or {}), **{resource_keys(p.ref): p.row.entity for p in plans if p.row is not None}}
        batch: list[tuple[Plan, Entity]] = []
        batches: list[list[tuple[Plan, Entity]]] = []
        kept: list[tuple[Entity | None, Entity]] = []  # rows left as they are: their entries are upserted all the same
        done = 0

        def flush() -> None:
            batches.append(list(batch))
            batch.clear()

        for plan in plans:
            key = resource_keys(plan.ref)
            parent = latest.get(resource_keys(plan.ref.parent)) if plan.ref.parent else None
            new = compute(plan.row.entity if plan.row else None, plan, parent, stamp)
            prepared = self._writer.prepare(plan.ref, plan.row, new) if new is not None else None
            if prepared is None:
                report.count(plan.ref.kind, SyncOutcome.SKIPPED if new is None else SyncOutcome.UNCHANGED)
                if plan.row is not None:
                    kept.append((None, plan.row.entity))
                if plan.row is not None and written_by(plan.row.entity, stamp):
                    self._writer.refeed(plan.ref, stamp)  # written before a crash: its record's feed may be missing
                done += 1
                continue
            latest[key] = prepared.entity
            if batch and (len(batch) == BATCH or key_of(batch[0][1])[0] != key[0]):
                flush()
            batch.append((plan, prepared.entity))
        if batch:
            flush()
        # The index entries of every row of the flush first, in a few transactions (shared.store.access_index); those
        # of the rows left as they are too, idempotent upserts, so that rows written before the index (or an entry a
        # crash or a purge race lost) are found after the next sync.
        self._writer.index(kept + [(plan.row.entity if plan.row else None, entity) for chunk in batches for plan, entity in chunk])
        for chunk in batches:
            renew()
            self._commit(chunk, stamp, report)
            done += len(chunk)
            note("write", done, len(plans))

    def _commit(self, batch: list[tuple[Plan, Entity]], stamp: Stamp, report: SyncReport) -> None:
        try:
            if not self.transactions:
                raise WriteConflict("single-entity writes")
            notes = tuple(note for plan, entity in batch
                          for note in sync_notes(plan.ref, stamp, self.clock)(plan.row.entity if plan.row else None, entity))
            self._writer.write_batch(batch[0][0].ref, [RowChange(entity, plan.row) for plan, entity in batch], notes, indexed=True)
            for plan, entity in batch:
                report.count(plan.ref.kind, outcome(plan.row.entity if plan.row else None, entity))
        except WriteConflict:
            for plan, _ in batch:  # read again and merge again, one row at a time
                self.write_one(plan, stamp, report)

    def write_one(self, plan: Plan, stamp: Stamp, report: SyncReport) -> None:
        """One row through the RowWriter, which reads it (and its parent) again and merges again."""
        def computed(row: StoredRow | None, parent: StoredRow | None) -> Entity | None:
            return compute(row.entity if row else None, plan, parent.entity if parent else None, stamp)

        applied = self._writer.apply(plan.ref, computed, notes=sync_notes(plan.ref, stamp, self.clock))
        new = applied.computed
        if not applied.changed and written_by(applied.before, stamp):
            self._writer.refeed(plan.ref, stamp)
        report.count(plan.ref.kind, SyncOutcome.SKIPPED if new is None else outcome(applied.before, new) if applied.changed else SyncOutcome.UNCHANGED)


def compute(row: Entity | None, plan: Plan, parent: Entity | None, stamp: Stamp) -> Entity | None:
    """The row after the sync, or None when an event changed it after the listing began."""
    current = row_stamp(row)
    if current is not None and current > stamp:
        return None
    if not plan.changes:  # a gateway instance, say: it only follows its parent
        return inherit(plan.ref, row, parent) if row is not None else None
    new = apply_changes(row, plan.changes, parent)
    # Seen again as it was: rewriting only the times would cost a write per row per sync, and would move
    # UpdatedAt without a change. A live row written before every live row had UpdatedAt gets it once.
    unchanged = row is not None and same_row(new, row, ignore=_STAMPS) and ("UpdatedAt" in row) == ("UpdatedAt" in new)
    return row if unchanged else new


def sync_notes(ref: ResourceRef, stamp: Stamp, clock: Callable[[], datetime]) -> Notes:
    """The history record of what the sync did to a row: added (or revived), tombstoned, or its details changed."""
    def notes(before: Entity | None, after: Entity) -> tuple[HistoryRecord, ...]:
        done = outcome(before, after)
        if done is SyncOutcome.ADDED:
            return (management_record(ref, stamp, SYNCED_TYPE, Op.SYNCED, before, after, clock()),)
        if done is SyncOutcome.TOMBSTONED:
            return (management_record(ref, stamp, TOMBSTONED_TYPE, Op.DELETED, before, after, clock()),)
        return details_changed(ref, stamp, clock)(before, after)
    return notes


def outcome(old: Entity | None, new: Entity) -> SyncOutcome:
    """What a write did to a row, as a sync counts it."""
    if old is None or (old.get("IsDeleted") and not new.get("IsDeleted")):
        return SyncOutcome.ADDED
    if new.get("IsDeleted") and not old.get("IsDeleted"):
        return SyncOutcome.TOMBSTONED
    return SyncOutcome.UPDATED
