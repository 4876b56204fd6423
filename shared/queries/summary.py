"""`summary`: exact live and deleted counts per service and kind, and the events of the last hour and day, from the
count rows alone (layout 2): one key-range read per partition that may hold them (its flag row and shards), never a
read of the rows or the history.

Requests: the layout marker, the status rows (the services), services x families x buckets range reads of count rows
(96 per service, each returning at most 1 + COUNT_SHARDS entities), and the rejected counter rows of today and
yesterday, and one key range of each service's daily count snapshots (at most 31 rows: the change over 7 and 30
days): a number that grows with the services, never with the rows or the events. The request totals add the
tracking rows of the usage table (one partition: the services whose gateway logs were read) and, per such service, the
`service` pseudo-kind's hourly contributions of the 25 hours the last day's window overlaps, a key range per day
(`request_totals`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from shared.domain.kinds import TOP_LEVEL
from shared.domain.outcomes import Outcome
from shared.domain.trends import READ_DAYS, SPANS, change
from shared.domain.usage import SERVICE_TOTAL, Counters
from shared.queries.workspaces import shown
from shared.store.counts import EVENT_OUTCOMES, WINDOWS, window_start, window_totals, workspace_counts
from shared.store.keys import (
    LAYOUT,
    LAYOUT_KEYS,
    count_partitions,
    count_range,
    day_of_snapshot,
    decode_part,
    rejected_count_keys,
    service_of_status,
    snapshot_range,
    status_rows,
)
from shared.store.long_text import read_long
from shared.store.ports import Entity, Query, Table, TableReader
from shared.store.usage_keys import hour_of_row, hourly_rows, tracking_rows
from shared.store.usage_rows import unpack

READERS = 8  # concurrent point reads: within the Table client's connection pool (10)
LIVE, DELETED = "Live_", "Deleted_"
_In = TypeVar("_In")
_Out = TypeVar("_Out")


class NotMigrated(Exception):
    """The tables are in an older layout: the command's exit code 1, the API's 503."""


def in_parallel(work: Callable[[_In], _Out], items: Iterable[_In]) -> list[_Out]:
    """`work` on every item, a few at a time, results in the items' order."""
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return list(pool.map(work, items))


def services(reader: TableReader) -> list[tuple[str, str]]:
    """(service key, name) of every service with a status row: every service that ever sent an event or was synced."""
    rows, _ = reader.page(status_rows(), None)
    return [(service_of_status(row["RowKey"]), str(row.get("Service") or service_of_status(row["RowKey"]))) for row in rows]


def check_layout(reader: TableReader) -> None:
    marker = reader.get(Table.STATUS, *LAYOUT_KEYS)
    if marker is None or int(marker.entity.get("Layout") or 0) < LAYOUT:
        raise NotMigrated("the inventory is in layout 1: run `apim-inventory migrate`")


