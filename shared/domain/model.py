"""The inventory's state rules: a row is the merge of every change ever applied to it.

Every rule below is a max, a min or "the value of the newest change", so merging is
commutative, associative and idempotent: any order, with any duplicates, gives one row.
Ties in time are broken by event id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from shared.domain.details import DETAIL_COLUMNS, PERSONAL_COLUMNS
from shared.domain.kinds import Kind
from shared.domain.resources import ResourceRef

SCHEMA_VERSION = 1
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Op(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    CASCADE_DELETED = "cascadeDeleted"  # the parent's deletion, applied to a child
    TOKEN = "token"
    BREAKER = "breaker"
    OBSERVED = "observed"  # named by another resource's event: it exists
    SYNCED = "synced"  # listed by a full sync: it exists
    DETAILS = "details"  # the allow-listed fields of its ARM representation, read at the stamp's time
    ENRICH_FAILED = "enrichFailed"  # reading those fields failed: a later pass retries


ALIVE_OPS = frozenset({Op.CREATED, Op.UPDATED, Op.TOKEN, Op.BREAKER, Op.OBSERVED, Op.SYNCED})
READ_OPS = frozenset({Op.DETAILS, Op.ENRICH_FAILED})  # what was read about a resource, not something that happened to it
# The deletion type a parent's cascade carries into its children's LastEventType.
PARENT_DELETE_TYPES: dict[Kind, str] = {
    Kind.API: "Microsoft.ApiManagement.APIDeleted",
    Kind.GATEWAY: "Microsoft.ApiManagement.GatewayDeleted",
    Kind.PRODUCT: "Microsoft.ApiManagement.ProductDeleted",
}
DELETE_OPS = frozenset({Op.DELETED, Op.CASCADE_DELETED})


@dataclass(frozen=True, order=True)
class Stamp:
    """An event's place in the total order: time, then id."""

    time: datetime
    event_id: str

    def encode(self) -> str:
        return f"{self.time.strftime(_TIME_FORMAT)}|{self.event_id}"

    @classmethod
    def decode(cls, text: str) -> Stamp:
        when, _, event_id = text.partition("|")
        return cls(datetime.strptime(when, _TIME_FORMAT).replace(tzinfo=timezone.utc), event_id)


@dataclass(frozen=True)
class Change:
    ref: ResourceRef
    op: Op
    stamp: Stamp
    event_type: str
    values: dict[str, Any] = field(default_factory=dict)


def row_stamp(row: dict[str, Any] | None) -> Stamp | None:
    if not row or row.get("LastEventTime") is None:
        return None
    return Stamp(_aware(row["LastEventTime"]), str(row.get("LastEventId", "")))


def written_by(row: dict[str, Any] | None, stamp: Stamp) -> bool:
    """Whether a write stamped `stamp` reached the row: its liveness, its details or its newest deletion carry it
    (a later event may have moved the others since)."""
    if not row:
        return False
    current = row_stamp(row)
    return (current is not None and current == stamp) or stamp.encode() in (row.get("DetailsKey"), row.get("LastDeleteEventKey"))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _max_time(current: Any, candidate: datetime) -> datetime:
    return candidate if current is None or _aware(current) < candidate else _aware(current)


def _newer(key: str | None, stamp: Stamp) -> bool:
    return key is None or stamp.encode() > key


def new_row(ref: ResourceRef) -> dict[str, Any]:
    """A resource's columns before any change; the store gives it its keys (shared.store.keys)."""
    row: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION, "Kind": ref.kind.value,
        "Service": ref.service.name, "Name": ref.name, "Path": ref.path, "ResourceId": ref.resource_id,
        "IsDeleted": False, "Workspace": ref.workspace_name,
    }
    if ref.family is Kind.API:
        row["Api"] = ref.parent.name if ref.parent else ref.name
    if ref.revision is not None:
        row["Revision"] = ref.revision
    if ref.family is Kind.GATEWAY and ref.kind is not Kind.GATEWAY:
        row["Gateway"] = ref.segments[1]
    if ref.kind is Kind.GATEWAY_INSTANCE:
        row["Instance"] = ref.name
    if ref.family is Kind.BACKEND:
        row["Backend"] = ref.segments[1]
    if ref.family is Kind.PRODUCT and ref.kind is not Kind.PRODUCT:
        row["Product"] = ref.segments[1]
    if ref.kind is Kind.CIRCUIT_BREAKER_RULE:
        row["Rule"] = ref.name
    return row


_IDENTITY = ("Service", "Name", "Path", "ResourceId", "Api", "Gateway", "Instance", "Backend", "Rule", "Product", "Workspace")


