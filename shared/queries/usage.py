"""`usage`: the requests of each resource in a window, from the usage table's hourly contributions and daily roll-ups
(docs/schema.md, "The usage table"), with its last use and whether the inventory has a row of it.

A window is read in whole clock hours: an hour counts when it overlaps [since, until). For a day a roll-up marker marks
(its hourly rows were folded into one daily row per resource and retired), the day's daily rows are read instead, so
the window widens to that whole day; the answer's `window` says what was read. Each hourly contribution is what one
read of one blob's byte range counted, its ids packed (several per hour and resource): the sums add them all.

Requests: the status rows and the tracking rows (the services whose logs were read), then per service and kind one
key range of roll-up markers and one key range per day of the window (its hours of the kind in the service's day
partition; a rolled day: one key range of its month's daily partition), then point reads for the entries returned
(their last-use row and their inventory row). It grows with the window's days x kinds and the rows they hold, never with the inventory or the
rest of the usage table. `unknown` checks entries in order until a page is full: its point reads grow with the
entries passed over too."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from shared.domain.errors import InvalidQuery, PermanentEventError
from shared.domain.kinds import FACTS, IN_WORKSPACE, Kind
from shared.domain.resources import ResourceRef, ServiceRef, parse_path, within
from shared.domain.usage import ALL_ACCESS_SUBSCRIPTION, COUNTED_KINDS, NO_SUBSCRIPTION, OPERATION, Counters
from shared.queries.changes import first_of
from shared.queries.inventory import NotFound
from shared.queries.summary import in_parallel, services
from shared.store import usage_keys
from shared.store.keys import decode_part, of_family
from shared.store.ports import Entity, Loaded, Query, Table, TableReader
from shared.store.usage_rows import counters_of, unpack

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
DEFAULT_SINCE = timedelta(hours=24)
DEFAULT_TOP, MAX_TOP = 50, 1000
MAX_HOURS = 24 * 400  # the longest window asked for in hours: RETENTION_USAGE_DAYS' default
SORTS: dict[str, Callable[[Counters], float]] = {
    "total": lambda c: c.total, "failed": lambda c: c.failed, "failure-rate": lambda c: c.failure_rate,
}
MAX_TOKEN = 4096
Key = tuple[str, str, str]  # service key, kind, id


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hours_between(since: datetime, until: datetime) -> list[datetime]:
    """The clock hours that overlap [since, until), oldest first."""
    hour, hours = floor_hour(since), []
    while hour < until:
        hours.append(hour)
        hour += HOUR
    return hours


def parse_sort(text: str | None) -> str:
    if not text:
        return "total"
    if text.strip().lower() not in SORTS:
        raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}, not {text[:60]!r}")
    return text.strip().lower()


def parse_usage_kind(text: str | None) -> str | None:
    if not text:
        return None
    if text.strip().lower() not in COUNTED_KINDS:
        raise InvalidQuery(f"kind must be one of {', '.join(COUNTED_KINDS)}, not {text[:60]!r}")
    return text.strip().lower()


def parse_count(text: str | None, what: str, default: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not text.strip().isdigit() or not 1 <= int(text) <= high:
        raise InvalidQuery(f"{what} must be a whole number from 1 to {high}")
    return int(text)


def path_of(kind: str, resource_id: str) -> str:
    """The inventory path an id stands for (`apis/echo-api;rev=2`; an operation `{api}/{op}`: `apis/{api}/operations/{op}`)."""
    if kind == OPERATION:
        api, _, operation = resource_id.partition("/")
        return f"{FACTS[Kind.API].collection}/{api}/operations/{operation}"
    return f"{FACTS[Kind(kind)].collection}/{resource_id}"


def as_time(value: object) -> datetime | None:
    """A time column as a datetime: the reader writes datetimes, text (ISO 8601) is read too."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def tracked(reader: TableReader) -> dict[str, Entity]:
    """The tracking rows by service key: the services whose logs were read, and since when (one partition)."""
    return {decode_part(str(row["RowKey"])): row for row in first_of(reader, usage_keys.tracking_rows(), None)}


def service_names(reader: TableReader, tracking: dict[str, Entity]) -> dict[str, str]:
    """Each service's name as the inventory writes it (its status row), else as its logs do."""
    names = {key: str(row.get("Service") or key) for key, row in tracking.items()}
    names.update(dict(services(reader)))
    return names


