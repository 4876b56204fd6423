"""Typed records into entities and back: what both adapters store, under the keys `shared.store.keys` gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.flags import Alert
from shared.domain.model import SCHEMA_VERSION
from shared.store.keys import PENDING_ALERTS, check_entity, legacy_history_keys, rejected_keys, seen_keys, sent_partition, status_keys
from shared.store.ports import Entity, HistoryRecord, RejectedRecord


def history_entity(record: HistoryRecord) -> Entity:
    pk, rk = legacy_history_keys(record.service_key, record.event_id)
    entity = {
        "PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION,
        "EventId": record.event_id, "EventType": record.event_type, "EventTime": record.event_time,
        "Source": record.source, "Service": record.service, "ServiceKey": record.service_key,
        "Subject": record.subject, "Kind": record.kind, "Path": record.path, "PathKey": record.path_key,
        "ResourceId": record.resource_id, "Change": record.change, "Stale": record.stale,
        "Values": record.values, "Schema": record.schema, "RecordedAt": record.recorded_at,
    }
    check_entity(entity)
    return entity


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
    }
    check_entity(entity)
    return entity


def outbox_entity(alert: Alert) -> Entity:
    entity = {
        "PartitionKey": PENDING_ALERTS, "RowKey": alert.id, "SchemaVersion": SCHEMA_VERSION, "AlertType": alert.type,
        "Source": alert.source, "Subject": alert.subject, "DetectedAt": alert.time, "Data": json.dumps(alert.data, sort_keys=True),
    }
    check_entity(entity)
    return entity


def sent_entity(alert: Alert, now: datetime) -> Entity:
    return {**outbox_entity(alert), "PartitionKey": sent_partition(now), "SentAt": now}


def alert_from_entity(entity: Mapping[str, Any]) -> Alert:
    return Alert(entity["RowKey"], entity["AlertType"], entity["Source"], entity["Subject"], entity["DetectedAt"],
                 json.loads(entity["Data"]))


def status_entity(service_key: str, entity: Entity) -> Entity:
    pk, rk = status_keys(service_key)
    return {**entity, "PartitionKey": pk, "RowKey": rk}


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
