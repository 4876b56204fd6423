"""Rows of the usage table as docs/schema.md gives them (what the log reader writes), built with the store's own keys
(shared/store/usage_keys.py) and columns (shared/store/usage_rows.py), for the reports' tests: the format under test,
written straight into a store through its generic port."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from shared.domain.usage import Counters
from shared.store import usage_keys
from shared.store.ports import Entity, Store, Table
from shared.store.usage_rows import counters_columns, counters_of, packed_columns, packs, unpack

_reads = itertools.count()


def counts(total: int = 1, successful: int | None = None, failed: int = 0, unauthorized: int = 0, other: int = 0,
           backend_failed: int = 0, duration_sum_ms: float | None = None, duration_max_ms: float = 10.0,
           first_at: str = "", last_at: str = "") -> Counters:
    """Counters whose categories add up to `total` (the successful ones are the rest unless given)."""
    ok = total - failed - unauthorized - other if successful is None else successful
    return Counters(total, ok, unauthorized, failed, other, backend_failed,
                    10.0 * total if duration_sum_ms is None else duration_sum_ms, duration_max_ms, first_at, last_at)


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def contribution(service: str, kind: str, resource_id: str, hour: datetime, c: Counters, read: str | None = None) -> Entity:
    """One hourly contribution: what one read of one blob range counted for one resource in one hour (a pack of one id)."""
    return packed(service, kind, hour, {resource_id: c}, read)


def packed(service: str, kind: str, hour: datetime, ids: dict[str, Counters], read: str | None = None, pack: int = 0) -> Entity:
    """One packed hourly contribution: what one read of one blob range counted for these ids in one hour."""
    source = read or usage_keys.source(f"blob-{next(_reads)}", 1, 0, 100)
    for c in ids.values():
        if not c.first_at:
            c.first_at, c.last_at = z(hour), z(hour)
    text, held = packs(ids)[0]
    columns = {"Service": service, "Kind": kind, "Hour": hour.strftime("%Y-%m-%dT%H:00:00Z"), "Ids": held, **packed_columns(text)}
    return usage_keys.keyed(usage_keys.hourly_keys(service, kind, hour, source, pack), columns)


def daily(service: str, kind: str, resource_id: str, day: datetime, c: Counters) -> Entity:
    columns = {**counters_columns(c), "Service": service, "Kind": kind, "Id": resource_id, "Day": day.strftime("%Y-%m-%d")}
    return usage_keys.keyed(usage_keys.daily_keys(service, kind, day, resource_id), columns)


def rolled(service: str, kind: str, day: datetime) -> Entity:
    return usage_keys.keyed(usage_keys.rollup_marker_keys(service, kind, day), {"Service": service, "Kind": kind})


def last_use(service: str, kind: str, resource_id: str, at: datetime | str, first: datetime | str | None = None) -> Entity:
    return usage_keys.keyed(usage_keys.last_use_keys(service, kind, resource_id),
                            {"Id": resource_id, "LastUsedAt": at, "FirstSeenUsedAt": first or at})


def tracking(service: str, first_record_at: datetime | str, first_read_at: datetime | str | None = None) -> Entity:
    return usage_keys.keyed(usage_keys.tracking_keys(service),
                            {"Service": service, "FirstRecordAt": first_record_at, "FirstReadAt": first_read_at or first_record_at})


def bad_line(container: str, seen_at: datetime, blob: str, offset: int, reason: str, excerpt: str) -> Entity:
    read = usage_keys.source(blob, 1, 0, offset + 100)
    return usage_keys.keyed(usage_keys.bad_line_keys(container, seen_at, read, offset),
                            {"Container": container, "Blob": blob, "Offset": offset, "Reason": reason, "Excerpt": excerpt, "SeenAt": seen_at})


def put_usage(store: Store, rows: list[Entity]) -> None:
    store.upsert(Table.USAGE, rows)


def oracle(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    """Totals by (service, kind, id) of a list of contributions (packed) and roll-ups: the brute-force sum."""
    found: dict[tuple[str, str, str], int] = {}
    for row in rows:
        for resource, c in unpack(row) if "Counts" in row else [(row["Id"], counters_of(row))]:
            key = (row["Service"], row["Kind"], resource)
            found[key] = found.get(key, 0) + c.total
    return found