def sums(reader: TableReader, pairs: list[tuple[str, str]], hours: list[datetime]) -> tuple[dict[Key, Counters], list[datetime]]:
    """The counts of every resource of each (service, kind) over the hours, and the days read from roll-ups instead."""
    if not hours:
        return {}, []

    def rolled(pair: tuple[str, str]) -> set[str]:
        return {str(r["RowKey"]) for r in first_of(reader, usage_keys.rollup_marker_range(*pair, hours[0], hours[-1]), None)}

    by_day: dict[datetime, list[datetime]] = {}
    for hour in hours:
        by_day.setdefault(hour.replace(hour=0), []).append(hour)
    reads: dict[tuple[str, str, Query], bool] = {}  # (service, kind, query) -> whether it reads daily rows
    days: set[datetime] = set()
    for (service, kind), marked in zip(pairs, in_parallel(rolled, pairs), strict=True):
        for day, day_hours in by_day.items():
            if usage_keys.rollup_marker_keys(service, kind, day)[1] in marked:
                days.add(day)
                reads[(service, kind, usage_keys.daily_rows(service, kind, day))] = True
            else:
                reads[(service, kind, usage_keys.hourly_rows(service, kind, day_hours[0], day_hours[-1]))] = False
    counts: dict[Key, Counters] = {}
    found = in_parallel(lambda read: first_of(reader, read[2], None), list(reads))
    for (service, kind, _), daily, rows in zip(reads, reads.values(), found, strict=True):
        for row in rows:
            for resource, counters in ([(str(row.get("Id") or _id_of(str(row["RowKey"]))), counters_of(row))] if daily else unpack(row)):
                counts.setdefault((service, kind, resource), Counters()).merge(counters)
    return counts, sorted(days)


def _id_of(row_key: str) -> str:
    """A daily row's id from its RowKey (`{day}|{id}`), for a row without the Id column."""
    return decode_part(row_key.split("|", 1)[1])


@dataclass(frozen=True)
class UsageCursor:
    since: datetime
    until: datetime
    after: tuple[float, str, str, str]  # the last entry returned: -metric, path, service, kind


def issue_token(body: dict[str, Any], fields: dict[str, Any]) -> str:
    """A continuation token of the usage reports: where a page ended, and the question it answers (`fields`)."""
    return base64.urlsafe_b64encode(json.dumps({**body, **fields}, sort_keys=True).encode("utf-8")).decode("ascii")


