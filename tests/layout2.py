"""Entities of layout 2 as docs/schema.md gives them (history records beside the rows, count rows, feed entries,
rejected counter rows, the layout marker), written straight into a store: the readers' tests build their tables
with these, so each reader is checked against the documented format by itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from shared.domain.resources import ResourceRef
from shared.store import keys
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, StoredRow, Table
from shared.store.table import TableStore


def put(store: InMemoryStore | TableStore, table: Table, entities: list[Entity]) -> None:
    """Upsert entities as they are (no writer's rules): the format under test, nothing else."""
    for entity in entities:
        if isinstance(store, TableStore):
            store._clients[table].upsert_entity(entity)
        else:
            value = StoredRow(dict(entity), "W/\"seed\"") if table in (Table.INVENTORY, Table.STATUS) else dict(entity)
            store._table(table)[keys.key_of(entity)] = value


@dataclass(frozen=True)
class Change:
    ref: ResourceRef
    event_type: str
    event_time: datetime
    event_id: str
    recorded_at: datetime
    change: str = "upsert"
    stale: bool = False


def history_record(c: Change) -> Entity:
    pk, rk = keys.history_keys(c.ref, c.event_time, c.event_id)
    return {"PartitionKey": pk, "RowKey": rk, "SchemaVersion": 2, "RecordType": "history", "EventId": c.event_id,
            "EventType": c.event_type, "EventTime": c.event_time, "Source": c.ref.service.resource_id, "Service": c.ref.service.name,
            "ServiceKey": c.ref.service.key, "Subject": "/" + c.ref.path, "ResourceKind": c.ref.kind.value, "Path": c.ref.path,
            "PathKey": c.ref.key, "ResourceId": c.ref.resource_id, "Change": c.change, "Stale": c.stale, "Values": "{}",
            "Schema": "cloudEvents", "RecordedAt": c.recorded_at}


def feed_entries(c: Change) -> list[Entity]:
    pk, rk = keys.history_keys(c.ref, c.event_time, c.event_id)
    columns = {"HistoryPartition": pk, "HistoryRow": rk, "Service": c.ref.service.name, "EventTime": c.event_time,
               "RecordedAt": c.recorded_at, "EventType": c.event_type, "EventId": c.event_id, "ResourceKind": c.ref.kind.value,
               "Path": c.ref.path, "Change": c.change, "Stale": c.stale}
    entries = []
    for order, moment in ((keys.BY_EVENT, c.event_time), (keys.BY_RECORDED, c.recorded_at)):
        fpk, frk = keys.feed_keys(c.ref.service.key, order, moment, pk, rk)
        entries.append({"PartitionKey": fpk, "RowKey": frk, **columns})
    return entries


def record(store: InMemoryStore | TableStore, changes: list[Change]) -> None:
    put(store, Table.INVENTORY, [history_record(c) for c in changes])
    put(store, Table.HISTORY, [e for c in changes for e in feed_entries(c)])


def status_row(service_key: str, name: str) -> Entity:
    pk, rk = keys.status_keys(service_key)
    return {"PartitionKey": pk, "RowKey": rk, "SchemaVersion": 2, "Service": name}


def marker(layout: int = keys.LAYOUT) -> Entity:
    pk, rk = keys.layout_keys()
    return {"PartitionKey": pk, "RowKey": rk, "Layout": layout, "CountsBuiltAt": datetime(2026, 11, 1)}


def events_column(minutes: dict[str, list[int]] | None = None, hours: dict[str, list[int]] | None = None) -> str:
    return json.dumps({"m": minutes or {}, "h": hours or {}})


def count_row(partition: str, service: str, family: str, live: dict[str, int], deleted: dict[str, int], events: str) -> Entity:
    return {"PartitionKey": partition, "RowKey": keys.COUNT_ROW, "Service": service, "ServiceKey": service.lower(), "Family": family,
            **{f"Live_{k}": n for k, n in live.items()}, **{f"Deleted_{k}": n for k, n in deleted.items()}, "Events": events}


def rejected_counter(day: datetime, events: str) -> Entity:
    pk, rk = keys.rejected_counter_keys(day)
    return {"PartitionKey": pk, "RowKey": rk, "Events": events}
