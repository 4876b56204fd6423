"""A full sync of one APIM service from ARM, in invocations that each stop within a time budget.

Every write of a sync carries the time its listing started, S, as event time, so the merge rules
order it against events exactly as they order events. A row whose last event is newer than S is
never touched: the sync's view of it is older. The listing goes page by page (ARM's nextLink); each
page is reconciled as it comes: its stored rows are read (a RowKey range per partition), then written
in Table transactions (up to 100 rows of one partition); each replace carries the ETag just read, so
on Azure a row that an event changed meanwhile fails the transaction with 412, and its rows are then
written one by one through the RowWriter, which reads them again and merges again. The RowKeys a page
saw are kept in a scratch entity; the checkpoint (shared.management.checkpoint) then moves past it.

Once every collection is listed, stored rows of a kind listed completely that no page saw are the
tombstone candidates; each is confirmed gone by a GET that answers 404 before its tombstone is
written, since a deletion between two pages shifts later items one offset back and a listing by
offset then skips one. The scratch entities are deleted at the end.

A service's workspaces are listed like its other top-level collections, and then each workspace's own collections
(docs/design.md, "Workspaces in the sync"). A row in a workspace the listing did not see is never a candidate: a
workspace confirmed gone is tombstoned and its deletion carried to every row in it (shared.store.workspace_cascade),
and a cascade left unfinished is finished by the next tombstone pass over the workspace family.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.domain.details import resource_properties
from shared.domain.errors import PermanentEventError, WriteConflict, one_line
from shared.domain.kinds import FACTS, IN_WORKSPACE, LISTED, TOP_LEVEL, WORKSPACE_FAMILIES, Kind, children, collection_of
from shared.domain.model import Change, Op, Stamp, apply_changes, inherit, row_stamp, same_row, written_by
from shared.domain.outcomes import SyncOutcome, SyncStop
from shared.domain.resources import ResourceRef, ServiceRef, parse_path, within
from shared.integrations.arm import ArmClient, ArmNotFound, ArmThrottled
from shared.logs import SYNC, Line
from shared.management.checkpoint import CLEANUP, DONE, LEASE, LISTING, TOMBSTONES, Held, LeaseLost, acquire
from shared.management.enrichment import detail_changes, details_changed, management_record
from shared.store import workspace_cascade
from shared.store.keys import family_range, key_of, of_family, resource_keys, rows_between, rows_only, seen_pages
from shared.store.outbox import AlertOutbox
from shared.store.ports import (
    Condition,
    Entity,
    HistoryRecord,
    InventoryRows,
    Query,
    RowChange,
    StoredRow,
    SyncRecords,
    Table,
    TableDeleter,
    TableReader,
)
from shared.store.records import seen_row_keys
from shared.store.status import StatusTracker
from shared.store.writer import Notes, RowWriter

log = logging.getLogger("apim_inventory.sync")
SYNCED_TYPE = "ApimInventory.Synced"
TOMBSTONED_TYPE = "ApimInventory.SyncTombstoned"
BATCH = 49  # rows of a transaction: each with its history record, and the count row (Table Storage's limit is 100)
BUDGET_SECONDS = 480.0
READS_RESERVE = 100
READ_REFILL_PER_SECOND = 25.0  # ARM's documented refill of a principal's read bucket
SCAN_PAGE = 1000
RANGE_SPREAD = 4  # rows a page's range read may return per row it looks for, before point reads are cheaper
FLUSH_ROWS = 1600  # listed items reconciled together: about 100 rows a partition when a kind spreads over 16
# What a listing moves on every row it sees, changed or not.
_STAMPS = frozenset({"LastEventTime", "LastEventId", "LastEventType", "UpdatedAt", "DetailsKey", "DetailsAt"})
Progress = Callable[[str, int, int | None], None]
Key = tuple[str, str]
Unit = tuple[Kind, str]  # a collection to list: its items' kind and its ARM id
# Kinds whose rows have no parent to inherit a deletion from: a first sync writes them without reading first.
_READ_FREE = frozenset({Kind.USER, Kind.PRODUCT, Kind.SUBSCRIPTION, Kind.GATEWAY, Kind.BACKEND})
# Top-level kinds whose children are listed after the top-level collections, in this order (a checkpoint's unit
# numbers count on it: a new parent goes last). Under a workspace: its APIs' and products' children.
_PARENTS = (Kind.API, Kind.GATEWAY, Kind.PRODUCT)
_WORKSPACE_PARENTS = tuple(p for p in _PARENTS if p in IN_WORKSPACE)
_LINKS = frozenset({Kind.GATEWAY_API, Kind.PRODUCT_API, Kind.PRODUCT_GROUP})


@dataclass
class SyncReport:
    """A sync's counts so far (all its invocations) and how the last invocation ended."""

    service: str
    started_at: datetime
    listed: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # added, updated, tombstoned, unchanged, skipped
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    incomplete: dict[str, str] = field(default_factory=dict)  # kind -> why it was not listed completely
    finished: bool = False  # the sync ended in this invocation
    stopped: SyncStop | None = None  # why the invocation stopped before the sync's end
    retry_after: float | None = None  # for `throttled`: seconds ARM asked to wait
    invocations: int = 0
    kept: int = 0  # tombstone candidates ARM still had (skipped by a listing whose pages shifted)
    unconfirmed: int = 0  # tombstone candidates kept because ARM could not be read (neither gone nor unchanged)
    paused: float = 0.0  # seconds this invocation waited for ARM's read allowance to refill

    def count(self, kind: Kind, outcome: SyncOutcome) -> None:
        self.counts[outcome] += 1
        self.by_kind[kind][outcome] += 1


