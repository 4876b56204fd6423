"""One event's path from the trigger to the rows: parse, route, record, merge, write."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.errors import AlreadyRecorded, PermanentEventError
from shared.domain.events import InventoryEvent
from shared.domain.kinds import Kind
from shared.domain.model import PARENT_DELETE_TYPES, Change, Op, Stamp, apply_changes, cascade_change, row_stamp
from shared.domain.outcomes import Outcome
from shared.domain.resources import ResourceRef, parse_path
from shared.domain.text import table_text
from shared.ingest.handlers import HANDLERS
from shared.integrations.trigger import TriggerInput, describe, parse_event
from shared.logs import Tally, event_line, service_of
from shared.store import workspace_cascade
from shared.store.keys import MAX_STRING_CHARS
from shared.store.outbox import AlertOutbox
from shared.store.ports import HistoryLog, HistoryRecord, InventoryRows, RejectedLog, RejectedRecord, StoredRow
from shared.store.status import StatusTracker
from shared.store.writer import Applied, EventRecord, RowWriter

log = logging.getLogger("apim_inventory")


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_id: str | None
    event_type: str | None
    service: str | None
    reason: str | None = None
    message: str | None = None  # a rejected event's reason in words


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
    """Every collaborator is given (shared.bootstrap builds them): the ports it reads and records through, the
    one writer of rows, the outbox it flushes, the status rows it notes events in."""

    def __init__(self, rows: InventoryRows, history: HistoryLog, rejected: RejectedLog, writer: RowWriter,
                 outbox: AlertOutbox, status: StatusTracker, clock: Callable[[], datetime], *,
                 enricher: Enricher | None = None) -> None:
        self._rows = rows
        self._history = history
        self._rejected = rejected
        self.writer = writer
        self.outbox = outbox
        self.status = status  # when each service last sent an event, written at most once a minute
        self.clock = clock
        self.enricher = enricher  # set when ENRICH_FROM_ARM is on
        self.counts = Tally()  # outcomes since start, for summaries

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
            changes = HANDLERS[event.type](event)
            primary = changes[0]
            loaded = self._rows.load(primary.ref)
            # A workspace's deletion lives in another partition: folded in as known, and read again after the write
            # (shared.store.workspace_cascade), so a write racing the workspace's cascade still ends deleted.
            own = [primary, *workspace_cascade.deletion_of(self._rows, primary.ref)]
            duplicate = False
            try:  # the history record, the row and the count row: one transaction
                first = self.writer.apply(primary.ref, own, loaded=loaded, event=self._record(event, own))
                stored, stale = first.record, first.stale
            except AlreadyRecorded as exc:  # the same event on the same resource at the same time: a redelivery
                duplicate = True
                stored = self.writer.note_duplicate(primary.ref, StoredRow(exc.existing, exc.etag))
                stale = bool(stored.get("Stale"))
                first = self.writer.apply(primary.ref, own, loaded=loaded)  # after a partial failure, still applies
            if stored is not None:  # the change feed's entries; a redelivery writes them again, so a crash loses none
                self._history.add_feed([stored])
            applied = [first, *(self.writer.apply(change.ref, [change, *workspace_cascade.deletion_of(self._rows, change.ref)])
                                for change in changes[1:])]
            if primary.op == Op.DELETED and primary.ref.has_children:
                applied += self._cascade(primary.ref)
            applied += workspace_cascade.inherit(self._rows, self.writer, [c.ref for c in changes if c.ref.workspace is not None])
            if self.enricher is not None:
                self._enrich(self.enricher, changes, redelivered=duplicate)
        except PermanentEventError as exc:
            return self._reject(_event_description(event), exc)
        if any(a.alerts for a in applied):
            self.outbox.flush(self.clock())
        wrote = any(a.changed for a in applied)
        outcome = Outcome.DUPLICATE if duplicate and not wrote else Outcome.STALE if stale else Outcome.APPLIED
        self.counts.add(outcome.value)
        log.info(event_line(outcome.value, event.id, event.type, event.service.name, event.subject))
        self.status.note(event.service.key, event.service.name, outcome.value, event.time, self.clock())
        return Result(outcome, event.id, event.type, event.service.name)

    # -- steps ----------------------------------------------------------------------------
    def _record(self, event: InventoryEvent, changes: list[Change]) -> EventRecord:
        """The event's history record for the row as read: stale when the row already holds a newer event (or its
        workspace a newer deletion: `changes` after the event's own). Its key comes from the resource, the event's
        time and its id, so an id reused elsewhere is another event."""
        change = changes[0]

        def record(row: StoredRow | None, parent_row: StoredRow | None) -> HistoryRecord:
            stale = row_stamp(self._merged(changes, row, parent_row)) != change.stamp
            return HistoryRecord(
                ref=change.ref, event_id=event.id, event_type=event.type, event_time=event.time, source=event.source,
                subject=event.subject, change=change.op.value, stale=stale, values=_json(change.values), schema=event.schema,
                recorded_at=self.clock(),
            )
        return record

    @staticmethod
    def _merged(changes: list[Change], row: StoredRow | None, parent_row: StoredRow | None) -> dict[str, Any]:
        return apply_changes(row.entity if row else None, changes, parent_row.entity if parent_row else None)

    def _enrich(self, enricher: Enricher, changes: list[Change], *, redelivered: bool) -> None:
        """Details for what a Created or Updated event names, unless already read after the event;
        a backend's only on first sight, since breaker events come often. A redelivery (its record already there)
        heals the feed of the read instead; a late event that is new costs nothing more."""
        for change in changes:
            if not enricher.wants(change.ref) or (change.op not in (Op.CREATED, Op.UPDATED) and change.ref.kind is not Kind.BACKEND):
                continue
            row, _ = self._rows.load(change.ref)
            if row is None or row.entity.get("IsDeleted"):
                continue
            fetched = row.entity.get("DetailsKey")
            if fetched is None or (change.ref.kind is not Kind.BACKEND and fetched < change.stamp.encode()):
                enricher.enrich(change.ref)
            elif redelivered and fetched >= change.stamp.encode():  # read after this event, perhaps crashed before its feed
                self._refeed(change.ref, fetched)

    def _refeed(self, ref: ResourceRef, details_key: str) -> None:
        """The feed entries of the read that wrote the row's details (and a backend's rules' details), again: a crash
        between the read's transaction and its feed's is healed by the event's redelivery. A point read each."""
        stamp = Stamp.decode(details_key)
        self.writer.refeed(ref, stamp)
        if ref.kind is Kind.BACKEND:
            for rule in self._rows.children(ref):
                if rule.entity.get("DetailsKey") == details_key:
                    self.writer.refeed(parse_path(ref.service, rule.entity["Path"]), stamp)

    def _cascade(self, parent: ResourceRef) -> list[Applied]:
        """Apply the parent's newest deletion to every child row, in transactions of the partition. Idempotent, so
        it runs on every delete, including a redelivery after a partial failure."""
        parent_row, _ = self._rows.load(parent)
        if parent_row is None:
            return []
        delete_type = PARENT_DELETE_TYPES[parent.kind]
        items: list[tuple[ResourceRef, list[Change], StoredRow | None]] = []
        for child in self._rows.children(parent):
            ref = parse_path(parent.service, child.entity["Path"])
            change = cascade_change(parent_row.entity, ref, delete_type)
            if change is not None:
                items.append((ref, [change], child))
        return self.writer.apply_batch(items, parent_row)

    def _reject(self, payload: dict[str, Any], exc: PermanentEventError) -> Result:
        now = self.clock()
        event_id = payload.get("id")
        event_type = payload.get("type") or payload.get("eventType") or payload.get("Type")
        source = payload.get("source") or payload.get("topic")
        identity = _json([source, event_id, event_type, payload.get("subject"), exc.code])
        record = RejectedRecord(
            identity=identity, event_id=_text(event_id), event_type=_text(event_type), source=_text(source),
            subject=_text(payload.get("subject")), reason=exc.code, message=_text(exc.message),
            payload=_text(payload, MAX_STRING_CHARS // 2), received_at=now,
        )
        self._rejected.add_rejected(record)
        self.counts.add(Outcome.REJECTED.value)
        log.warning(event_line(Outcome.REJECTED, _text(event_id), _text(event_type), service_of(source), _text(payload.get("subject")),
                               reason=exc.code, source=_text(source), message=exc.message))
        return Result(Outcome.REJECTED, _text(event_id) or None, _text(event_type) or None, None, exc.code, exc.message)


def _text(value: Any, limit: int = 1024) -> str:
    """A string of at most `limit` characters that Table Storage accepts (lone surrogates replaced)."""
    return table_text(value if isinstance(value, str) else "" if value is None else _json(value), limit)


def _event_description(event: InventoryEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "source": event.source, "subject": event.subject,
            "time": event.time.isoformat(), "data": event.data}
