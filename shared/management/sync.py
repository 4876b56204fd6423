"""A full sync of one APIM service from ARM: list every kind, then reconcile the inventory with it.

Every write of a sync carries the time its listing started, S, as event time, so the merge rules
order it against events exactly as they order events. A row whose last event is newer than S is
never touched: the sync's view of it is older. Rows are written in Table transactions (up to 100
rows of one partition); each replace carries the ETag read before the listing's writes began, so on
Azure a row that an event changed meanwhile fails the transaction with 412, and its rows are then
written one by one through the RowWriter, which reads them again and merges again.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.domain.details import resource_properties
from shared.domain.errors import PermanentEventError, WriteConflict
from shared.domain.kinds import FACTS, LISTED, TOP_LEVEL, Kind, children
from shared.domain.model import Change, Op, Stamp, apply_changes, inherit, row_stamp, same_row
from shared.domain.outcomes import SyncOutcome
from shared.domain.resources import ResourceRef, ServiceRef, parse_path
from shared.integrations.arm import ArmClient, ArmError
from shared.logs import SYNC, Line
from shared.management.enrichment import detail_changes, details_changed, management_record
from shared.store.keys import key_of, of_family, resource_keys
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, HistoryRecord, RowChange, StoredRow, TableReader
from shared.store.status import StatusTracker
from shared.store.writer import Notes, RowWriter

log = logging.getLogger("apim_inventory.sync")
SYNCED_TYPE = "ApimInventory.Synced"
TOMBSTONED_TYPE = "ApimInventory.SyncTombstoned"
BATCH = 49  # rows of a transaction: each with its history record, and the count row (Table Storage's limit is 100)
# What a listing moves on every row it sees, changed or not.
_STAMPS = frozenset({"LastEventTime", "LastEventId", "LastEventType", "UpdatedAt", "DetailsKey", "DetailsAt"})
Progress = Callable[[str, int, int | None], None]
Key = tuple[str, str]


@dataclass
class SyncReport:
    service: str
    started_at: datetime
    listed: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # added, updated, tombstoned, unchanged, skipped
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    incomplete: dict[str, str] = field(default_factory=dict)  # kind -> why it was not listed completely

    def count(self, kind: Kind, outcome: SyncOutcome) -> None:
        self.counts[outcome] += 1
        self.by_kind[kind][outcome] += 1


@dataclass
class _Plan:
    ref: ResourceRef
    row: StoredRow | None
    changes: list[Change]


class InventorySync:
    def __init__(self, arm: ArmClient, reader: TableReader, writer: RowWriter, outbox: AlertOutbox,
                 clock: Callable[[], datetime], *, transactions: bool = True, status: StatusTracker | None = None) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._outbox = outbox
        self.clock = clock
        self.transactions = transactions
        self.status = status  # the service's status row records each sync, for GET /api/health

    def sync(self, service: ServiceRef, progress: Progress | None = None) -> SyncReport:
        note = progress or (lambda phase, done, total: None)
        started = self.clock()
        stamp = Stamp(started, f"sync:{started.isoformat()}")
        report = SyncReport(service.name, started)
        observed: dict[Key, list[Change]] = {}
        for ref, resource in self._listing(service, report, note):
            for group in detail_changes(ref, resource, stamp, SYNCED_TYPE, alive=Op.SYNCED):
                observed[resource_keys(group[0].ref)] = group
        report.listed = len(observed)
        note("read", 0, None)
        stored = {key_of(r.entity): r for f in TOP_LEVEL for page in self._reader.scan(of_family(f, service.key)) for r in page}
        complete = set[str](LISTED) - set(report.incomplete)
        plans = self._plan(service, stamp, observed, stored, complete)
        note("write", 0, len(plans))
        self._write(plans, stamp, report, note)
        self._outbox.flush(self.clock())
        if self.status is not None:
            self.status.note_sync(service.key, service.name, started, not report.incomplete, self.clock())
        log.info(Line(SYNC, {"service": service.name, "startedAt": started, "listed": report.listed, **report.counts,
                             "incomplete": sorted(report.incomplete)}))
        return report

    # -- listing -------------------------------------------------------------------------
    def _listing(self, service: ServiceRef, report: SyncReport, note: Progress) -> Iterator[tuple[ResourceRef, dict[str, Any]]]:
        base = service.resource_id
        apis: list[str] = []
        gateways: list[str] = []
        for kind in TOP_LEVEL:
            for ref, resource in self._list(service, f"{base}/{FACTS[kind].collection}", kind, report, note):
                if kind is Kind.API and ref.revision is None:
                    apis.append(ref.name)
                    current = resource_properties(resource).get("apiRevision")
                    if current:  # the current revision is listed under the API's plain name
                        yield parse_path(service, f"apis/{ref.name};rev={current}"), resource
                if kind is Kind.GATEWAY:
                    gateways.append(ref.name)
                yield ref, resource
        for api in apis:
            for kind in _listed_children(Kind.API):
                yield from self._list(service, f"{base}/{FACTS[Kind.API].collection}/{api}/{FACTS[kind].collection}", kind, report, note)
        for gateway in gateways:
            for kind in _listed_children(Kind.GATEWAY):
                yield from self._list(service, f"{base}/{FACTS[Kind.GATEWAY].collection}/{gateway}/{FACTS[kind].collection}",
                                      kind, report, note)
        if Kind.BACKEND in report.incomplete:  # the rules are read from their backends' configuration
            report.incomplete[Kind.CIRCUIT_BREAKER_RULE] = "backends not listed completely"

    def _list(self, service: ServiceRef, url_path: str, kind: Kind, report: SyncReport,
              note: Progress) -> Iterator[tuple[ResourceRef, dict[str, Any]]]:
        """A collection's items as (ref, resource); a failure marks the kind incomplete."""
        prefix = url_path[len(service.resource_id):].strip("/")
        found: list[tuple[ResourceRef, dict[str, Any]]] = []
        try:
            for resource in self.arm.list(url_path):
                name = resource.get("name")
                if not isinstance(name, str) or not name or "/" in name:
                    raise ArmError(200, "BadItem", f"an item of {prefix} has no usable name")
                try:
                    found.append((parse_path(service, f"{prefix}/{name}"), resource))
                except PermanentEventError as exc:
                    log.warning("sync %s: skipped %s/%s: %s", service.name, prefix, name[:100], exc)
                if len(found) % 1000 == 0:
                    note(f"list {kind}", len(found), None)
        except ClientAuthenticationError:
            raise  # no token: nothing can be listed, so the sync stops with the credential's own message
        except AzureError as exc:
            report.incomplete.setdefault(kind, str(exc)[:300])
            log.error("sync %s: listing %s failed, its rows are not tombstoned: %s", service.name, prefix, exc)
        note(f"list {kind}", len(found), len(found))
        yield from found

    # -- reconcile -----------------------------------------------------------------------
    @staticmethod
    def _plan(service: ServiceRef, stamp: Stamp, observed: dict[Key, list[Change]], stored: dict[Key, StoredRow],
              complete: set[str]) -> list[_Plan]:
        plans: dict[Key, _Plan] = {}
        for key in sorted(set(observed) | set(stored)):  # RowKey order puts a parent before its children
            row = stored.get(key)
            if key in observed:
                changes = observed[key]
                plans[key] = _Plan(changes[0].ref, row, changes)
            elif row is not None:
                ref = parse_path(service, row.entity["Path"])
                gone = row.entity["Kind"] in complete and not row.entity.get("IsDeleted")
                # Not listed: tombstoned if its kind was listed completely; else (a gateway instance,
                # say) it only follows a tombstoned parent.
                plans[key] = _Plan(ref, row, [Change(ref, Op.DELETED, stamp, TOMBSTONED_TYPE)] if gone else [])
        return list(plans.values())

    def _write(self, plans: list[_Plan], stamp: Stamp, report: SyncReport, note: Progress) -> None:
        latest: dict[Key, Entity] = {resource_keys(p.ref): p.row.entity for p in plans if p.row is not None}
        batch: list[tuple[_Plan, Entity]] = []
        done = 0

        def flush() -> None:
            nonlocal done
            self._commit(batch, stamp, report)
            done += len(batch)
            batch.clear()
            note("write", done, len(plans))

        for plan in plans:
            key = resource_keys(plan.ref)
            parent = latest.get(resource_keys(plan.ref.parent)) if plan.ref.parent else None
            new = _compute(plan.row.entity if plan.row else None, plan, parent, stamp)
            prepared = self._writer.prepare(plan.ref, plan.row, new) if new is not None else None
            if prepared is None:
                report.count(plan.ref.kind, SyncOutcome.SKIPPED if new is None else SyncOutcome.UNCHANGED)
                done += 1
                continue
            latest[key] = prepared.entity
            if batch and (len(batch) == BATCH or key_of(batch[0][1])[0] != key[0]):
                flush()
            batch.append((plan, prepared.entity))
        if batch:
            flush()

    def _commit(self, batch: list[tuple[_Plan, Entity]], stamp: Stamp, report: SyncReport) -> None:
        try:
            if not self.transactions:
                raise WriteConflict("single-entity writes")
            notes = tuple(note for plan, entity in batch
                          for note in _sync_notes(plan.ref, stamp, self.clock)(plan.row.entity if plan.row else None, entity))
            self._writer.write_batch(batch[0][0].ref, [RowChange(entity, plan.row) for plan, entity in batch], notes)
            for plan, entity in batch:
                report.count(plan.ref.kind, _outcome(plan.row.entity if plan.row else None, entity))
        except WriteConflict:
            for plan, _ in batch:  # read again and merge again, one row at a time
                self._write_one(plan, stamp, report)

    def _write_one(self, plan: _Plan, stamp: Stamp, report: SyncReport) -> None:
        def compute(row: StoredRow | None, parent: StoredRow | None) -> Entity | None:
            return _compute(row.entity if row else None, plan, parent.entity if parent else None, stamp)

        applied = self._writer.apply(plan.ref, compute, notes=_sync_notes(plan.ref, stamp, self.clock))
        new = applied.computed
        report.count(plan.ref.kind, SyncOutcome.SKIPPED if new is None else _outcome(applied.before, new) if applied.changed else SyncOutcome.UNCHANGED)


