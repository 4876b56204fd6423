"""The keys and columns of audit records (docs/schema.md, "Audit records"): beside each resource's history in the
inventory table, and in the change feed.

    audit record    PK  the anchor's row partition ({family}|{service}|{bucket}), or, with no inventory kind above the
                        resource (a named value, a certificate, the service itself), ~audit|{service}|{collection}
                    RK  ~a|{top}|{rest}||{natural key hash, 32 hex}
    feed: change    PK  ~feed|{service}|{YYYYMMDD of its time}   RK  e|{inverted time}|{hash of the record's keys}
    feed: purge     PK  the same                                 RK  ar|{inverted time}|{hash of the record's keys}

`{top}|{rest}` is the resource's path as the history records' keys spell it (keys.history_keys): `apis|a|` for an API,
`apis|a|policies|policy` for its policy, so one resource's audit records are one key range, and a top-level
resource's with its children's another. The natural key (resourceId, operationName, correlationId, without regard to
case) names the row: the Start and the Success/Failure of one operation, and any re-read, land on it. The `e|` entry
puts the record in `changes` by event time; `ar|` is what RETENTION_AUDIT_DAYS purges by (history's `r|` entries are
never audit records, so the history purge keeps them)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from shared.domain.audit import AuditRecord, Caller, Target, parse_target
from shared.domain.audit_join import EVENT_TYPE
from shared.domain.resources import ResourceRef
from shared.store.keys import (
    BY_EVENT,
    FEED_PREFIX,
    check_key,
    encode_part,
    family_range,
    feed_keys,
    feed_partition,
    inverted_time,
    resource_keys,
    top_and_rest,
    workspace_of_path,
)
from shared.store.ports import Condition, Entity, Query, StoredRow, Table

AUDIT_PREFIX = "~a|"  # before the count rows ("~c") and the history records ("~h|"): after every row
AUDIT_PARTITION = "~audit|"  # after every family's partitions
BY_AUDIT = "ar"  # the feed's purge order for audit records (history's are e and r)
COLUMNS = ("AuditOperation", "AuditResult", "StartedAt", "CompletedAt", "CorrelationId", "CallerKind", "CallerName", "CallerUpn",
           "CallerAppId", "CallerObjectId", "ClientIp", "OperationName", "StatusCode")
PERSONAL = ("CallerName", "CallerUpn", "ClientIp")  # docs/schema.md, "Personal data"


def _path_part(target: Target) -> str:
    """`{top}|{rest}` as history's keys spell it ("" rest for a top-level resource), then the path below the anchor."""
    if target.anchor is None:
        return "|".join(encode_part(p.lower()) for p in target.path.split("/") if p)
    top, rest = top_and_rest(target.anchor)
    extra = target.path.split("/")[len(target.anchor.all_segments):]
    return "|".join([top, *([rest] if rest else []), *(encode_part(p.lower()) for p in extra)])


def subtree_prefix(target: Target) -> str:
    """The RowKey prefix of a resource's audit records and of every path below it's."""
    return f"{AUDIT_PREFIX}{_path_part(target)}|"


def own_prefix(target: Target) -> str:
    """The RowKey prefix of one resource's audit records: no segment is empty, so "||" ends the resource's part."""
    return f"{subtree_prefix(target)}|"


def partition_of(target: Target) -> str:
    if target.anchor is not None:
        return resource_keys(target.anchor)[0]
    return f"{AUDIT_PARTITION}{encode_part(target.service.key)}|{encode_part(target.collection) or '-'}"


def audit_keys(record: AuditRecord) -> tuple[str, str]:
    digest = hashlib.sha256("\n".join(record.natural_key).encode("utf-8", errors="surrogatepass")).hexdigest()[:32]
    pk, rk = partition_of(record.target), f"{own_prefix(record.target)}{digest}"
    check_key(pk, "PartitionKey")
    check_key(rk, "RowKey")
    return pk, rk


def check_keys(target: Target) -> None:
    """PermanentEventError when a target's audit keys would break Table Storage's limits."""
    check_key(partition_of(target), "PartitionKey")
    check_key(own_prefix(target) + "0" * 32, "RowKey")


def audit_range(ref: ResourceRef) -> Query:
    """One inventory resource's audit records with those of every path below it (its policies, operations, children):
    one key range in its partition. The reader keeps what it wants of them (by ResourceKind)."""
    target = Target(ref.service, ref.path, ref)
    prefix = subtree_prefix(target)
    return Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition_of(target)),), low_rk=prefix, high_rk=prefix[:-1] + "}")


def audit_entity(record: AuditRecord, recorded_at: datetime, *, ids_only: bool = False) -> Entity:
    caller = record.caller.ids_only() if ids_only else record.caller
    pk, rk = audit_keys(record)
    target = record.target
    return {"PartitionKey": pk, "RowKey": rk, "Service": target.service.name, "ServiceKey": target.service.key,
            "ResourceId": target.resource_id, "Path": target.path, "ResourceKind": target.kind, "Workspace": workspace_of_path(target.path),
            "AuditTime": record.time, "AuditOperation": record.operation, "AuditResult": record.result,
            "StartedAt": record.started_at, "CompletedAt": record.completed_at, "CorrelationId": record.correlation_id,
            "CallerKind": caller.kind, "CallerName": caller.name, "CallerUpn": caller.upn, "CallerAppId": caller.app_id,
            "CallerObjectId": caller.object_id, "ClientIp": "" if ids_only else record.client_ip, "OperationName": record.operation_name,
            "StatusCode": record.status_code, "RecordedAt": recorded_at}


