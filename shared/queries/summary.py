"""`summary`: exact live and deleted counts per service and kind, and the events of the last hour and day, from the
count rows alone (layout 2): one key-range read per partition that may hold them (its flag row and shards), never a
read of the rows or the history.

Requests: the layout marker, the status rows (the services), services x families x buckets range reads of count rows
(96 per service, each returning at most 1 + COUNT_SHARDS entities), and the rejected counter rows of today and
yesterday: a number that grows with the services, never with the rows or the events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.domain.kinds import TOP_LEVEL
from shared.domain.outcomes import Outcome
from shared.queries.workspaces import shown
from shared.store.counts import EVENT_OUTCOMES, WINDOWS, window_start, window_totals, workspace_counts
from shared.store.keys import LAYOUT, LAYOUT_KEYS, count_partitions, count_range, rejected_count_keys, service_of_status, status_rows
from shared.store.ports import Table, TableReader

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
    return {
        "generatedAt": now, **chosen,
        "resources": [{"service": s, "kind": k, "live": counts[LIVE][(s, k)], "deleted": counts[DELETED][(s, k)]} for s, k in pairs],
        "workspaces": per_workspace,
        "events": {window: {**dict(zip(EVENT_OUTCOMES, events[window], strict=True)), Outcome.REJECTED: rejections[window][0]}
                   for window in WINDOWS},
        "windows": {window: {"from": window_start(now, window)} for window in WINDOWS},
    }


def _add(totals: dict[str, list[int]], more: dict[str, list[int]]) -> None:
    for window, numbers in more.items():
        totals[window] = [a + b for a, b in zip(totals[window], numbers, strict=True)]
