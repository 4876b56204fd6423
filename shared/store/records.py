"""Typed records into entities and back: what both adapters store, under the keys `shared.store.keys` gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.flags import Alert
from shared.domain.model import SCHEMA_VERSION
from shared.domain.resources import ResourceRef
from shared.store.keys import (
    BY_EVENT,
    BY_RECORDED,
    LAYOUT,
    LAYOUT_KEYS,
    PENDING_ALERTS,
    check_entity,
    feed_keys,
    history_keys,
    rejected_keys,
    seen_keys,
    sent_partition,
    status_keys,
)
from shared.store.ports import Entity, HistoryRecord, RejectedRecord

HISTORY = "history"  # RecordType of a history record: the inventory's filters on Kind and IsDeleted never match one
FEED_COLUMNS = ("HistoryPartition", "HistoryRow", "Service", "EventTime", "RecordedAt", "EventType", "EventId", "ResourceKind",
                "Path", "Change", "Stale", "Workspace")


def history_entity(record: HistoryRecord) -> Entity:
    """A history record beside its resource's row (layout 2): no Kind or IsDeleted column, ResourceKind instead."""
    ref = record.ref
    pk, rk = history_keys(ref, record.event_time, record.event_id)
    entity = {
        "PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION, "RecordType": HISTORY,
        "EventId": record.event_id, "EventType": record.event_type, "EventTime": record.event_time,
        "Source": record.source, "Service": ref.service.name, "ServiceKey": ref.service.key,
        "Subject": record.subject, "ResourceKind": ref.kind.value, "Path": ref.path, "PathKey": ref.key, "Workspace": ref.workspace_name,
        "ResourceId": ref.resource_id, "Change": record.change, "Stale": record.stale,
        "Values": record.values, "Schema": record.schema, "RecordedAt": record.recorded_at,
    }
    check_entity(entity)
    return entity


def from_legacy(old: Entity, ref: ResourceRef) -> Entity:
    """A layout-1 history record (history table, keyed by event id) as layout 2 keeps it; every column kept."""
    pk, rk = history_keys(ref, old["EventTime"], old["EventId"])
    kept = {k: v for k, v in old.items() if k not in ("PartitionKey", "RowKey", "Kind", "IsDeleted")}
    entity = {"PartitionKey": pk, "RowKey": rk, **kept, "RecordType": HISTORY, "ResourceKind": old.get("Kind", ref.kind.value)}
    check_entity(entity)
    return entity


def feed_entities(record: Entity) -> list[Entity]:
    """A history record's two change-feed entries: its keys and the columns the feed prints."""
    columns = {c: record[c] for c in FEED_COLUMNS[2:] if c in record}
    out = []
    for order, moment in ((BY_EVENT, record["EventTime"]), (BY_RECORDED, record["RecordedAt"])):
        pk, rk = feed_keys(record["ServiceKey"], order, moment, record["PartitionKey"], record["RowKey"])
        out.append({"PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION, "HistoryPartition": record["PartitionKey"],
                    "HistoryRow": record["RowKey"], **columns})
    return out


def duplicate_update(existing: Entity, now: datetime) -> Entity:
    """The columns a redelivery of a recorded event changes (a merge into the existing record)."""
    return {"PartitionKey": existing["PartitionKey"], "RowKey": existing["RowKey"],
            "Duplicates": int(existing.get("Duplicates", 0)) + 1, "LastDuplicateAt": now}


def rejected_entity(record: RejectedRecord) -> Entity:
    pk, rk = rejected_keys(record.received_at, record.identity)
    entity = {
        "PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION, "EventId": record.event_id,
        "EventType": record.event_type, "Source": record.source, "Subject": record.subject, "Reason": record.reason,
        "Message": record.message, "Payload": record.payload, "ReceivedAt": record.received_at,
        "Deliveries": 1, "LastReceivedAt": record.received_at,
    }
    check_entity(entity)
    return entity


def redelivered(existing: Entity, now: datetime) -> Entity:
    """The columns one more delivery of a recorded rejection changes (a merge)."""
    return {"PartitionKey": existing["PartitionKey"], "RowKey": existing["RowKey"],
            "Deliveries": int(existing.get("Deliveries", 1)) + 1, "LastReceivedAt": now}


def outbox_entity(alert: Alert) -> Entity:
    entity = {
        "PartitionKey": PENDING_ALERTS, "RowKey": alert.id, "SchemaVersion": SCHEMA_VERSION, "AlertType": alert.type,
        "Source": alert.source, "Subject": alert.subject, "DetectedAt": alert.time, "Data": json.dumps(alert.data, sort_keys=True),
    }
    check_entity(entity)
    return entity


def sent_entity(alert: Alert, now: datetime, sent_to: str = "topic") -> Entity:
    """The alert once published: `sent_to` the topic, or only the log (no topic configured)."""
    return {**outbox_entity(alert), "PartitionKey": sent_partition(now), "SentAt": now, "SentTo": sent_to}


def alert_from_entity(entity: Mapping[str, Any]) -> Alert:
    return Alert(entity["RowKey"], entity["AlertType"], entity["Source"], entity["Subject"], entity["DetectedAt"],
                 json.loads(entity["Data"]))


def status_entity(service_key: str, entity: Entity) -> Entity:
    pk, rk = status_keys(service_key)
    return {**entity, "PartitionKey": pk, "RowKey": rk}


def layout_marker(now: datetime) -> Entity:
    """The status table's row saying the store is in the current layout, since when its counts are kept."""
    return {"PartitionKey": LAYOUT_KEYS[0], "RowKey": LAYOUT_KEYS[1], "SchemaVersion": SCHEMA_VERSION, "Layout": LAYOUT, "CountsBuiltAt": now}


_KEYS_CHARS = 30_000  # per scratch column: under Table Storage's 32K-character strings


def seen_entity(service_key: str, unit: int, page: int, family: str, keys: list[str], parents: list[str]) -> Entity:
    """A listed page's scratch entity: the RowKeys it saw one a line, in as many columns as the string limit needs,
    and the names of the APIs or gateways on it."""
    pk, rk = seen_keys(service_key, unit, page)
    entity: Entity = {"PartitionKey": pk, "RowKey": rk, "Family": family, "Parents": "\n".join(parents)}
    chunks: list[list[str]] = [[]]
    size = 0
    for key in keys:
        if size + len(key) + 1 > _KEYS_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += len(key) + 1
    for column, chunk in enumerate(chunks):
        entity["Keys" if column == 0 else f"Keys{column}"] = "\n".join(chunk)
    return entity


def seen_row_keys(entity: Entity) -> list[str]:
    """The RowKeys a scratch entity holds."""
    keys: list[str] = []
    column = 0
    while (text := entity.get("Keys" if column == 0 else f"Keys{column}")) is not None:
        keys.extend(k for k in str(text).split("\n") if k)
        column += 1
    return keys