def merge(row: dict[str, Any] | None, change: Change) -> dict[str, Any]:
    """The row after `change`. Does not modify `row`."""
    out = dict(row) if row else {}
    fresh = new_row(change.ref)
    for key, value in fresh.items():
        if key in _IDENTITY and key in out:
            out[key] = min(out[key], value)  # APIM ids ignore case: keep one original casing, the same in any order
        else:
            out.setdefault(key, value)
    stamp, op = change.stamp, change.op

    if op not in READ_OPS and _newer_than_row(out, stamp):
        out["LastEventTime"], out["LastEventId"], out["LastEventType"] = stamp.time, stamp.event_id, change.event_type
        out["IsDeleted"] = op in DELETE_OPS
        if op in DELETE_OPS:
            out["DeletedAt"] = stamp.time
        else:
            out.pop("DeletedAt", None)
    if op == Op.CREATED:
        out["CreatedAt"] = _max_time(out.get("CreatedAt"), stamp.time)
    if op in ALIVE_OPS:  # every change that shows the resource alive, so every live row has one
        out["UpdatedAt"] = _max_time(out.get("UpdatedAt"), stamp.time)
    if op == Op.DELETED and _newer(out.get("LastDeleteEventKey"), stamp):
        out["LastDeleteEventKey"] = stamp.encode()
    if op == Op.TOKEN and _newer(out.get("TokenEventKey"), stamp):
        out["TokenEventKey"] = stamp.encode()
        out["TokenExpiresAt"] = change.values["TokenExpiresAt"]
        out["TokenStatus"] = change.values["TokenStatus"]
    if op == Op.BREAKER:
        _merge_breaker(out, change)
    if op == Op.DETAILS and _newer(out.get("DetailsKey"), stamp):
        for column in DETAIL_COLUMNS.difference(change.values):
            out.pop(column, None)
        out.update(change.values)
        out["DetailsKey"], out["DetailsAt"] = stamp.encode(), stamp.time
    if op == Op.ENRICH_FAILED and _newer(out.get("EnrichmentFailedKey"), stamp):
        out["EnrichmentFailedKey"] = stamp.encode()
        out.update(change.values)
    _derive(out)
    return out


def _derive(out: dict[str, Any]) -> None:
    """Columns that follow from the others, so they too are the same in any order."""
    failed, fetched = out.get("EnrichmentFailedKey"), out.get("DetailsKey")
    if failed is not None:
        out["EnrichmentPending"] = (fetched is None or failed > fetched) and not out["IsDeleted"]
    # Personal data read before a user's newest deletion is never kept (GDPR erasure).
    deleted_key = out.get("LastDeleteEventKey")
    if out["Kind"] == Kind.USER and (out["IsDeleted"] or (deleted_key and (fetched or "") < deleted_key)):
        for column in PERSONAL_COLUMNS:
            out.pop(column, None)


def apply_changes(row: dict[str, Any] | None, changes: list[Change], parent: dict[str, Any] | None) -> dict[str, Any]:
    """The row after the changes, with the parent's newest deletion inherited."""
    out = row
    for change in changes:
        out = merge(out, change)
    assert out is not None
    return inherit(changes[0].ref, out, parent)


def inherit(ref: ResourceRef, row: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
    """`row` with its parent's newest deletion merged in (the row itself when there is none to take)."""
    if ref.parent is None or parent is None:
        return row
    inherited = cascade_change(parent, ref, PARENT_DELETE_TYPES[ref.parent.kind])
    return merge(row, inherited) if inherited is not None else row


def _newer_than_row(row: dict[str, Any], stamp: Stamp) -> bool:
    current = row_stamp(row)
    return current is None or stamp > current


def _merge_breaker(out: dict[str, Any], change: Change) -> None:
    state = change.values["BreakerState"]
    moment = change.stamp.time
    if state == "open":
        out["OpenedAt"] = _max_time(out.get("OpenedAt"), moment)
    else:
        out["ClosedAt"] = _max_time(out.get("ClosedAt"), moment)
    if _newer(out.get("BreakerEventKey"), change.stamp):
        out["BreakerEventKey"] = change.stamp.encode()
        out["BreakerState"] = state
        trip = change.values.get("TripDuration")
        if trip is not None:
            out["TripDuration"] = trip
        else:
            out.pop("TripDuration", None)


def cascade_change(parent_row: dict[str, Any] | None, child: ResourceRef, delete_type: str) -> Change | None:
    """The parent's newest deletion, as a change to apply to one of its children."""
    if not parent_row or not parent_row.get("LastDeleteEventKey"):
        return None
    return Change(child, Op.CASCADE_DELETED, Stamp.decode(parent_row["LastDeleteEventKey"]), delete_type)


def same_row(a: dict[str, Any] | None, b: dict[str, Any] | None, ignore: frozenset[str] = frozenset()) -> bool:
    if a is None or b is None:
        return a is b
    return all(a.get(k) == b.get(k) for k in set(a) | set(b) if k not in ignore)
