"""`unused`: the live resources of a kind with no request in the last N days, including those never used, joined from
the inventory and the usage table's last-use rows; and `usage rejected`: the log lines that were not counted.

Requests of `unused`: the kind's rows as `list` reads them (one key range of its family, live rows), the tracking
rows (one partition), and per service one key range of the kind's last-use partition: it grows with the kind's rows
and the resources used, never with requests, hours or the rest of the tables. Requests of `usage rejected`: one day
partition per day of the window."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.domain.usage import resource_id
from shared.queries.changes import first_of
from shared.queries.summary import in_parallel
from shared.queries.usage import as_time, issue_token, read_token, tracked
from shared.store import usage_keys
from shared.store.keys import decode_part, of_kind
from shared.store.ports import Condition, Entity, TableReader

UNUSED_KINDS = (Kind.SUBSCRIPTION, Kind.API, Kind.PRODUCT, Kind.USER)
DEFAULT_DAYS, MAX_DAYS = 90, 3650
DEFAULT_REJECTED_SINCE = timedelta(days=7)
MAX_REJECTED_DAYS = 400


def parse_unused_kind(text: str | None) -> Kind:
    wanted = (text or "").strip().lower()
    for kind in UNUSED_KINDS:
        if kind.value.lower() == wanted:
            return kind
    raise InvalidQuery(f"kind must be one of {', '.join(UNUSED_KINDS)}, not {(text or '')[:60]!r}")


def parse_days(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_DAYS
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise InvalidQuery(f"days must be a whole number from 1 to {MAX_DAYS}")
    return int(text)


def _token(after: tuple[str, str], fields: dict[str, Any]) -> str:
    return issue_token({"after": list(after)}, fields)


def _after(text: str | None, fields: dict[str, Any]) -> tuple[str, str] | None:
    if not text:
        return None
    try:
        service, path = read_token(text, fields, ("after",))["after"]
    except (ValueError, TypeError, KeyError):
        raise InvalidQuery("continuationToken is not one this API issued") from None
    return str(service), str(path)


def unused(reader: TableReader, now: datetime, kind: Kind, days: int = DEFAULT_DAYS, service: str | None = None,
           top: int | None = None, continuation: str | None = None) -> dict[str, Any]:
    """Every live row of `kind` (of one service, by its name in any case) whose last request is older than now - days,
    or that never had one, by service and path; `top` of them after the token's. Each service says since when its logs
    were read (`trackedSince`, the earliest record seen): a resource of a service tracked for less than `days` may
    have been used before its logs were read (`trackedFully` false)."""
    fields = {"kind": kind.value, "days": days, "service": (service or "").lower()}
    after = _after(continuation, fields)
    cutoff = now - timedelta(days=days)
    rows = first_of(reader, of_kind(kind, service.lower() if service else None, (Condition("IsDeleted", "eq", False),)), None)
    by_service: dict[str, list[Entity]] = defaultdict(list)
    for row in rows:
        by_service[str(row.get("Service") or "").lower()].append(row)
    keys = sorted(by_service)
    last_use = dict(zip(keys, in_parallel(lambda key: _last_use(reader, key, kind), keys), strict=True))
    tracking = tracked(reader)
    began = {key: as_time(tracking[key].get("FirstRecordAt")) if key in tracking else None for key in keys}
    items: list[Entity] = []
    for key in keys:
        for row in by_service[key]:
            used = last_use[key].get(resource_id(str(row.get("Path") or row.get("Name") or "")))
            # LastUsedAt moves once an hour (the first write of the hour): a later use in that hour is possible, so a
            # resource is unused only when the whole hour of its last use is before the window.
            if used is not None and used.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) > cutoff:
                continue
            items.append({"service": str(row.get("Service") or key), "kind": kind.value, "path": str(row.get("Path") or ""),
                          "displayName": row.get("DisplayName"), "createdAt": row.get("CreatedDate") or row.get("CreatedAt"),
                          "lastUsedAt": used, "trackedSince": began[key], "workspace": str(row.get("Workspace") or "")})
    items.sort(key=lambda item: (item["service"].lower(), item["path"].lower()))
    if after is not None:
        items = [item for item in items if (item["service"].lower(), item["path"].lower()) > after]
    token = None
    if top is not None and len(items) > top:
        items = items[:top]
        token = _token((items[-1]["service"].lower(), items[-1]["path"].lower()), fields)
    tracked_services = [{"service": next((str(r.get("Service")) for r in by_service[key] if r.get("Service")), key),
                         "trackedSince": began[key], "trackedFully": _covers(began[key], cutoff)} for key in keys]
    return {"kind": kind.value, "days": days, "since": cutoff, "services": tracked_services, "count": len(items), "items": items,
            "continuationToken": token}


def _covers(began: datetime | None, cutoff: datetime) -> bool:
    return began is not None and began <= cutoff


def _last_use(reader: TableReader, service: str, kind: Kind) -> dict[str, datetime]:
    """When each resource of a kind was last used, by id: the kind's last-use partition, one key range."""
    found: dict[str, datetime] = {}
    for row in first_of(reader, usage_keys.last_use_rows(service, kind.value), None):
        moment = as_time(row.get("LastUsedAt"))
        if moment is not None:
            found[str(row.get("Id") or decode_part(str(row["RowKey"])))] = moment
    return found


def unused_notes(answer: dict[str, Any]) -> list[str]:
    """What the text output says above the list: the services whose logs cover less than the window."""
    notes = []
    for item in answer["services"]:
        began = item["trackedSince"]
        if began is None:
            notes.append(f"note: no gateway logs of service {item['service']} were read yet: its resources are listed because no "
                         "request of theirs could be seen, not because none was made")
        elif not item["trackedFully"]:
            notes.append(f"note: the gateway logs of service {item['service']} begin at {began.isoformat().replace('+00:00', 'Z')}, "
                         f"less than {answer['days']} days ago: a resource listed may have been used before then")
    return notes


def bad_lines(reader: TableReader, now: datetime, container: str, since: datetime | None = None) -> dict[str, Any]:
    """The log lines that were not counted (not JSON, not an object, no time, no resource id, too long), seen at or after
    `since` (default: 7 days ago), newest first: the day partitions from today back to since's day."""
    since = since or now - DEFAULT_REJECTED_SINCE
    if since > now:
        raise InvalidQuery("since must not be in the future")
    first_day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    while day >= first_day:
        days.append(day)
        day -= timedelta(days=1)
    if len(days) > MAX_REJECTED_DAYS:
        raise InvalidQuery(f"since is more than {MAX_REJECTED_DAYS} days ago: give a later one")
    items: list[Entity] = []
    for rows in in_parallel(lambda d: first_of(reader, usage_keys.bad_line_rows(container, d), None), days):
        found = [row for row in rows if (as_time(row.get("SeenAt")) or now) >= since]
        found.sort(key=lambda row: (str(row.get("Blob") or ""), int(row.get("Offset") or 0)))  # a blob's lines in order
        found.sort(key=lambda row: as_time(row.get("SeenAt")) or since, reverse=True)  # stable: the newest first
        items += [{"seenAt": as_time(row.get("SeenAt")), "container": str(row.get("Container") or container), "blob": row.get("Blob"),
                   "offset": row.get("Offset"), "reason": row.get("Reason"), "excerpt": row.get("Excerpt")} for row in found]
    return {"container": container, "since": since, "count": len(items), "items": items}