@dataclass
class _Plan:
    ref: ResourceRef
    row: StoredRow | None
    changes: list[Change]


class SyncStore(TableReader, InventoryRows, Protocol):
    """What a sync reads: key ranges, and rows by resource (a workspace's row, whose deletion its rows inherit)."""


class InventorySync:
    def __init__(self, arm: ArmClient, reader: SyncStore, writer: RowWriter, outbox: AlertOutbox,
                 clock: Callable[[], datetime], *, records: SyncRecords, deleter: TableDeleter, transactions: bool = True,
                 status: StatusTracker | None = None, budget: float = BUDGET_SECONDS, reads_reserve: int = READS_RESERVE,
                 lease: timedelta = LEASE, timer: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._outbox = outbox
        self.clock = clock
        self.transactions = transactions
        self.status = status  # the service's status row records each sync, for GET /api/health
        self._records = records
        self._deleter = deleter
        self.budget = budget  # seconds of one invocation; at least one page is listed whatever it is
        self.reads_reserve = reads_reserve
        self.lease = lease
        self._timer = timer
        self.sleep = sleep

    def sync(self, service: ServiceRef, progress: Progress | None = None) -> SyncReport:
        """The whole sync, invocation after invocation (the command): waits out ARM's throttling between them."""
        while True:
            report = self.step(service, progress)
            if report.finished or report.stopped in (SyncStop.BUSY, SyncStop.LEASE_LOST):
                return report
            if report.stopped == SyncStop.THROTTLED:
                self.sleep(min(report.retry_after or 1.0, 300.0))

    def step(self, service: ServiceRef, progress: Progress | None = None, *, budget: float | None = None,
             interval: timedelta | None = None) -> SyncReport:
        """One invocation (the timer's): resume the sync in progress or start one, and stop within the budget."""
        note = progress or (lambda phase, done, total: None)
        begun, limit = self._timer(), self.budget if budget is None else budget
        if self.status is not None:  # a sync that lists nothing still makes the service known (summary, changes, purge)
            self.status.ensure(service.key, service.name)
        held = acquire(self._records, service, self.clock(), interval=interval, duration=self.lease)
        if isinstance(held, SyncStop):
            log.info("sync %s: %s", service.name, "another invocation holds the lease" if held == SyncStop.BUSY else "not due yet")
            return SyncReport(service.name, self.clock(), stopped=held)
        cp = held.checkpoint
        report = SyncReport(service.name, cp.started_at, cp.listed, Counter(), cp.by_kind, cp.incomplete,
                            invocations=cp.invocations, kept=cp.kept, unconfirmed=cp.unconfirmed)
        for outcomes in cp.by_kind.values():
            report.counts.update(outcomes)
        stamp = Stamp(cp.started_at, f"sync:{cp.started_at.isoformat()}")
        run = _Invocation(held, service, stamp, report, note, lambda: self._timer() - begun >= limit)
        try:
            stop = self._list(run) if cp.phase == LISTING else None
            stop = stop or (self._tombstones(run) if cp.phase == TOMBSTONES else None)
            if stop is None and cp.phase == CLEANUP:
                self._cleanup(run)
        except ArmThrottled as exc:
            stop, report.retry_after = SyncStop.THROTTLED, exc.retry_after
        except LeaseLost as exc:
            log.warning("sync %s: stopped writing: %s", service.name, exc)
            report.stopped = SyncStop.LEASE_LOST
            self._outbox.flush(self.clock())
            return report
        except ClientAuthenticationError:
            held.release(self.clock())
            raise
        self._outbox.flush(self.clock())
        report.stopped, report.finished, report.kept, report.unconfirmed = stop, cp.phase == DONE, cp.kept, cp.unconfirmed
        if stop is not None:
            held.release(self.clock())
            log.info("sync %s: invocation %d stopped (%s) in phase %s; the next one resumes", service.name,
                     cp.invocations, stop, cp.phase)
        return report

    # -- listing -------------------------------------------------------------------------
    def _list(self, run: _Invocation) -> SyncStop | None:
        """List page after page, reconciling them (a few pages at a time, so that transactions fill up); None when
        every collection is listed, else why it stopped. The checkpoint moves past pages once they are written."""
        cp, service, report = run.held.checkpoint, run.service, run.report
        units = self._units(service, cp.unit)
        worked = False
        pending: list[_Page] = []

        def flush() -> None:
            if not pending:
                return
            kind = pending[0].kind
            if cp.page == 0:  # decided once, as a collection's listing begins, and kept in the checkpoint
                cp.read_free = cp.unit if kind in _READ_FREE and self._only_this_sync(service, kind, run.stamp) else -1
            keys = self._reconcile_page(run, [pair for page in pending for pair in page.pairs], read=cp.read_free != cp.unit)
            for page in pending:
                seen = sorted({resource_keys(g[0].ref)[1] for ref, resource in page.pairs
                               for g in detail_changes(ref, resource, run.stamp, SYNCED_TYPE, alive=Op.SYNCED)})
                if seen or page.parents:
                    self._records.save_seen(service.key, cp.unit, cp.page, FACTS[kind].family.value, seen, page.parents)
                cp.page, cp.next_link = (cp.page + 1, page.link) if page.link else (0, None)
            cp.listed += len(keys)
            report.listed = cp.listed
            if pending[-1].link is None:
                cp.unit += 1
            pending.clear()
            run.note(f"list {kind}", cp.listed, None)
            run.held.commit(self.clock())

        while cp.unit < len(units):
            kind, collection = units[cp.unit]
            link = pending[-1].link if pending else cp.next_link
            if worked and run.out_of_time():
                flush()
                return SyncStop.BUDGET
            if worked and (stop := self._pace(report)) is not None:
                flush()
                return stop
            worked = True
            try:
                items, link = self.arm.page(link or self.arm.url(collection))
            except (ClientAuthenticationError, ArmThrottled):
                flush()
                raise  # no token: nothing can be listed; throttled: the next invocation resumes at this page
            except AzureError as exc:  # one workspace's collection not listed: no row of its kind is tombstoned
                where = collection[len(service.resource_id):].strip("/")
                in_workspace = where.lower().startswith(f"{FACTS[Kind.WORKSPACE].collection}/")
                report.incomplete.setdefault(kind, f"{where[:200]}: {one_line(exc, 250)}" if in_workspace else one_line(exc, 300))
                log.error("sync %s: listing %s failed, its rows are not tombstoned: %s", service.name, collection, exc)
                items, link = [], None
            pairs, parents = self._page_items(service, collection, kind, items, report)
            pending.append(_Page(kind, pairs, parents, link))
            if link is None or sum(len(p.pairs) for p in pending) >= FLUSH_ROWS:
                flush()
                if cp.unit == len(units):  # the end of what the units listed so far name: the next stage, if any
                    units = self._units(service, cp.unit)
        flush()
        if Kind.BACKEND in report.incomplete:  # the rules are read from their backends' configuration
            report.incomplete.setdefault(Kind.CIRCUIT_BREAKER_RULE, "backends not listed completely")
        for parent in _PARENTS:  # the children of a parent not listed were not listed either
            if parent in report.incomplete:
                for child in _listed_children(parent):
                    report.incomplete.setdefault(child, f"{parent} not listed completely")
        cp.phase = TOMBSTONES
        run.held.commit(self.clock())
        return None

    def _units(self, service: ServiceRef, reached: int) -> list[Unit]:
        """The collections a sync lists, in order, as far as the units before `reached` name them: the top-level ones;
        then those of each API, gateway and product, and each workspace's collections; then those of each workspace's
        APIs and products (each named by the scratch entities of its parent's listing, so the order holds across
        invocations)."""
        base = service.resource_id
        units: list[Unit] = [(kind, f"{base}/{FACTS[kind].collection}") for kind in TOP_LEVEL]
        if reached < len(units):
            return units
        for parent in _PARENTS:
            units += [(kind, f"{base}/{FACTS[parent].collection}/{name}/{FACTS[kind].collection}")
                      for name in self._parents(service, TOP_LEVEL.index(parent)) for kind in _listed_children(parent)]
        workspaces = self._parents(service, TOP_LEVEL.index(Kind.WORKSPACE))
        first = len(units)
        for workspace in workspaces:
            units += [(kind, f"{base}/{within(workspace, collection_of(kind, True))}") for kind in WORKSPACE_FAMILIES]
        if reached < len(units):
            return units
        for n, workspace in enumerate(workspaces):
            for parent in _WORKSPACE_PARENTS:
                at = first + n * len(WORKSPACE_FAMILIES) + WORKSPACE_FAMILIES.index(parent)
                units += [(kind, f"{base}/{within(workspace, f'{collection_of(parent, True)}/{name}/{collection_of(kind, True)}')}")
                          for name in self._parents(service, at) for kind in _listed_children(parent)]
        return units

    def _parents(self, service: ServiceRef, unit: int) -> list[str]:
        """The names of the APIs, gateways, products or workspaces a unit's pages listed, sorted."""
        pages = self._reader.scan(seen_pages(service.key, unit))
        return sorted({n for page in pages for row in page for n in str(row.entity.get("Parents") or "").split("\n") if n})

    def _pace(self, report: SyncReport) -> SyncStop | None:
        """Slow down as ARM's read allowance runs low (its bucket refills at a documented rate); stop near empty."""
        remaining = self.arm.remaining_reads
        if remaining is None or remaining >= self.reads_reserve:
            return None
        if remaining <= self.reads_reserve // 10:
            report.retry_after = self.reads_reserve / READ_REFILL_PER_SECOND
            return SyncStop.THROTTLED
        pause = (self.reads_reserve - remaining) / READ_REFILL_PER_SECOND
        self.sleep(pause)
        report.paused += pause
        return None

    @staticmethod
    def _page_items(service: ServiceRef, collection: str, kind: Kind, items: list[dict[str, Any]],
                    report: SyncReport) -> tuple[list[tuple[ResourceRef, dict[str, Any]]], list[str]]:
        """A page's items as (ref, resource), and the names of the APIs, gateways, products and workspaces on it
        (their children, a workspace's collections, are listed later). An item without a usable name marks the kind
        incomplete."""
        prefix = collection[len(service.resource_id):].strip("/")
        found: list[tuple[ResourceRef, dict[str, Any]]] = []
        parents: list[str] = []
        for resource in items:
            name = resource.get("name")
            if not isinstance(name, str) or not name or "/" in name or "\n" in name:
                report.incomplete.setdefault(kind, f"ARM 200 BadItem: an item of {prefix} has no usable name")
                continue
            try:
                ref = parse_path(service, f"{prefix}/{name}")
            except PermanentEventError as exc:
                log.warning("sync %s: skipped %s/%s: %s", service.name, prefix, name[:100], exc)
                continue
            if kind is Kind.API and ref.revision is None:
                parents.append(ref.name)
                current = resource_properties(resource).get("apiRevision")
                if current:  # the current revision is listed under the API's plain name
                    found.append((parse_path(service, within(ref.workspace, f"{ref.segments[0]}/{ref.name};rev={current}")), resource))
            if kind in (Kind.GATEWAY, Kind.PRODUCT, Kind.WORKSPACE):
                parents.append(ref.name)
            found.append((ref, resource))
        return found, parents

    def _only_this_sync(self, service: ServiceRef, kind: Kind, stamp: Stamp) -> bool:
        """True when every row of the kind's family is this sync's (a first sync): its pages need no reads, since an
        insert of a row that appeared since fails (409) and falls back to reading and merging. Asked as the
        collection's listing begins, when the family holds at most the rows of a flush written before a crash: Azure
        answers the filter by reading the family's rows until one differs, so asking again on each invocation would
        read every row written so far each time (quadratic in the collection)."""
        other = Condition("LastEventTime", "ne", stamp.time)
        found, _ = self._reader.page(Query(Table.INVENTORY, *family_range(kind, service.key), (other,), high_rk="~"), 1)
        return not found

    def _reconcile_page(self, run: _Invocation, pairs: list[tuple[ResourceRef, dict[str, Any]]], read: bool = True) -> list[str]:
        """Add and update the rows of one page (reading their stored rows first, unless `read` is off); the RowKeys it saw."""
        observed: dict[Key, list[Change]] = {}
        for ref, resource in pairs:
            for group in detail_changes(ref, resource, run.stamp, SYNCED_TYPE, alive=Op.SYNCED):
                observed[resource_keys(group[0].ref)] = group
        if not observed:
            return []
        parents = {resource_keys(g[0].ref.parent) for g in observed.values() if g[0].ref.parent is not None}
        stored = self._stored(set(observed) | parents) if read else {}
        plans = self._plan(run.service, run.stamp, observed, {k: stored[k] for k in observed if k in stored}, set())
        run.note("write", 0, len(plans))
        self._write(plans, run.stamp, run.report, run.note, {k: r.entity for k, r in stored.items()},
                    renew=lambda: run.held.ensure(self.clock()))
        # A workspace deleted (by an event) since its listing: its cascade may have read the rows before these writes.
        workspace_cascade.inherit(self._reader, self._writer, [p.ref for p in plans if p.ref.workspace is not None])
        return sorted(rk for _, rk in observed)

    def _stored(self, keys: set[Key]) -> dict[Key, StoredRow]:
        return stored_rows(self._reader, keys)

    # -- tombstones ------------------------------------------------------------------------
    def _tombstones(self, run: _Invocation) -> SyncStop | None:
        """Stored rows no page saw, family by family: tombstoned once ARM confirms them gone (kinds listed
        completely only); a gateway instance follows its gateway; the rest is left as it is. The budget and ARM's
        pacing are checked before each GET; a stop mid-page keeps the first row not handled, and the next
        invocation reads the page again from there."""
        cp, service, report = run.held.checkpoint, run.service, run.report
        complete = set[str](LISTED) - set(cp.incomplete)
        seen = self._seen(service)
        listings: dict[str, set[str] | None] = {}  # a parent's children ARM lists (gateway API links): one GET a pass
        asked = paged = False
        while cp.family < len(TOP_LEVEL):
            if paged and run.out_of_time():
                return SyncStop.BUDGET
            paged, family = True, TOP_LEVEL[cp.family]
            entities, token = self._reader.page(rows_only(of_family(family, service.key)), SCAN_PAGE, cp.after)
            for entity in entities:
                at = f"{entity['PartitionKey']}\n{entity['RowKey']}"
                if cp.resume_at is not None and at < cp.resume_at:
                    continue
                if entity["RowKey"] in seen[family]:
                    if family is Kind.WORKSPACE and workspace_cascade.unfinished(entity):  # deleted by an event since S
                        self._finish_cascade(run, parse_path(service, entity["Path"]))
                    continue
                ref = parse_path(service, entity["Path"])
                # In a workspace the listing did not see (deleted, or the workspaces not listed completely): its
                # workspace's cascade, not this pass, tombstones it.
                unlisted = ref.workspace_ref is not None and resource_keys(ref.workspace_ref)[1] not in seen[Kind.WORKSPACE]
                if not FACTS[ref.kind].listed:  # a gateway instance, say: it only follows its parent
                    plan = _Plan(ref, None, [])
                elif entity["Kind"] in complete and not entity.get("IsDeleted") and not unlisted:
                    if asked and (stop := SyncStop.BUDGET if run.out_of_time() else self._pace(report)) is not None:
                        cp.resume_at = at  # saved as the invocation ends
                        return stop
                    asked, cp.resume_at = True, at  # a throttled GET leaves the checkpoint here, too
                    gone = self._gone(service, ref, listings)
                    if gone is None:  # ARM could not be read (logged, with why): kept, neither confirmed nor "unchanged"
                        cp.unconfirmed += 1
                        continue
                    if not gone:
                        cp.kept += 1
                        log.warning("sync %s: %s was not listed but ARM has it (pages shifted): kept", service.name, ref.path[:200])
                        report.count(ref.kind, SyncOutcome.UNCHANGED)
                        continue
                    plan = _Plan(ref, None, [Change(ref, Op.DELETED, run.stamp, TOMBSTONED_TYPE)])
                else:
                    if written_by(entity, run.stamp):  # tombstoned by this sync before a crash: its feed may be missing
                        self._writer.refeed(ref, run.stamp)
                    if entity["Kind"] in complete and not unlisted:  # a kind not listed completely was never compared
                        report.count(ref.kind, SyncOutcome.UNCHANGED)
                    if ref.kind is Kind.WORKSPACE and workspace_cascade.unfinished(entity):  # a cascade cut short
                        self._finish_cascade(run, ref)
                    continue
                run.held.ensure(self.clock())
                self._write_one(plan, run.stamp, report)
                if ref.kind is Kind.WORKSPACE:
                    self._finish_cascade(run, ref)
            cp.after, cp.resume_at = token, None
            if token is None:
                cp.family += 1
            run.held.commit(self.clock())
        cp.phase = CLEANUP
        run.held.commit(self.clock())
        return None

    def _finish_cascade(self, run: _Invocation, workspace: ResourceRef) -> None:
        """Give every row in a deleted workspace the workspace's deletion (shared.store.workspace_cascade): idempotent,
        so a cascade cut short, by a crash here or on the event path, is finished by the next pass that meets the
        workspace's row unmarked."""
        run.held.ensure(self.clock())
        for applied in workspace_cascade.cascade(self._reader, self._reader, self._writer, workspace):
            if applied.changed and applied.computed is not None:
                kind = parse_path(run.service, applied.computed["Path"]).kind
                run.report.count(kind, _outcome(applied.before, applied.computed))

    def _seen(self, service: ServiceRef) -> defaultdict[str, set[str]]:
        """The RowKeys every page of the listing saw, by family."""
        seen: defaultdict[str, set[str]] = defaultdict(set)
        for page in self._reader.scan(seen_pages(service.key)):
            for row in page:
                seen[str(row.entity["Family"])].update(seen_row_keys(row.entity))
        return seen

    def _gone(self, service: ServiceRef, ref: ResourceRef, listings: dict[str, set[str] | None]) -> bool | None:
        """True when ARM answers 404 for the resource (for a gateway's API link or a backend's rule, which have no
        GET of their own: when the gateway's links or the backend's rules, read once a pass into `listings`, no
        longer hold it), False when ARM has it, None when ARM could not be read (the row is kept, unconfirmed)."""
        try:
            if ref.kind is Kind.CIRCUIT_BREAKER_RULE or ref.kind in _LINKS:  # no GET of their own
                parent = f"{service.resource_id}/{within(ref.workspace, f'{ref.segments[0]}/{ref.segments[1]}')}"
                links = collection_of(ref.kind, in_workspace=ref.workspace is not None)
                collection = parent if ref.kind is Kind.CIRCUIT_BREAKER_RULE else f"{parent}/{links}"
                if collection not in listings:
                    listings[collection] = self._children_names(collection, ref.kind)
                names = listings[collection]
                if names is None:
                    log.error("sync %s: could not confirm that %s is gone (ARM's list of them could not be read), kept",
                              service.name, ref.path[:200])
                    return None
                return ref.name.lower() not in names
            self.arm.get(ref.resource_id)
            return False
        except ArmNotFound:
            return True
        except (ClientAuthenticationError, ArmThrottled):
            raise
        except AzureError as exc:
            log.error("sync %s: could not confirm that %s is gone, kept: %s", service.name, ref.path[:200], exc)
            return None

    def _children_names(self, parent: str, kind: Kind) -> set[str] | None:
        """The lower-cased names of a backend's rules (`parent` the backend) or of a link collection (`parent` a
        gateway's or a product's `apis`, a product's `groups`); empty when the parent is gone, None when ARM could not
        be read (every child is kept)."""
        try:
            if kind is Kind.CIRCUIT_BREAKER_RULE:
                breaker = resource_properties(self.arm.get(parent)).get("circuitBreaker")
                rules = breaker.get("rules") if isinstance(breaker, dict) else None
                return {str(r.get("name")).lower() for r in rules or [] if isinstance(r, dict)}
            return {str(item.get("name")).lower() for item in self.arm.list(parent)}
        except ArmNotFound:
            return set()
        except (ClientAuthenticationError, ArmThrottled):
            raise
        except AzureError as exc:
            log.error("could not read %s, its children are kept: %s", parent[-200:], exc)
            return None

    def _cleanup(self, run: _Invocation) -> None:
        cp, service = run.held.checkpoint, run.service
        scratch = [row for page in self._reader.scan(seen_pages(service.key), select=("PartitionKey", "RowKey")) for row in page]
        run.held.ensure(self.clock())
        self._deleter.delete_rows(Table.STATUS, scratch)
        cp.phase, cp.completed_at, cp.next_link, cp.after = DONE, self.clock(), None, None
        run.held.release(self.clock())
        if self.status is not None:
            self.status.note_sync(service.key, service.name, cp.started_at, not cp.incomplete, self.clock())
        report = run.report
        log.info(Line(SYNC, {"service": service.name, "startedAt": cp.started_at, "listed": report.listed, **report.counts,
                             "incomplete": sorted(report.incomplete), "invocations": cp.invocations, "kept": cp.kept,
                             "unconfirmed": cp.unconfirmed}))

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

    def _write(self, plans: list[_Plan], stamp: Stamp, report: SyncReport, note: Progress,
               stored: dict[Key, Entity] | None = None, renew: Callable[[], None] = lambda: None) -> None:
        """`stored`: rows read beside the plans' own (their parents), which children inherit a deletion from.
        `renew` runs before each transaction: a flush of many rows must not outlast the lease (LeaseLost stops it)."""
        latest: dict[Key, Entity] = {**(stored or {}), **{resource_keys(p.ref): p.row.entity for p in plans if p.row is not None}}
        batch: list[tuple[_Plan, Entity]] = []
        batches: list[list[tuple[_Plan, Entity]]] = []
        kept: list[tuple[Entity | None, Entity]] = []  # rows left as they are: their entries are upserted all the same
        done = 0

        def flush() -> None:
            batches.append(list(batch))
            batch.clear()

        for plan in plans:
            key = resource_keys(plan.ref)
            parent = latest.get(resource_keys(plan.ref.parent)) if plan.ref.parent else None
            new = _compute(plan.row.entity if plan.row else None, plan, parent, stamp)
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

    def _commit(self, batch: list[tuple[_Plan, Entity]], stamp: Stamp, report: SyncReport) -> None:
        try:
            if not self.transactions:
                raise WriteConflict("single-entity writes")
            notes = tuple(note for plan, entity in batch
                          for note in _sync_notes(plan.ref, stamp, self.clock)(plan.row.entity if plan.row else None, entity))
            self._writer.write_batch(batch[0][0].ref, [RowChange(entity, plan.row) for plan, entity in batch], notes, indexed=True)
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
        if not applied.changed and written_by(applied.before, stamp):
            self._writer.refeed(plan.ref, stamp)
        report.count(plan.ref.kind, SyncOutcome.SKIPPED if new is None else _outcome(applied.before, new) if applied.changed else SyncOutcome.UNCHANGED)


def stored_rows(reader: TableReader, keys: set[Key], spread: int = RANGE_SPREAD) -> dict[Key, StoredRow]:
    """The stored rows of these keys, per partition: one RowKey range from the lowest key to the highest, read while it
    returns at most `spread` rows per key wanted; the keys past where it stopped are read by point reads. ARM documents
    no order for a listing (docs/design.md), so a page's names may spread over a whole partition: the range then stops
    early, and the cost stays proportional to the page."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for pk, rk in keys:
        by_partition[pk].append(rk)
    found: dict[Key, StoredRow] = {}
    for pk, rks in sorted(by_partition.items()):
        limit, read, last = spread * len(rks), 0, None
        for page in reader.scan(rows_between(pk, min(rks), max(rks)), min(SCAN_PAGE, limit)):
            found.update((key, row) for row in page if (key := key_of(row.entity)) in keys)
            read, last = read + len(page), str(page[-1].entity["RowKey"])
            if read >= limit:
                break
        else:
            continue  # the whole range was read
        for rk in sorted(rk for rk in rks if last is None or rk > last):
            if (row := reader.get(Table.INVENTORY, pk, rk)) is not None:
                found[(pk, rk)] = row
    return found


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


@dataclass
class _Page:
    """A listed page not written yet."""

    kind: Kind
    pairs: list[tuple[ResourceRef, dict[str, Any]]]
    parents: list[str]
    link: str | None


@dataclass
class _Invocation:
    held: Held
    service: ServiceRef
    stamp: Stamp
    report: SyncReport
    note: Progress
    out_of_time: Callable[[], bool]
