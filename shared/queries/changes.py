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


def encode_cursor(by: str, row_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"by": by, "next": row_key}, sort_keys=True).encode("utf-8")).decode("ascii")


def decode_cursor(text: str | None, by: str) -> str | None:
    """The RowKey a page starts from, from a token this API issued for the same order."""
    if not text:
        return None
    if len(text) > MAX_TOKEN:
        raise InvalidQuery(f"continuationToken is longer than {MAX_TOKEN} characters")
    try:
        cursor = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise InvalidQuery("continuationToken is not one this API issued") from None
    if not isinstance(cursor, dict) or set(cursor) != {"by", "next"} or not isinstance(cursor["next"], str):
        raise InvalidQuery("continuationToken is not one this API issued")
    if cursor["by"] != by or not cursor["next"].startswith(f"{ORDERS[by]}|"):
        raise InvalidQuery(f"continuationToken was issued for by={str(cursor['by'])[:20]}, not by={by}")
    return cursor["next"]


def feed_page(reader: TableReader, *, since: datetime, until: datetime, service_key: str | None = None,
              kind: Kind | None = None, by: str = "event", top: int = 100, continuation: str | None = None) -> ChangesPage:
    """One page of changes with since <= time < until (by event or recorded time), newest first."""
    if until <= since:
        raise InvalidQuery("until must be after since")
    start = decode_cursor(continuation, by)
    conditions = (Condition("ResourceKind", "eq", kind.value),) if kind else ()
    keys = [service_key] if service_key is not None else [key for key, _ in services(reader)]
    days = [feed_range(key, ORDERS[by], since, until, conditions, start) for key in keys]
    found = sorted((entry for entries in in_parallel(lambda queries: _newest(reader, queries, top + 1), days) for entry in entries),
                   key=lambda entry: str(entry["RowKey"]))
    cursor = encode_cursor(by, found[top]["RowKey"]) if len(found) > top else None
    return ChangesPage([{k: v for k, v in entry.items() if k not in KEY_COLUMNS} for entry in found[:top]], cursor)


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
