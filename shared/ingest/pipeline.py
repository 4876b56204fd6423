"""One event's path from the trigger to the rows: parse, route, record, merge, write."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from shared.domain.errors import AlreadyRecorded, PermanentEventError
from shared.domain.events import InventoryEvent
from shared.domain.flags import FlagPolicy
from shared.domain.kinds import Kind
from shared.domain.model import PARENT_DELETE_TYPES, SCHEMA_VERSION, Change, Op, apply_changes, cascade_change, row_stamp
from shared.domain.outcomes import Outcome
from shared.domain.resources import ResourceRef, parse_path
from shared.domain.text import table_text
from shared.ingest.handlers import HANDLERS
from shared.integrations.alerts import LoggingAlertPublisher
from shared.integrations.trigger import TriggerInput, describe, parse_event
from shared.logs import Tally, event_line, service_of
from shared.store.keys import MAX_STRING_CHARS, child_ranges, history_keys, resource_keys
from shared.store.outbox import AlertOutbox
from shared.store.ports import InventoryRepository, StoredRow
from shared.store.status import StatusTracker
from shared.store.writer import Loaded, RowWriter

log = logging.getLogger("apim_inventory")


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_id: str | None
    event_type: str | None
    service: str | None
    reason: str | None = None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), sort_keys=True)


class Enricher(Protocol):
    """Details from the management plane for what an event names (shared.management.enrichment.Enricher,
    given by the composition root when ENRICH_FROM_ARM is on)."""

    def wants(self, ref: ResourceRef) -> bool:
        """Whether this kind of resource can be read from ARM."""

    def enrich(self, ref: ResourceRef) -> str:
        """Read the resource and merge its details; storage errors propagate."""


class EventProcessor:
    def __init__(self, repo: InventoryRepository, *, writer: RowWriter | None = None, conflict_retries: int = 10,
                 clock: Callable[[], datetime] = _utcnow, enricher: Enricher | None = None) -> None:
        self.repo = repo
        self.writer = writer or RowWriter(repo, AlertOutbox(repo, LoggingAlertPublisher()), FlagPolicy(), clock, conflict_retries)
        self.enricher = enricher  # set when ENRICH_FROM_ARM is on
        self.counts = Tally()  # outcomes since start, for summaries
        self.status = StatusTracker(repo)  # when each service last sent an event, written at most once a minute

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.writer.clock

    # -- entry points ---------------------------------------------------------------------
    def handle(self, trigger_input: TriggerInput) -> Result:
        """What the function calls. Permanent faults are recorded and acknowledged; storage
        faults raise, so Event Grid delivers the event again."""
        try:
            event = parse_event(trigger_input)
        except PermanentEventError as exc:
            return self._reject(describe(trigger_input), exc)
        return self.process(event)

    def process(self, event: InventoryEvent) -> Result:
        try:
            raised = self.writer.raised_here()
            changes = HANDLERS[event.type](event)
            primary = changes[0]
            row, parent_row = self._load(primary.ref)
            stale = row_stamp(self._merged(primary, row, parent_row)) != primary.stamp
            duplicate = self._record(event, primary, stale)
            wrote = self._apply(primary, loaded=(row, parent_row))
            for change in changes[1:]:
                wrote = self._apply(change) or wrote
            if primary.op == Op.DELETED and primary.ref.has_children:
                wrote = self._cascade(primary.ref) or wrote
            if self.enricher is not None:
                self._enrich(self.enricher, changes)
        except PermanentEventError as exc:
            return self._reject(_event_description(event), exc)
        if self.writer.raised_here() != raised:
            self.writer.outbox.flush(self.clock())
        outcome = Outcome.DUPLICATE if duplicate and not wrote else Outcome.STALE if stale else Outcome.APPLIED
        self.counts.add(outcome.value)
        log.info(event_line(outcome.value, event.id, event.type, event.service.name, event.subject))
        self.status.note(event.service.key, event.service.name, outcome.value, event.time, self.clock())
        return Result(outcome, event.id, event.type, event.service.name)

    # -- steps ----------------------------------------------------------------------------
    def _load(self, ref: ResourceRef, *, fresh: bool = False) -> tuple[StoredRow | None, StoredRow | None]:
        pk, rk = resource_keys(ref)
        parent_rk = resource_keys(ref.parent)[1] if ref.parent else None
        return self.repo.load(pk, rk, parent_rk, fresh=fresh)

    def _record(self, event: InventoryEvent, change: Change, stale: bool) -> bool:
        """Write the history record; True when this event was recorded before (a duplicate)."""
        pk, rk = history_keys(event.service.key, event.id)
        record = {
            "PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION,
            "EventId": event.id, "EventType": event.type, "EventTime": event.time,
            "Source": event.source, "Service": event.service.name, "ServiceKey": event.service.key,
            "Subject": event.subject, "Kind": change.ref.kind, "Path": change.ref.path, "PathKey": change.ref.key,
            "ResourceId": change.ref.resource_id, "Change": change.op.value, "Stale": stale,
            "Values": _json(change.values), "Schema": event.schema, "RecordedAt": self.clock(),
        }
        try:
            self.repo.add_history(record)
            return False
        except AlreadyRecorded as exc:
            old = exc.existing
            if (old.get("EventType"), old.get("PathKey")) != (event.type, change.ref.key):
                raise PermanentEventError(
                    "id-collision",
                    f"event id {event.id!r} was already used by {old.get('EventType')} on {old.get('Path')!r}",
                ) from None
            self.repo.note_duplicate(old, self.clock())
            return True

    def _apply(self, change: Change, loaded: Loaded | None = None) -> bool:
        """Merge one change into its row. True when the row changed."""
        pk, rk = resource_keys(change.ref)
        parent_rk = resource_keys(change.ref.parent)[1] if change.ref.parent else None
        return self.writer.write(pk, rk, parent_rk, lambda row, parent: self._merged(change, row, parent), loaded)

    @staticmethod
    def _merged(change: Change, row: StoredRow | None, parent_row: StoredRow | None) -> dict[str, Any]:
        return apply_changes(row.entity if row else None, [change], parent_row.entity if parent_row else None)

    def _enrich(self, enricher: Enricher, changes: list[Change]) -> None:
        """Details for what a Created or Updated event names, unless already read after the event;
        a backend's only on first sight, since breaker events come often."""
        for change in changes:
            if not enricher.wants(change.ref) or (change.op not in (Op.CREATED, Op.UPDATED) and change.ref.kind is not Kind.BACKEND):
                continue
            row, _ = self._load(change.ref)
            if row is None or row.entity.get("IsDeleted"):
                continue
            fetched = row.entity.get("DetailsKey")
            if fetched is None or (change.ref.kind is not Kind.BACKEND and fetched < change.stamp.encode()):
                enricher.enrich(change.ref)

    def _cascade(self, parent: ResourceRef) -> bool:
        """Apply the parent's newest deletion to every child row. Idempotent, so it runs on every
        delete, including a redelivery after a partial failure."""
        pk, prk = resource_keys(parent)
        parent_row, _ = self.repo.load(pk, prk, None)
        if parent_row is None:
            return False
        delete_type = PARENT_DELETE_TYPES[parent.kind]
        wrote = False
        for child in self.repo.children(pk, child_ranges(prk, parent.kind)):
            ref = parse_path(parent.service, child.entity["Path"])
            change = cascade_change(parent_row.entity, ref, delete_type)
            if change is not None:
                wrote = self._apply(change, loaded=(child, parent_row)) or wrote
        return wrote

    def _reject(self, payload: dict[str, Any], exc: PermanentEventError) -> Result:
        now = self.clock()
        event_id = payload.get("id")
        event_type = payload.get("type") or payload.get("eventType") or payload.get("Type")
        source = payload.get("source") or payload.get("topic")
        identity = _json([source, event_id, event_type, payload.get("subject"), exc.code])
        record = {
            "PartitionKey": now.strftime("%Y%m%d"),
            "RowKey": hashlib.sha256(identity.encode("utf-8", errors="surrogatepass")).hexdigest()[:40],
            "SchemaVersion": SCHEMA_VERSION, "EventId": _text(event_id), "EventType": _text(event_type),
            "Source": _text(source), "Subject": _text(payload.get("subject")), "Reason": exc.code,
            "Message": _text(exc.message), "Payload": _text(payload, MAX_STRING_CHARS // 2),
            "ReceivedAt": now,
        }
        self.repo.add_rejected(record)
        self.counts.add(Outcome.REJECTED.value)
        log.warning(event_line(Outcome.REJECTED, _text(event_id), _text(event_type), service_of(source), _text(payload.get("subject")),
                               reason=exc.code, source=_text(source), message=exc.message))
        return Result(Outcome.REJECTED, _text(event_id) or None, _text(event_type) or None, None, exc.code)


def _text(value: Any, limit: int = 1024) -> str:
    """A string of at most `limit` characters that Table Storage accepts (lone surrogates replaced)."""
    return table_text(value if isinstance(value, str) else "" if value is None else _json(value), limit)


def _event_description(event: InventoryEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "source": event.source, "subject": event.subject,
            "time": event.time.isoformat(), "data": event.data}