def read_token(text: str, fields: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """The body of a token `issue_token` made (with the `required` entries) for the same question, or InvalidQuery."""
    if len(text) > MAX_TOKEN:
        raise InvalidQuery(f"continuationToken is longer than {MAX_TOKEN} characters")
    try:
        body = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        body = None
    if not isinstance(body, dict) or any(name not in body for name in required):
        raise InvalidQuery("continuationToken is not one this API issued")
    if any(body.get(name) != value for name, value in fields.items()):
        raise InvalidQuery("continuationToken was issued for other parameters: ask again without it")
    return body


def encode_cursor(cursor: UsageCursor, fields: dict[str, Any]) -> str:
    return issue_token({"since": cursor.since.isoformat(), "until": cursor.until.isoformat(), "after": list(cursor.after)}, fields)


def decode_cursor(text: str | None, fields: dict[str, Any]) -> UsageCursor | None:
    """A token this API issued, for the same question (`fields`: the filters and order it was issued for)."""
    if not text:
        return None
    body = read_token(text, fields, ("since", "until", "after"))
    not_ours = InvalidQuery("continuationToken is not one this API issued")
    try:
        since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
        metric, path, service, kind = body["after"]
        after = (float(metric), str(path), str(service), str(kind))
    except (ValueError, TypeError, KeyError):
        raise not_ours from None
    if since.tzinfo is None or until.tzinfo is None:
        raise not_ours
    return UsageCursor(since, until, after)


class RowLoader(Protocol):
    """The part of the InventoryRows port the report uses: a resource's row by its ref."""

    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded: ...


class InventoryLookup:
    """Whether the inventory has a row of a resource the logs name (live or a tombstone): a point read of the service's
    row, then, for a kind workspaces hold, of the row in each of the service's workspaces (read once per service), since
    a service's resource names are unique across its workspaces and the logs name no workspace."""

    def __init__(self, reader: TableReader, rows: RowLoader) -> None:
        self._reader = reader
        self._rows = rows
        self._workspaces: dict[str, list[str]] = {}

    def known(self, service: str, kind: str, resource_id: str) -> bool | None:
        """True or False; None where the inventory keeps no row to look for (operations, requests with no subscription)."""
        if kind == OPERATION or (kind == Kind.SUBSCRIPTION and resource_id == NO_SUBSCRIPTION):
            return None
        path = path_of(kind, resource_id)
        places: list[str | None] = [None]
        for workspace in places:
            try:
                ref = parse_path(ServiceRef("", "", service), within(workspace, path))
                if self._rows.load(ref, fresh=True)[0] is not None:  # as `show` reads a row: a revision reads its API's too
                    return True
            except PermanentEventError:  # an id no inventory row can have
                return False
            if workspace is None and Kind(kind) in IN_WORKSPACE:
                places.extend(self._workspaces_of(service))
        return False

    def _workspaces_of(self, service: str) -> list[str]:
        if service not in self._workspaces:
            rows = first_of(self._reader, of_family(Kind.WORKSPACE, service), None)
            self._workspaces[service] = sorted({str(r["Name"]).lower() for r in rows if r.get("Kind") == Kind.WORKSPACE and r.get("Name")})
        return self._workspaces[service]


def never_unknown(kind: str, resource_id: str) -> bool:
    """The built-in all-access subscription and operations are never listed by `--unknown`: the inventory may hold no
    row of them, and that is no news."""
    return kind == OPERATION or (kind == Kind.SUBSCRIPTION and resource_id in (ALL_ACCESS_SUBSCRIPTION, NO_SUBSCRIPTION))


def last_used(reader: TableReader, service: str, kind: str, resource_id: str) -> datetime | None:
    stored = reader.get(Table.USAGE, *usage_keys.last_use_keys(service, kind, resource_id))
    return as_time(stored.entity.get("LastUsedAt")) if stored else None


def entry(service: str, kind: str, resource_id: str, counts: Counters) -> Entity:
    return {"service": service, "kind": kind, "path": path_of(kind, resource_id), "id": resource_id, "total": counts.total,
            "successful": counts.successful, "failed": counts.failed, "unauthorized": counts.unauthorized, "other": counts.other,
            "backendFailed": counts.backend_failed, "failureRate": round(counts.failure_rate, 4),
            "averageMs": round(counts.average_ms, 1), "maxMs": counts.duration_max_ms}


def usage(reader: TableReader, rows: RowLoader, now: datetime, *, service: str | None = None, kind: str | None = None,
          since: datetime | None = None, until: datetime | None = None, top: int = DEFAULT_TOP, sort: str = "total",
          unknown: bool = False, continuation: str | None = None) -> dict[str, Any]:
    """One page of the resources' requests in the window (default: the last 24 hours), sorted by `sort` (descending),
    then path. `service` is a service's name (any case)."""
    sort, kind = parse_sort(sort), parse_usage_kind(kind)
    fields = {"service": (service or "").lower(), "kind": kind or "", "sort": sort, "unknown": unknown}
    cursor = decode_cursor(continuation, fields)
    since, until = (cursor.since, cursor.until) if cursor else (since or now - DEFAULT_SINCE, until or now)
    if until <= since:
        raise InvalidQuery("until must be after since")
    hours = hours_between(since, until)
    if len(hours) > MAX_HOURS:
        raise InvalidQuery(f"the window is longer than {MAX_HOURS // 24} days: give a later since")
    tracking = tracked(reader)
    names = service_names(reader, tracking)
    keys = sorted(tracking)
    if service is not None:
        if service.lower() not in tracking:
            read = ", ".join(sorted(names[k] for k in keys)[:20]) or "no service yet"
            raise NotFound(f"no gateway logs of service {service[:100]!r} were read: logs were read for {read}")
        keys = [service.lower()]
    pairs = [(s, k) for s in keys for k in ((kind,) if kind else COUNTED_KINDS)]
    counts, days = sums(reader, pairs, hours)
    metric = SORTS[sort]
    order = sorted(((-float(metric(c)), path_of(k, i), s, k, i) for (s, k, i), c in counts.items() if c.total))
    if cursor is not None:
        order = [o for o in order if o[:4] > cursor.after]
    lookup = InventoryLookup(reader, rows)
    items: list[Entity] = []
    more = False
    for negated, path, s, k, i in order:
        if len(items) == top:
            more = True
            break
        known = lookup.known(s, k, i)
        if unknown and (known is not False or never_unknown(k, i)):
            continue
        c = counts[(s, k, i)]
        items.append({**entry(names.get(s, s), k, i, c), "lastUsedAt": _latest(last_used(reader, s, k, i), as_time(c.last_at)),
                      "known": known, "_after": (negated, path, s, k)})
    token = encode_cursor(UsageCursor(since, until, items[-1]["_after"]), fields) if more and items else None
    window_from = min([hours[0], *days])
    window_until = max([hours[-1] + HOUR, *(d + DAY for d in days)])
    return {"since": since, "until": until, "window": {"from": window_from, "until": window_until, "rolledDays": days},
            "sort": sort, "count": len(items), "items": [{k: v for k, v in item.items() if k != "_after"} for item in items],
            "continuationToken": token}


def _latest(*moments: datetime | None) -> datetime | None:
    """The last-use row moves once an hour, the window's own rows know the last request in it: the later of both."""
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None
