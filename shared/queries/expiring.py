"""`expiring`: gateway tokens and subscriptions that expire within a window, soonest first, the expired ones first of
all; worked out at read time from the rows as they are, writing nothing (no flag, no alert).

Read from the count rows' `Expiring` lists (`shared.store.expiry_lists`), so the rows read are the rows listed.
Requests: the layout marker, the status rows, 32 point reads of count rows per service (the subscription and gateway
families' partitions), then one point read per row that expires within the window; a partition whose count row does
not know its rows (`ExpiringOverflow`, or written before the list) is read as rows instead: one query, filtered on
the kind and its expiry column."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.errors import InvalidQuery
from shared.domain.expiry import EXPIRY_COLUMNS, expiry_of
from shared.domain.times import parse_ago
from shared.queries.flags import flag_row_lists
from shared.queries.summary import check_layout, in_parallel
from shared.store.expiry_lists import EXPIRING_LIST
from shared.store.keys import partition_rows
from shared.store.ports import Condition, Entity, Table, TableReader

DEFAULT_WITHIN = "30d"
_KIND_OF = {kind.family: kind for kind in EXPIRY_COLUMNS}  # the one kind that expires in each family's partitions
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


def parse_within(text: str | None, what: str) -> timedelta:
    """A window ahead: `30d`, `24h`, `2w`, `90m` (one whole number and a unit)."""
    window = parse_ago(text if text is not None else DEFAULT_WITHIN)
    if window is None:
        raise InvalidQuery(f"{what} must be a duration ahead such as 30d, 24h, 2w or 90m, not {str(text)[:60]!r}")
    return window


def horizon(now: datetime, within: timedelta) -> datetime:
    """The end of the window (the latest time Table Storage holds, for a window longer than that)."""
    try:
        return now + within
    except OverflowError:
        return _LATEST


def expiring(reader: TableReader, now: datetime, within: timedelta) -> dict[str, Any]:
    """{"now", "until", "count", "items"}: the live rows whose expiry is at or before now + within, each with
    `ExpiresAt` and `Expired` (its time is past, or its token was reported expired); the expired first, then the
    soonest."""
    check_layout(reader)
    until = horizon(now, within)
    last = math.floor(until.timestamp())
    lists, unknown = flag_row_lists(reader, EXPIRING_LIST)
    wanted = [(pk, row_key) for pk, found in lists for row_key, seconds in found.items() if seconds <= last]
    rows = [stored.entity for stored in in_parallel(lambda keys: reader.get(Table.INVENTORY, *keys), wanted) if stored]
    for pk, family in unknown:
        kind = _KIND_OF[family]
        conditions = (Condition("Kind", "eq", kind.value), Condition("IsDeleted", "eq", False), Condition(EXPIRY_COLUMNS[kind], "le", until))
        rows += reader.page(partition_rows(pk, conditions), None)[0]
    items = [_item(row, moment, now) for row in rows if (moment := expiry_of(row)) is not None and moment <= until]
    items.sort(key=lambda item: (not item["Expired"], item["ExpiresAt"], str(item.get("Service", "")).lower(),
                                 str(item.get("Path", "")).lower()))
    return {"now": now, "until": until, "count": len(items), "items": items}


def _item(row: Entity, moment: datetime, now: datetime) -> Entity:
    # An Expired event is believed even before its time, as the token flags believe it (shared.domain.flags).
    expired = moment <= now or row.get("TokenStatus") == "expired"
    return {**row, "ExpiresAt": moment, "Expired": expired}
