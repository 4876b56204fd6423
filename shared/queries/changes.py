"""The change feed: every change across the inventory, newest first, by the time it happened in APIM (`event`) or by
when the app recorded it (`recorded`), at a cost proportional to the changes returned.

Each service's feed is one partition a UTC day (`shared.store.keys.feed_range`) whose RowKeys sort newest first in the
same way in every partition and across days, so a page reads each service's days newest first until it holds
`top + 1` entries, merges them by RowKey, and the RowKey of the first entry it does not return is the cursor of the
next page, for every service at once (its time names the day the next page starts from). A window of D days costs
at least D requests a service when the page is not filled sooner, even for empty days: it grows with the window's
length, never with the tables."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.audit_join import EVENT_TYPE, KEYS, audit_fields, matches
from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.queries.summary import in_parallel, services
from shared.store.keys import BY_EVENT, BY_RECORDED, feed_range, workspace_of_path
from shared.store.ports import Condition, Entity, Query, TableReader, Token

ORDERS = {"event": BY_EVENT, "recorded": BY_RECORDED}
TIME_COLUMN = {"event": "EventTime", "recorded": "RecordedAt"}
KEY_COLUMNS = frozenset({"PartitionKey", "RowKey", "HistoryPartition", "HistoryRow"})  # the store's, not the feed's
MAX_TOKEN = 4096
FILTERED_PAGE = 1000  # Table Storage's largest page: a filtered read keeps what it wants of each


@dataclass(frozen=True)
class ChangesPage:
    items: list[Entity]
    continuation: str | None


def parse_by(text: str | None) -> str:
    if text is None or text == "":
        return "event"
    if text.strip().lower() not in ORDERS:
        raise InvalidQuery(f"by must be event or recorded, not {text[:60]!r}")
    return text.strip().lower()


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts, and the window of the first page, resolved: a relative `since` ("24h") is worked out
    once, so every page of a listing reads the same window, however much later it is fetched."""

    next: str
    since: datetime | None = None  # None: a token issued before the window was kept in it
    until: datetime | None = None


def encode_cursor(by: str, cursor: Cursor) -> str:
    fields = {"by": by, "next": cursor.next}
    if cursor.since is not None and cursor.until is not None:
        fields.update(since=cursor.since.isoformat(), until=cursor.until.isoformat())
    return base64.urlsafe_b64encode(json.dumps(fields, sort_keys=True).encode("utf-8")).decode("ascii")


def decode_cursor(text: str | None, by: str) -> Cursor | None:
    """Where a page starts and its window, from a token this API issued for the same order."""
    if not text:
        return None
    if len(text) > MAX_TOKEN:
        raise InvalidQuery(f"continuationToken is longer than {MAX_TOKEN} characters")
    not_ours = InvalidQuery("continuationToken is not one this API issued")
    try:
        cursor = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise not_ours from None
    if not isinstance(cursor, dict) or set(cursor) not in ({"by", "next"}, {"by", "next", "since", "until"}) \
            or not all(isinstance(value, str) for value in cursor.values()):
        raise not_ours
    if cursor["by"] != by or not cursor["next"].startswith(f"{ORDERS[by]}|"):
        raise InvalidQuery(f"continuationToken was issued for by={str(cursor['by'])[:20]}, not by={by}")
    if "since" not in cursor:
        return Cursor(cursor["next"])
    try:
        since, until = datetime.fromisoformat(cursor["since"]), datetime.fromisoformat(cursor["until"])
    except ValueError:
        raise not_ours from None
    if since.tzinfo is None or until.tzinfo is None:
        raise not_ours
    return Cursor(cursor["next"], since, until)


def entry_workspace(entry: Entity) -> str:
    """A feed entry's workspace (lower case; "" at the service): its Workspace column, or for an entry written before
    that column, the workspace its Path names."""
    value = entry.get("Workspace")
    return str(value).lower() if isinstance(value, str) else workspace_of_path(str(entry.get("Path") or ""))


