"""A service's requests by category, hour by hour over the last day and day by day over the last 30 days, from its
`service` pseudo-kind's rows: what the overview's charts draw. Requests: for the hours, a key range per day the 25
hours span (2); for the days, the roll-up markers (one key range), then per day its daily row or its hourly
contributions (one key range each, 31): a number set by the window, never by the resources or the records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.errors import InvalidQuery
from shared.domain.usage import COUNTED_KINDS, SERVICE_TOTAL, Counters, resource_id
from shared.queries.changes import first_of
from shared.queries.summary import in_parallel
from shared.queries.usage import tracked
from shared.store import usage_keys
from shared.store.ports import Query, TableReader
from shared.store.usage_rows import counters_of, unpack

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
CATEGORIES = ("successful", "failed", "unauthorized", "other")  # the request categories a chart stacks
SPANS = {"24h": (HOUR, 25), "30d": (DAY, 31)}  # the step and the number of buckets, the current one last


def _bucket(counters: Counters) -> dict[str, int]:
    return {"total": counters.total, "successful": counters.successful, "failed": counters.failed,
            "unauthorized": counters.unauthorized, "other": counters.other}


def request_series(reader: TableReader, now: datetime, service_key: str, span: str, *, kind: str = SERVICE_TOTAL,
                   resource_id: str | None = None) -> dict[str, Any]:
    """{"span", "step", "buckets": [{"from", **counts}]} for `span` ("24h" or "30d"), the oldest bucket first: the
    service's requests, or (`kind`, `resource_id`) one resource's, read from its kind's contributions."""
    step, count = SPANS[span]
    current = now.replace(minute=0, second=0, microsecond=0)
    if step == DAY:
        current = current.replace(hour=0)
    starts = [current - step * n for n in range(count - 1, -1, -1)]
    totals = {start: Counters() for start in starts}
    reads: list[tuple[Query, bool]] = []
    if step == HOUR:
        by_day: dict[datetime, list[datetime]] = {}
        for hour in starts:
            by_day.setdefault(hour.replace(hour=0), []).append(hour)
        reads = [(usage_keys.hourly_rows(service_key, kind, hours[0], hours[-1]), False) for hours in by_day.values()]
    else:
        marked = {str(r["RowKey"]) for r in first_of(reader, usage_keys.rollup_marker_range(service_key, kind, starts[0], starts[-1]), None)}
        for day in starts:
            rolled = usage_keys.rollup_marker_keys(service_key, kind, day)[1] in marked
            reads.append((usage_keys.daily_rows(service_key, kind, day), True) if rolled
                         else (usage_keys.hourly_rows(service_key, kind, day, day + DAY - HOUR), False))
    found = in_parallel(lambda read: first_of(reader, read[0], None), reads)
    for (_, daily), rows in zip(reads, found, strict=True):
        for row in rows:
            if daily:
                if resource_id is not None and str(row.get("Id") or "") != resource_id:
                    continue
                moment, counters = usage_keys.day_of_row(str(row["RowKey"])), [counters_of(row)]
            else:
                moment = usage_keys.hour_of_row(str(row["PartitionKey"]), str(row["RowKey"]))
                counters = [c for i, c in unpack(row) if resource_id is None or i == resource_id]
            bucket = moment if step == HOUR else moment.replace(hour=0)
            for c in counters:
                if bucket in totals:
                    totals[bucket].merge(c)
    return {"span": span, "step": "hour" if step == HOUR else "day",
            "buckets": [{"from": start, **_bucket(totals[start])} for start in starts]}


def requests_of(reader: TableReader, now: datetime, service: str, span: str, kind: str | None, resource: str | None,
                known: Callable[[str], str]) -> dict[str, Any]:
    """The series GET /api/requests answers: checked parameters (400); a service whose logs were never read has
    empty buckets and `logsRead` false when the inventory knows it (`known`: its name, or NotFound, 404)."""
    if span not in SPANS:
        raise InvalidQuery(f"span must be one of {', '.join(SPANS)}, not {span[:20]!r}")
    if (kind is None) != (resource is None):
        raise InvalidQuery("give kind and id together, or neither")
    if kind is not None and kind not in COUNTED_KINDS:
        raise InvalidQuery(f"kind must be one of {', '.join(COUNTED_KINDS)}")
    tracking = tracked(reader)
    read = service.lower() in tracking
    name = str(tracking[service.lower()].get("Service") or service) if read else known(service)
    return {"service": name, "kind": kind, "id": resource, "logsRead": read,
            **request_series(reader, now, service.lower(), span, kind=kind or SERVICE_TOTAL,
                             resource_id=resource_id(resource) if resource is not None else None)}
