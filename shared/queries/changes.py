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
from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.queries.summary import in_parallel, services
from shared.store.keys import BY_EVENT, BY_RECORDED, feed_range
from shared.store.ports import Condition, Entity, Query, TableReader, Token

ORDERS = {"event": BY_EVENT, "recorded": BY_RECORDED}
TIME_COLUMN = {"event": "EventTime", "recorded": "RecordedAt"}
KEY_COLUMNS = frozenset({"PartitionKey", "RowKey", "HistoryPartition", "HistoryRow"})  # the store's, not the feed's
MAX_TOKEN = 4096


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


def feed_page(reader: TableReader, *, since: datetime, until: datetime, service_key: str | None = None,
              kind: Kind | None = None, by: str = "event", top: int = 100, continuation: str | None = None) -> ChangesPage:
    """One page of changes with since <= time < until (by event or recorded time), newest first. A continuation's
    window stands instead of `since` and `until`: the one its first page was asked for."""
    cursor = decode_cursor(continuation, by)
    if cursor is not None and cursor.since is not None and cursor.until is not None:
        since, until = cursor.since, cursor.until
    if until <= since:
        raise InvalidQuery("until must be after since")
    conditions = (Condition("ResourceKind", "eq", kind.value),) if kind else ()
    keys = [service_key] if service_key is not None else [key for key, _ in services(reader)]
    days = [feed_range(key, ORDERS[by], since, until, conditions, cursor.next if cursor else None) for key in keys]
    found = sorted((entry for entries in in_parallel(lambda queries: _newest(reader, queries, top + 1), days) for entry in entries),
                   key=lambda entry: str(entry["RowKey"]))
    token = encode_cursor(by, Cursor(found[top]["RowKey"], since, until)) if len(found) > top else None
    return ChangesPage([{k: v for k, v in entry.items() if k not in KEY_COLUMNS} for entry in found[:top]], token)


def _newest(reader: TableReader, days: list[Query], wanted: int) -> list[Entity]:
    """The first `wanted` entries of one service's days, newest day first (a day is read until `wanted` are found;
    an empty day still costs its request)."""
    found: list[Entity] = []
    for query in days:
        found.extend(_first(reader, query, wanted - len(found)))
        if len(found) >= wanted:
            break
    return found


def _first(reader: TableReader, query: Query, wanted: int) -> list[Entity]:
    """The first `wanted` entries of a key range (a page may come back short with a continuation: read on)."""
    found: list[Entity] = []
    token: Token | None = None
    while True:
        page, token = reader.page(query, wanted - len(found), token)
        found.extend(page)
        if token is None or len(found) >= wanted:
            return found
