"""`keys --older-than 90d` and GET /api/keys: the live subscriptions whose keys were not regenerated through
Resource Manager within the window, with owner — a lower bound. The regeneration times come from the Activity Log:
the newer of a subscription row's `PrimaryKeyRegeneratedAt`/`SecondaryKeyRegeneratedAt` (shared/audit/records.py sets
them when the row exists) and its succeeded regeneration audit records (beside the row, in its partition), so a
regeneration read before its subscription's row counts as one read after it; a key
regenerated in the developer portal or set by a PUT leaves no such record, and only records read since the archive
(or the backfill, 90 days back at most) began are known. A key is fresh when regenerated or created (`CreatedDate`)
within the window, stale when the newer of the two is older, unknown when neither is known.

Cost: two key ranges of the subscription family's partitions (16 a service, or of one service with `service`): their
rows (RowKey below `~`: live subscription rows, not the count rows or history records beside them) and their audit
records (`~a|`: every audit record of a subscription, of any operation). Nothing of another family, no history
record, no feed. A page reads them all again: the answer is ordered by service and path, which is not key order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain.audit import key_regenerations
from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.domain.times import parse_ago
from shared.queries.changes import first_of
from shared.queries.usage import as_time, issue_token, read_token
from shared.store.audit_keys import anchor_row, family_audit_rows, record_of
from shared.store.keys import of_kind, rows_only
from shared.store.ports import Condition, Entity, TableReader

DEFAULT_OLDER_THAN = timedelta(days=90)
STALE, UNKNOWN = "old", "unknown"  # a key regenerated and created before the window; neither known
LOWER_BOUND = ("A lower bound: only regenerations through Azure Resource Manager are recorded (the Activity Log); a key "
               "regenerated in the developer portal or set by a PUT leaves no record, and records older than the archive or "
               "the backfill (90 days) are not known. A subscription created within the window counts as fresh; one with "
               "neither a known creation nor a regeneration is unknown.")


def parse_older_than(text: str | None) -> timedelta:
    if text is None or text == "":
        return DEFAULT_OLDER_THAN
    found = parse_ago(text)
    if found is None or found <= timedelta(0) or found > timedelta(days=3650):
        raise InvalidQuery(f"older-than must be a duration such as 90d or 12w (at most 3650 days), not {text[:40]!r}")
    return found


def _key_status(created: datetime | None, regenerated: datetime | None, cutoff: datetime) -> str | None:
    """None when fresh (regenerated or created within the window), else stale or unknown."""
    known = max((t for t in (created, regenerated) if t is not None), default=None)
    if known is None:
        return UNKNOWN
    return None if known >= cutoff else STALE


def old_keys(reader: TableReader, now: datetime, older_than: timedelta = DEFAULT_OLDER_THAN, service: str | None = None,
             top: int | None = None, continuation: str | None = None) -> dict[str, Any]:
    cutoff = now - older_than
    fields = {"olderThanSeconds": int(older_than.total_seconds()), "service": (service or "").lower()}
    after = None
    if continuation:
        try:
            after = tuple(read_token(continuation, fields, ("after",))["after"])
        except (ValueError, TypeError, KeyError):
            raise InvalidQuery("continuationToken is not one this API issued") from None
    service_key = service.lower() if service else None
    query = rows_only(of_kind(Kind.SUBSCRIPTION, service_key, (Condition("IsDeleted", "eq", False),)))
    regenerated = _regenerations(reader, service_key)
    items = [item for row in first_of(reader, query, None)
             if (item := _item(row, regenerated.get((row["PartitionKey"], row["RowKey"]), {}), cutoff)) is not None]
    items.sort(key=lambda i: (i["service"].lower(), i["path"].lower()))
    if after is not None:
        items = [i for i in items if (i["service"].lower(), i["path"].lower()) > after]
    token = None
    if top is not None and len(items) > top:
        items = items[:top]
        token = issue_token({"after": [items[-1]["service"].lower(), items[-1]["path"].lower()]}, fields)
    return {"olderThanDays": round(older_than / timedelta(days=1), 3), "since": cutoff, "lowerBound": True, "note": LOWER_BOUND,
            "reads": "the subscription rows (live) and the audit records of the subscription family's partitions", "count": len(items), "items": items,
            "continuationToken": token}


def _regenerations(reader: TableReader, service_key: str | None) -> dict[tuple[str, str], dict[str, datetime]]:
    """Each subscription row's (keys) latest succeeded regenerations, by column, as its audit records hold them."""
    found: dict[tuple[str, str], dict[str, datetime]] = {}
    for entity in first_of(reader, family_audit_rows(Kind.SUBSCRIPTION.family, service_key), None):
        record = record_of(entity)
        regenerated = key_regenerations(record)
        row = anchor_row(record)
        if regenerated is None or row is None:
            continue
        column, at = regenerated
        columns = found.setdefault(row, {})
        columns[column] = max(at, columns.get(column, at))
    return found


def _latest(row: Entity, recorded: dict[str, datetime], column: str) -> datetime | None:
    """The newer of the row's column and its audit records' regeneration (either may be missing)."""
    return max((t for t in (as_time(row.get(column)), recorded.get(column)) if t is not None), default=None)


def _path(owner_id: str) -> str:
    """An owner's id as the inventory's paths spell it (`users/alice`): ARM gives the user's whole id."""
    at = owner_id.lower().find("/service/")
    return owner_id[at + len("/service/"):].split("/", 1)[-1] if at >= 0 else owner_id.lstrip("/")


def _item(row: Entity, recorded: dict[str, datetime], cutoff: datetime) -> dict[str, Any] | None:
    created = as_time(row.get("CreatedDate"))
    primary, secondary = _latest(row, recorded, "PrimaryKeyRegeneratedAt"), _latest(row, recorded, "SecondaryKeyRegeneratedAt")
    statuses = {"primaryKey": _key_status(created, primary, cutoff), "secondaryKey": _key_status(created, secondary, cutoff)}
    if not any(statuses.values()):
        return None
    status = UNKNOWN if UNKNOWN in statuses.values() and STALE not in statuses.values() else STALE
    return {"service": str(row.get("Service") or ""), "path": str(row.get("Path") or ""), "displayName": row.get("DisplayName"),
            "owner": _path(str(row.get("OwnerId") or "")), "createdAt": created, "primaryKeyRegeneratedAt": primary,
            "secondaryKeyRegeneratedAt": secondary, "primaryKey": statuses["primaryKey"] or "fresh",
            "secondaryKey": statuses["secondaryKey"] or "fresh", "status": status, "workspace": str(row.get("Workspace") or "")}