def summarize(reader: TableReader, now: datetime, workspace: str | None = None) -> dict[str, Any]:
    """The counts and the event windows. `workspaces` counts each workspace's rows (its own row among them) per service
    and kind, from the count rows' `Workspaces`; with `workspace` (a name in lower case, or "" for the service level:
    the totals less every workspace's) `resources` holds that workspace's counts alone. The event windows are the
    services' whole: the count rows do not split them by workspace."""
    check_layout(reader)
    known = services(reader)
    partitions = [(name, pk) for key, name in known for pk in count_partitions(key, TOP_LEVEL)]
    count_rows = in_parallel(lambda item: (item[0], reader.page(count_range(item[1]), None)[0]), partitions)
    rejected = [reader.get(Table.REJECTED, *rejected_count_keys(day)) for day in (now - timedelta(days=1), now)]
    counts: dict[str, Counter[tuple[str, str]]] = {LIVE: Counter(), DELETED: Counter()}
    events = {window: [0] * len(EVENT_OUTCOMES) for window in WINDOWS}
    in_workspaces: dict[str, Counter[tuple[str, str, str]]] = {LIVE: Counter(), DELETED: Counter()}
    for name, rows in count_rows:
        for row in rows:
            for column, value in row.items():
                for prefix, counter in counts.items():
                    if column.startswith(prefix) and isinstance(value, int):
                        counter[(name, column[len(prefix):])] += value
            for ws, columns in workspace_counts(row).items():
                for column, value in columns.items():
                    for prefix, counter3 in in_workspaces.items():
                        if column.startswith(prefix):
                            counter3[(name, ws, column[len(prefix):])] += value
            _add(events, window_totals(row.get("Events"), now, len(EVENT_OUTCOMES)))
    rejections = {window: [0] for window in WINDOWS}
    for stored in rejected:
        if stored is not None:
            _add(rejections, window_totals(stored.entity.get("Events"), now, 1))
    triples = sorted(t for t in set(in_workspaces[LIVE]) | set(in_workspaces[DELETED]) if in_workspaces[LIVE][t] or in_workspaces[DELETED][t])
    per_workspace = [{"service": s, "workspace": w, "kind": k, "live": in_workspaces[LIVE][(s, w, k)],
                      "deleted": in_workspaces[DELETED][(s, w, k)]} for s, w, k in triples]
    chosen: dict[str, Any] = {}
    if workspace is not None:
        for state, total in counts.items():  # one workspace's, or the service level's: the totals less every workspace's
            mine: Counter[tuple[str, str]] = Counter()
            for (s, w, k), n in in_workspaces[state].items():
                if not workspace or w == workspace:
                    mine[(s, k)] += n
            if not workspace:
                rest = Counter(total)
                rest.subtract(mine)
                mine = rest
            counts[state] = mine
        per_workspace = [item for item in per_workspace if item["workspace"] == workspace]
        chosen = {"workspace": shown(workspace)}
    pairs = sorted(pair for pair in set(counts[LIVE]) | set(counts[DELETED]) if counts[LIVE][pair] or counts[DELETED][pair])
    taken = in_parallel(lambda item: (item[1], snapshot_counts(reader, item[0], now, workspace)), known)
    past = dict(taken)
    return {
        "generatedAt": now, **chosen,
        "resources": [{"service": s, "kind": k, "live": counts[LIVE][(s, k)], "deleted": counts[DELETED][(s, k)]} for s, k in pairs],
        "trends": [{"service": s, "kind": k, **changes_of(past.get(s, {}), k, counts[LIVE][(s, k)], counts[DELETED][(s, k)], now)}
                   for s, k in pairs],
        "snapshots": [{"service": name, "first": _day(min(days, default=None)), "last": _day(max(days, default=None)),
                       "daily": [{"day": day.isoformat(), "live": sum(n for (_, state), n in days[day].items() if state == LIVE),
                                  "deleted": sum(n for (_, state), n in days[day].items() if state == DELETED)} for day in sorted(days)]}
                      for name, days in taken],
        "workspaces": per_workspace,
        "events": {window: {**dict(zip(EVENT_OUTCOMES, events[window], strict=True)), Outcome.REJECTED: rejections[window][0]}
                   for window in WINDOWS},
        "windows": {window: {"from": window_start(now, window)} for window in WINDOWS},
        **request_totals(reader, now, dict(known)),
    }


def snapshot_counts(reader: TableReader, service_key: str, now: datetime, workspace: str | None) -> dict[date, Counter[tuple[str, str]]]:
    """The service's daily snapshots of the last READ_DAYS days (one key range): per day, (kind, LIVE or DELETED) ->
    count, of the whole service, of one workspace, or ("") of the service level alone, as `summarize` counts."""
    rows = reader.page(snapshot_range(service_key, now - timedelta(days=READ_DAYS), now), None)[0]
    found: dict[date, Counter[tuple[str, str]]] = {}
    for row in rows:
        day = found.setdefault(day_of_snapshot(str(row["RowKey"])).date(), Counter())
        for column, value in row.items():
            for state in (LIVE, DELETED):
                if column.startswith(state) and isinstance(value, int):
                    day[(column[len(state):], state)] += value
        if workspace is not None:
            mine: Counter[tuple[str, str]] = Counter()
            for item in json.loads(read_long(row, "Workspaces") or "[]"):
                if not workspace or item["workspace"] == workspace:
                    mine[(item["kind"], LIVE)] += int(item["live"])
                    mine[(item["kind"], DELETED)] += int(item["deleted"])
            if not workspace:
                day.subtract(mine)
            else:
                day.clear()
                day.update(mine)
    return found


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def changes_of(days: dict[date, Counter[tuple[str, str]]], kind: str, live: int, deleted: int, now: datetime) -> dict[str, int | None]:
    """liveChange7d, liveChange30d, deletedChange7d, deletedChange30d (None: no snapshot that old)."""
    found: dict[str, int | None] = {}
    for state, count, name in ((LIVE, live, "live"), (DELETED, deleted, "deleted")):
        for span in SPANS:
            found[f"{name}Change{span}d"] = change(count, {day: c[(kind, state)] for day, c in days.items()}, now.date(), span)
    return found


