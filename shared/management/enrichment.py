"""Details from the management plane for one resource: GET it from ARM, keep the allow-listed fields.

A failed GET never loses the event: the row keeps what the event said and is marked
`EnrichmentPending`, with the error and the earliest time to try again (ARM's Retry-After when it
gives one); `retry_pending` is the later pass.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError

from shared.domain.details import circuit_breaker_rule, detail_diff, details, resource_properties
from shared.domain.kinds import FETCHABLE, Kind, children, collection_of
from shared.domain.model import Change, Op, Stamp
from shared.domain.outcomes import EnrichmentOutcome
from shared.domain.resources import ResourceRef, parse_path, row_ref, within
from shared.integrations.arm import ArmClient, ArmError, ArmThrottled
from shared.logs import Tally
from shared.store.access_index import children_of
from shared.store.outbox import AlertOutbox
from shared.store.ports import Condition, Entity, HistoryRecord, Query, Table, TableReader
from shared.store.writer import RowWriter

log = logging.getLogger("apim_inventory.enrichment")
ENRICHED_TYPE = "ApimInventory.Enriched"
DETAILS_CHANGED_TYPE = "ApimInventory.DetailsChanged"
DEFAULT_RETRY = timedelta(minutes=5)
PENDING = Query(Table.INVENTORY, conditions=(Condition("EnrichmentPending", "eq", True),))


def detail_changes(ref: ResourceRef, resource: dict[str, Any], stamp: Stamp, event_type: str,
                   alive: Op | None = None) -> list[list[Change]]:
    """The changes one ARM resource makes, grouped per row: its details (after `alive`, when the read
    also proves it exists, as a sync's listing does), and for a backend each circuit-breaker rule of its
    configuration, which therefore exists."""
    properties = resource_properties(resource)

    def row(row_ref: ResourceRef, values: dict[str, Any], exists: Op | None) -> list[Change]:
        seen = [Change(row_ref, exists, stamp, event_type)] if exists else []
        return [*seen, Change(row_ref, Op.DETAILS, stamp, event_type, values)]

    groups = [row(ref, details(ref.kind, properties), alive)]
    if ref.kind is Kind.BACKEND:
        breaker = properties.get("circuitBreaker")
        rules = breaker.get("rules") if isinstance(breaker, dict) else None
        for rule in rules if isinstance(rules, list) else []:
            if isinstance(rule, dict) and isinstance(rule.get("name"), str) and rule["name"].strip():
                rule_ref = parse_path(ref.service, within(ref.workspace, f"{ref.segments[0]}/{ref.name}/circuit-breaker/rules/{rule['name']}"))
                groups.append(row(rule_ref, details(Kind.CIRCUIT_BREAKER_RULE, circuit_breaker_rule(rule)), alive or Op.OBSERVED))
    return groups


def management_record(ref: ResourceRef, stamp: Stamp, event_type: str, change: Op, before: Entity | None, after: Entity,
                      recorded_at: datetime) -> HistoryRecord:
    """The history record of what a management-plane read (a sync's listing, an enrichment) did to a row: its Values
    are the detail columns it changed (`detail_diff`)."""
    values = json.dumps(detail_diff(before, after), sort_keys=True, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    return HistoryRecord(ref=ref, event_id=stamp.event_id, event_type=event_type, event_time=stamp.time, source=ref.service.resource_id,
                         subject=f"/{ref.path}", change=change.value, stale=False, values=values, schema="apimInventory",
                         recorded_at=recorded_at)


def details_changed(ref: ResourceRef, stamp: Stamp, clock: Callable[[], datetime]) -> Callable[[Entity | None, Entity], tuple[HistoryRecord, ...]]:
    """The notes of a read that changes an existing row's details: one DetailsChanged record, or none."""
    def notes(before: Entity | None, after: Entity) -> tuple[HistoryRecord, ...]:
        if before is None or not detail_diff(before, after):
            return ()
        return (management_record(ref, stamp, DETAILS_CHANGED_TYPE, Op.DETAILS, before, after, clock()),)
    return notes


class Enricher:
    def __init__(self, arm: ArmClient, reader: TableReader, writer: RowWriter, outbox: AlertOutbox,
                 clock: Callable[[], datetime]) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._outbox = outbox
        self.clock = clock
        self.counts = Tally()  # outcomes since start, added to by the worker's threads

    @staticmethod
    def wants(ref: ResourceRef) -> bool:
        return ref.kind in FETCHABLE

    def enrich(self, ref: ResourceRef) -> EnrichmentOutcome:
        """GET the resource and merge its details: enriched, or pending / throttled when the row
        was marked for a later pass. Storage errors propagate (the caller's event is delivered again)."""
        started = self.clock()
        stamp = Stamp(started, "arm")
        try:
            resource = self.arm.get(ref.resource_id)
            members = self._members(ref, stamp) if ref.kind is Kind.PRODUCT else []
        except AzureError as exc:  # ArmError, or the network after the pipeline's retries
            status = f"{exc.status} {exc.code}" if isinstance(exc, ArmError) else type(exc).__name__
            wait = exc.retry_after if isinstance(exc, ArmError) and exc.retry_after is not None else None
            retry_at = started + (timedelta(seconds=wait) if wait is not None else DEFAULT_RETRY)
            values = {"EnrichmentError": status, "EnrichmentRetryAt": retry_at}
            self._write([[Change(ref, Op.ENRICH_FAILED, stamp, ENRICHED_TYPE, values)]])
            outcome = EnrichmentOutcome.THROTTLED if isinstance(exc, ArmThrottled) else EnrichmentOutcome.PENDING
            self.counts.add(outcome.value)
            log.warning("enrichment of %s %s (%s), retry after %s", ref.resource_id, outcome, status, retry_at.isoformat())
            return outcome
        self._write(detail_changes(ref, resource, stamp, ENRICHED_TYPE) + members)
        self.counts.add(EnrichmentOutcome.ENRICHED.value)
        return EnrichmentOutcome.ENRICHED

    def retry_pending(self) -> Counter[str]:
        """The later pass: every row marked pending whose retry time has come. Stops at the first
        throttling answer, since ARM asked to wait."""
        done: Counter[str] = Counter()
        rows, _ = self._reader.page(PENDING, None)
        now = self.clock()
        for row in rows:
            retry_at = row.get("EnrichmentRetryAt")
            if retry_at is not None and retry_at > now:
                done[EnrichmentOutcome.WAITING.value] += 1
                continue
            outcome = self.enrich(row_ref(row))
            done[outcome.value] += 1
            if outcome is EnrichmentOutcome.THROTTLED:
                break
        return done

    def _members(self, ref: ResourceRef, stamp: Stamp) -> list[list[Change]]:
        """A product's APIs and groups as ARM lists them now, and a deletion of each stored one it no longer lists (no
        event announces a change of either). A failed listing raises, so the product is marked pending instead."""
        groups: list[list[Change]] = []
        listed: set[str] = set()
        for kind in children(Kind.PRODUCT):
            collection = collection_of(kind, in_workspace=ref.workspace is not None)  # a workspace's: apiLinks, groupLinks
            for item in self.arm.list(f"{ref.resource_id}/{collection}"):
                name = item.get("name")
                if isinstance(name, str) and name and "/" not in name and "\n" not in name:
                    member = parse_path(ref.service, f"{ref.path}/{collection}/{name}")
                    listed.add(member.path.lower())
                    groups += detail_changes(member, item, stamp, ENRICHED_TYPE, alive=Op.OBSERVED)
        for query in children_of(ref):
            rows, _ = self._reader.page(query, None)
            groups += [[Change(row_ref(row), Op.DELETED, stamp, ENRICHED_TYPE)] for row in rows
                       if str(row["Path"]).lower() not in listed and not row.get("IsDeleted")]
        return groups

    def _write(self, groups: list[list[Change]]) -> None:
        """Each group into its row; the alerts a write raised are sent before the caller goes on."""
        applied = [self._writer.apply(changes[0].ref, changes, notes=_read_notes(changes[0].ref, changes[0].stamp, self.clock))
                   for changes in groups]
        if any(a.alerts for a in applied):
            self._outbox.flush(self.clock())


def _read_notes(ref: ResourceRef, stamp: Stamp, clock: Callable[[], datetime]) -> Callable[[Entity | None, Entity], tuple[HistoryRecord, ...]]:
    """What an enrichment did to a row: details changed; for a product's API or group, also found or no longer listed."""
    changed = details_changed(ref, stamp, clock)

    def notes(before: Entity | None, after: Entity) -> tuple[HistoryRecord, ...]:
        was, alive = before is not None and not before.get("IsDeleted"), not after.get("IsDeleted")
        if ref.kind in children(Kind.PRODUCT) and was != alive:
            return (management_record(ref, stamp, ENRICHED_TYPE, Op.OBSERVED if alive else Op.DELETED, before, after, clock()),)
        return changed(before, after)
    return notes