def feed_page(reader: TableReader, *, since: datetime, until: datetime, service_key: str | None = None,
              kind: Kind | None = None, by: str = "event", top: int = 100, continuation: str | None = None,
              workspace: str | None = None, audit_window: timedelta = timedelta(minutes=5)) -> ChangesPage:
    """One page of changes with since <= time < until (by event or recorded time), newest first. A continuation's
    window stands instead of `since` and `until`: the one its first page was asked for. `workspace` (a name in lower
    case, or "" for the service level) keeps the entries of that workspace: the feed's entries hold few columns and no
    key of the workspace, so they are read in the window's order and filtered here (`entry_workspace`), at a cost that
    grows with the window's changes, not with the tables."""
    cursor = decode_cursor(continuation, by)
    if cursor is not None and cursor.since is not None and cursor.until is not None:
        since, until = cursor.since, cursor.until
    if until <= since:
        raise InvalidQuery("until must be after since")
    conditions = (Condition("ResourceKind", "eq", kind.value),) if kind else ()
    keys = [service_key] if service_key is not None else [key for key, _ in services(reader)]
    days = [feed_range(key, ORDERS[by], since, until, conditions, cursor.next if cursor else None) for key in keys]
    keep = None if workspace is None else (lambda entry: entry_workspace(entry) == workspace)
    found = sorted((entry for entries in in_parallel(lambda queries: _newest(reader, queries, top + 1, keep), days) for entry in entries),
                   key=lambda entry: str(entry["RowKey"]))
    token = encode_cursor(by, Cursor(found[top]["RowKey"], since, until)) if len(found) > top else None
    return ChangesPage(with_callers([_item(entry) for entry in found[:top]], audit_window), token)


def with_callers(items: list[Entity], window: timedelta) -> list[Entity]:
    """The page's events joined with the page's audit records as history joins them (domain/audit_join.py): an event
    gets its caller and the record that explains it leaves the page; a record whose event is on another page (a
    minute or so from the page's edge) stays an entry of its own, and that event is shown without its caller."""
    audits = [i for i in items if i.get("EventType") == EVENT_TYPE]
    if not audits:
        return items
    events = [i for i in items if i.get("EventType") != EVENT_TYPE]
    records = [{**a, **{column: a.get(key) for column, key in KEYS.items()}} for a in audits]
    found = matches(events, records, window)
    joined_events = {id(events[i]): {**events[i], **audit_fields(records[j]), "auditJoined": True} for i, j in found.items()}
    explained = {id(audits[j]) for j in found.values()}
    return [joined_events.get(id(i), i) for i in items if id(i) not in explained]


def _item(entry: Entity) -> Entity:
    """A feed entry as a change: an audit record's (kinds with no events, failed attempts, every Activity Log record)
    with the audit keys of history's entries (`operation`, `result`, `callerKind`, …) instead of its row's columns."""
    item = {k: v for k, v in entry.items() if k not in KEY_COLUMNS}
    if entry.get("EventType") == EVENT_TYPE:
        item = {**{k: v for k, v in item.items() if k not in KEYS}, **audit_fields({**entry, "AuditTime": entry["EventTime"]})}
    return {**item, "Workspace": entry.get("Workspace", entry_workspace(entry))}


def _newest(reader: TableReader, days: list[Query], wanted: int, keep: Callable[[Entity], bool] | None = None) -> list[Entity]:
    """The first `wanted` entries of one service's days (those `keep` keeps), newest day first (a day is read until
    `wanted` are found; an empty day still costs its request)."""
    found: list[Entity] = []
    for query in days:
        found.extend(first_of(reader, query, wanted - len(found)) if keep is None else _first_kept(reader, query, wanted - len(found), keep))
        if len(found) >= wanted:
            break
    return found


def _first_kept(reader: TableReader, query: Query, wanted: int, keep: Callable[[Entity], bool]) -> list[Entity]:
    """The first `wanted` entries of a key range that `keep` keeps, read in Table Storage's largest pages; the ones
    past `wanted` are read again by the next page, from its cursor."""
    found: list[Entity] = []
    token: Token | None = None
    while True:
        page, token = reader.page(query, FILTERED_PAGE, token)
        found.extend(entry for entry in page if keep(entry))
        if token is None or len(found) >= wanted:
            return found[:wanted]


def first_of(reader: TableReader, query: Query, wanted: int | None) -> list[Entity]:
    """The first `wanted` entries of a key range (all of them when None; a page may come back short with a
    continuation: read on)."""
    found: list[Entity] = []
    token: Token | None = None
    while True:
        page, token = reader.page(query, None if wanted is None else wanted - len(found), token)
        found.extend(page)
        if token is None or (wanted is not None and len(found) >= wanted):
            return found