# The request windows are whole clock hours (the usage table counts by hour): those that overlap the last 60 minutes
# (two: the current hour and the one before), and those that overlap the last 24 hours (25).
REQUEST_WINDOWS = {"lastHour": timedelta(minutes=60), "lastDay": timedelta(hours=24)}
REQUEST_COUNTS = ("total", "successful", "failed", "unauthorized", "other", "backendFailed")


def request_totals(reader: TableReader, now: datetime, names: dict[str, str]) -> dict[str, Any]:
    """Each service's requests in the clock hours overlapping the last hour and the last day, from its `service`
    pseudo-kind's hourly contributions: the tracking rows, then a key range per day the 25 hours span (2) per tracked
    service."""
    tracking, _ = reader.page(tracking_rows(), None)
    keys = sorted(decode_part(str(row["RowKey"])) for row in tracking)
    shown = {decode_part(str(row["RowKey"])): str(row.get("Service") or decode_part(str(row["RowKey"]))) for row in tracking}
    current = now.replace(minute=0, second=0, microsecond=0)
    starts = {window: (now - span).replace(minute=0, second=0, microsecond=0) for window, span in REQUEST_WINDOWS.items()}
    hours = [starts["lastDay"] + timedelta(hours=n) for n in range(int((current - starts["lastDay"]) / timedelta(hours=1)) + 1)]
    by_day: dict[datetime, list[datetime]] = {}
    for hour in hours:
        by_day.setdefault(hour.replace(hour=0), []).append(hour)
    reads = [(key, day_hours[0], day_hours[-1]) for key in keys for day_hours in by_day.values()]
    found = in_parallel(lambda read: _all(reader, hourly_rows(read[0], SERVICE_TOTAL, read[1], read[2])), reads)
    totals = {key: {window: Counters() for window in REQUEST_WINDOWS} for key in keys}
    for (key, _, _), rows in zip(reads, found, strict=True):
        for row in rows:
            hour = hour_of_row(str(row["PartitionKey"]), str(row["RowKey"]))
            for _, counters in unpack(row):
                for window, start in starts.items():
                    if hour >= start:
                        totals[key][window].merge(counters)
    return {
        "requests": [{"service": names.get(key, shown[key]), **{window: _counts(totals[key][window]) for window in REQUEST_WINDOWS}}
                     for key in keys],
        "requestWindows": {window: {"from": start, "until": current + timedelta(hours=1)} for window, start in starts.items()},
    }


def _all(reader: TableReader, query: Query) -> list[Entity]:
    """Every row of a key range, page after page (a page of packed rows may come back short)."""
    found, token = reader.page(query, None)
    while token is not None:
        more, token = reader.page(query, None, token)
        found += more
    return found


def _counts(counters: Counters) -> dict[str, int]:
    return dict(zip(REQUEST_COUNTS, (counters.total, counters.successful, counters.failed, counters.unauthorized, counters.other,
                                     counters.backend_failed), strict=True))


def _add(totals: dict[str, list[int]], more: dict[str, list[int]]) -> None:
    for window, numbers in more.items():
        totals[window] = [a + b for a, b in zip(totals[window], numbers, strict=True)]
