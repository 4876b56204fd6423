"""A full sync's listing pass: the collections of the listing plan (shared.management.listing_plan), page by page
(ARM's nextLink), each page reconciled as it comes, a few pages at a time so that transactions fill up: its stored
rows are read (a RowKey range per partition), then written by the plan writer (shared.management.plan_writer). The
RowKeys a page saw are kept in a scratch entity, which the tombstone pass reads; the checkpoint
(shared.management.checkpoint) then moves past the page.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.domain.details import resource_properties
from shared.domain.errors import PermanentEventError, one_line
from shared.domain.kinds import FACTS, Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.outcomes import SyncStop
from shared.domain.resources import ResourceRef, ServiceRef, parse_path, within
from shared.integrations.arm import ArmClient, ArmThrottled
from shared.management import listing_plan
from shared.management.checkpoint import TOMBSTONES
from shared.management.enrichment import detail_changes
from shared.management.plan_writer import SYNCED_TYPE, Key, PlanWriter, plans_of
from shared.management.sync_invocation import Invocation, SyncReport, SyncStore
from shared.store import workspace_cascade
from shared.store.keys import family_range, key_of, resource_keys, rows_between
from shared.store.ports import Condition, Query, StoredRow, SyncRecords, Table, TableReader
from shared.store.writer import RowWriter

log = logging.getLogger("apim_inventory.sync")
SCAN_PAGE = 1000
RANGE_SPREAD = 4  # rows a page's range read may return per row it looks for, before point reads are cheaper
FLUSH_ROWS = 1600  # listed items reconciled together: about 100 rows a partition when a kind spreads over 16
# Kinds whose rows have no parent to inherit a deletion from: a first sync writes them without reading first.
_READ_FREE = frozenset({Kind.USER, Kind.PRODUCT, Kind.SUBSCRIPTION, Kind.GATEWAY, Kind.BACKEND})


@dataclass
class _Page:
    """A listed page not written yet."""

    kind: Kind
    pairs: list[tuple[ResourceRef, dict[str, Any]]]
    parents: list[str]
    link: str | None


class ListingPass:
    def __init__(self, arm: ArmClient, reader: SyncStore, writer: RowWriter, plans: PlanWriter, records: SyncRecords) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._plans = plans
        self._records = records

    def run(self, run: Invocation) -> SyncStop | None:
        """List page after page, reconciling them (a few pages at a time, so that transactions fill up); None when
        every collection is listed, else why it stopped. The checkpoint moves past pages once they are written."""
        cp, service, report = run.held.checkpoint, run.service, run.report
        units = listing_plan.units(self._reader, service, cp.unit)
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
            run.commit()

        while cp.unit < len(units):
            kind, collection = units[cp.unit]
            link = pending[-1].link if pending else cp.next_link
            if worked and run.out_of_time():
                flush()
                return SyncStop.BUDGET
            if worked and (stop := run.pace()) is not None:
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
            pairs, parents = page_items(service, collection, kind, items, report)
            pending.append(_Page(kind, pairs, parents, link))
            if link is None or sum(len(p.pairs) for p in pending) >= FLUSH_ROWS:
                flush()
                if cp.unit == len(units):  # the end of what the units listed so far name: the next stage, if any
                    units = listing_plan.units(self._reader, service, cp.unit)
        flush()
        listing_plan.unlisted_children(report.incomplete)
        cp.phase = TOMBSTONES
        run.commit()
        return None

    def _only_this_sync(self, service: ServiceRef, kind: Kind, stamp: Stamp) -> bool:
        """True when every row of the kind's family is this sync's (a first sync): its pages need no reads, since an
        insert of a row that appeared since fails (409) and falls back to reading and merging. Asked as the
        collection's listing begins, when the family holds at most the rows of a flush written before a crash: Azure
        answers the filter by reading the family's rows until one differs, so asking again on each invocation would
        read every row written so far each time (quadratic in the collection)."""
        other = Condition("LastEventTime", "ne", stamp.time)
        found, _ = self._reader.page(Query(Table.INVENTORY, *family_range(kind, service.key), (other,), high_rk="~"), 1)
        return not found

    def _reconcile_page(self, run: Invocation, pairs: list[tuple[ResourceRef, dict[str, Any]]], read: bool = True) -> list[str]:
        """Add and update the rows of one page (reading their stored rows first, unless `read` is off); the RowKeys it saw."""
        observed: dict[Key, list[Change]] = {}
        for ref, resource in pairs:
            for group in detail_changes(ref, resource, run.stamp, SYNCED_TYPE, alive=Op.SYNCED):
                observed[resource_keys(group[0].ref)] = group
        if not observed:
            return []
        parents = {resource_keys(g[0].ref.parent) for g in observed.values() if g[0].ref.parent is not None}
        stored = stored_rows(self._reader, set(observed) | parents) if read else {}
        plans = plans_of(run.service, run.stamp, observed, {k: stored[k] for k in observed if k in stored}, set())
        run.note("write", 0, len(plans))
        self._plans.write(plans, run.stamp, run.report, run.note, {k: r.entity for k, r in stored.items()}, renew=run.renew)
        # A workspace deleted (by an event) since its listing: its cascade may have read the rows before these writes.
        workspace_cascade.inherit(self._reader, self._writer, [p.ref for p in plans if p.ref.workspace is not None])
        return sorted(rk for _, rk in observed)


def page_items(service: ServiceRef, collection: str, kind: Kind, items: list[dict[str, Any]],
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