def record_of(entity: Entity) -> AuditRecord:
    """The audit record a row holds (to fold another record of its operation into it)."""
    target = parse_target(str(entity["ResourceId"]))
    assert target is not None  # written from a parsed target
    caller = Caller(*(str(entity.get(c) or "") for c in ("CallerKind", "CallerName", "CallerUpn", "CallerAppId", "CallerObjectId")))
    return AuditRecord(target, str(entity["OperationName"]), str(entity["AuditOperation"]), str(entity["CorrelationId"]),
                       str(entity["AuditResult"]), entity.get("StartedAt"), entity.get("CompletedAt"), caller,
                       str(entity.get("ClientIp") or ""), str(entity.get("StatusCode") or ""))


def same_record(old: Entity, new: Entity) -> bool:
    return all(old.get(c) == new.get(c) for c in (*COLUMNS, "AuditTime"))


def feed_entities(entity: Entity) -> list[Entity]:
    """The record's two feed entries: `e|` (changes by event time) and `ar|` (the purge's), at its time."""
    columns: dict[str, Any] = {c: entity.get(c) for c in ("Service", "Path", "ResourceKind", "Workspace", *COLUMNS)}
    out = []
    for order in (BY_EVENT, BY_AUDIT):
        pk, rk = feed_keys(str(entity["ServiceKey"]), order, entity["AuditTime"], entity["PartitionKey"], entity["RowKey"])
        out.append({"PartitionKey": pk, "RowKey": rk, "HistoryPartition": entity["PartitionKey"], "HistoryRow": entity["RowKey"],
                    "EventTime": entity["AuditTime"], "RecordedAt": entity["RecordedAt"], "EventType": EVENT_TYPE,
                    "Change": f"{entity['AuditOperation']} {entity['AuditResult']}", **columns})
    return out


def stale_feed_entries(entity: Entity) -> list[StoredRow]:
    """The feed entries a record left at its start once it completed later (its time moved): to delete."""
    start, time = entity.get("StartedAt"), entity["AuditTime"]
    if start is None or start == time:
        return []
    keys = [feed_keys(str(entity["ServiceKey"]), order, start, entity["PartitionKey"], entity["RowKey"]) for order in (BY_EVENT, BY_AUDIT)]
    return [StoredRow({"PartitionKey": pk, "RowKey": rk}, "") for pk, rk in keys]


def purge_ranges(service_key: str, cutoff: datetime) -> list[Query]:
    """A service's `ar|` entries of records older than the cutoff: the whole days before the cutoff's, then its day."""
    prefix = f"{FEED_PREFIX}{encode_part(service_key)}|"
    today = feed_partition(service_key, cutoff)
    return [Query(Table.HISTORY, prefix, today, (), f"{BY_AUDIT}|", f"{BY_AUDIT}}}"),
            Query(Table.HISTORY, None, None, (Condition("PartitionKey", "eq", today),),
                  f"{BY_AUDIT}|{inverted_time(cutoff - timedelta(microseconds=1))}", f"{BY_AUDIT}}}")]


def purge_of(entries: list[StoredRow]) -> tuple[list[StoredRow], list[StoredRow]]:
    """What purging `ar|` entries (HistoryPartition, HistoryRow and EventTime read) deletes: their audit rows
    (inventory table), then both feed entries of each (history table), the record first (a crash between leaves
    entries the next purge finds again)."""
    records = [StoredRow({"PartitionKey": e.entity["HistoryPartition"], "RowKey": e.entity["HistoryRow"]}, "") for e in entries]
    feed = []
    for e in entries:  # both entries are in the day partition of the record's time
        _, event_rk = feed_keys("", BY_EVENT, e.entity["EventTime"], e.entity["HistoryPartition"], e.entity["HistoryRow"])
        feed += [StoredRow({"PartitionKey": e.entity["PartitionKey"], "RowKey": e.entity["RowKey"]}, ""),
                 StoredRow({"PartitionKey": e.entity["PartitionKey"], "RowKey": event_rk}, "")]
    return records, feed


def anchor_row(record: AuditRecord) -> tuple[str, str] | None:
    """The keys of the inventory row a record's anchor is (its subscription's, say), or None when it has none."""
    return resource_keys(record.target.anchor) if record.target.anchor is not None else None


def family_audit_rows(family: str, service_key: str | None = None) -> Query:
    """The audit records in one family's partitions (of one service, or of all): the `~a|` RowKey range of each, so
    neither the rows, the count rows nor the history records (`~h|`) beside them."""
    return Query(Table.INVENTORY, *family_range(family, service_key), (), AUDIT_PREFIX, AUDIT_PREFIX[:-1] + "}")


def target_range(target: Target) -> Query:
    """The audit records of one path the inventory has no kind for (a named value, an API's policy), and below it."""
    prefix = subtree_prefix(target)
    return Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition_of(target)),), low_rk=prefix, high_rk=prefix[:-1] + "}")