def _compute(row: Entity | None, plan: _Plan, parent: Entity | None, stamp: Stamp) -> Entity | None:
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


def _sync_notes(ref: ResourceRef, stamp: Stamp, clock: Callable[[], datetime]) -> Notes:
    """The history record of what the sync did to a row: added (or revived), tombstoned, or its details changed."""
    def notes(before: Entity | None, after: Entity) -> tuple[HistoryRecord, ...]:
        outcome = _outcome(before, after)
        if outcome is SyncOutcome.ADDED:
            return (management_record(ref, stamp, SYNCED_TYPE, Op.SYNCED, before, after, clock()),)
        if outcome is SyncOutcome.TOMBSTONED:
            return (management_record(ref, stamp, TOMBSTONED_TYPE, Op.DELETED, before, after, clock()),)
        return details_changed(ref, stamp, clock)(before, after)
    return notes


def _listed_children(kind: Kind) -> tuple[Kind, ...]:
    return tuple(child for child in children(kind) if FACTS[child].listed)


def _outcome(old: Entity | None, new: Entity) -> SyncOutcome:
    if old is None or (old.get("IsDeleted") and not new.get("IsDeleted")):
        return SyncOutcome.ADDED
    if new.get("IsDeleted") and not old.get("IsDeleted"):
        return SyncOutcome.TOMBSTONED
    return SyncOutcome.UPDATED
