"""Count rows, rejected counter rows, status rows and the layout marker as docs/schema.md gives them, written straight
into a store: for the summary's tests of what events alone cannot set up (a bucket at the edge of a window, a store
in layout 1)."""

from __future__ import annotations

import json
from datetime import datetime

from shared.store import keys
from shared.store.ports import Entity, Store, Table


def put(store: Store, table: Table, entities: list[Entity]) -> None:
    """Upsert entities as they are (no writer's rules): the format under test, nothing else."""
    store.upsert(table, entities)


def status_row(service_key: str, name: str) -> Entity:
    pk, rk = keys.status_keys(service_key)
    return {"PartitionKey": pk, "RowKey": rk, "SchemaVersion": 2, "Service": name}


def marker(layout: int = keys.LAYOUT) -> Entity:
    pk, rk = keys.LAYOUT_KEYS
    return {"PartitionKey": pk, "RowKey": rk, "Layout": layout, "CountsBuiltAt": datetime(2026, 11, 1)}


def events_column(minutes: dict[str, list[int]] | None = None, hours: dict[str, list[int]] | None = None) -> str:
    return json.dumps({"m": minutes or {}, "h": hours or {}})


def count_row(partition: str, service: str, family: str, live: dict[str, int], deleted: dict[str, int], events: str) -> Entity:
    return {"PartitionKey": partition, "RowKey": keys.COUNT_ROW, "Service": service, "ServiceKey": service.lower(), "Family": family,
            **{f"Live_{k}": n for k, n in live.items()}, **{f"Deleted_{k}": n for k, n in deleted.items()}, "Events": events}


def rejected_count(day: datetime, events: str) -> Entity:
    pk, rk = keys.rejected_count_keys(day)
    return {"PartitionKey": pk, "RowKey": rk, "Events": events}
