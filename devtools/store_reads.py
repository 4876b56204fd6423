"""Reading a store through its public read side, for tests, the demo and the benchmarks (what they check), and an
event processor over a given store, wired as the app wires it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared import bootstrap
from shared.config import Settings
from shared.ingest.pipeline import EventProcessor
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store import keys
from shared.store.ports import Condition, Entity, Query, Store, StoredRow, Table, TableReader


def inventory_rows(store: TableReader) -> list[Entity]:
    """Every inventory row, in key order (not the count rows and history records beside them)."""
    return _all(store, keys.rows_only(Query(Table.INVENTORY)))


def history_records(store: TableReader) -> list[Entity]:
    """Every history record, in key order (each beside its resource's row)."""
    return _all(store, keys.history_records())


def count_rows(store: TableReader) -> list[Entity]:
    """Every partition's count rows (its flag row and its shards)."""
    return _all(store, keys.all_count_rows())


def feed_entries(store: TableReader) -> list[Entity]:
    """The change feed's entries, both orders."""
    return _all(store, Query(Table.HISTORY))


def rejected_records(store: TableReader) -> list[Entity]:
    """Every rejected-event record (not the days' counter rows)."""
    return _all(store, keys.rejected_from(None))


def pending_entities(store: TableReader) -> list[Entity]:
    """The outbox's pending alerts as stored."""
    return _all(store, keys.pending_alerts())


def stored_row(store: TableReader, pk: str, rk: str) -> StoredRow | None:
    """One inventory row by its keys, with its ETag."""
    query = Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", pk), Condition("RowKey", "eq", rk)))
    return next((row for page in store.scan(query) for row in page), None)


def _all(store: TableReader, query: Query) -> list[Entity]:
    return [row.entity for page in store.scan(query) for row in page]


def processor_over(store: Store, clock: Callable[[], datetime] = bootstrap.system_clock, **settings: Any) -> EventProcessor:
    """An event processor over this store, wired as the app wires it, with log-only alerts."""
    return bootstrap.wire(store, Settings(**settings), LoggingAlertPublisher(), clock).processor
