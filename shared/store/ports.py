"""The storage port: what the pipeline, the timers, the management plane and the queries need from
the inventory's tables, and the types it speaks in."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Entity = dict[str, Any]


@dataclass(frozen=True)
class StoredRow:
    entity: Entity
    etag: str


Token = dict[str, str]  # the next (PartitionKey, RowKey) to read, as Table Storage's continuation
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt,
}


@dataclass(frozen=True)
class Condition:
    """One comparison of a column with a value. Queries are built only from these, and values
    always travel as query parameters, never pasted into a filter."""

    column: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in _COMPARE or not self.column.isidentifier():
            raise ValueError(f"unsupported condition {self.column} {self.op}")

    def holds(self, entity: Entity) -> bool:
        value = entity.get(self.column)
        if value is None:
            return False
        try:
            return _COMPARE[self.op](value, self.value)
        except TypeError:
            return False


@dataclass(frozen=True)
class Query:
    table: str  # "inventory", "history" or "rejected"
    low_pk: str | None = None  # inclusive
    high_pk: str | None = None  # exclusive
    conditions: tuple[Condition, ...] = ()


class InventoryRepository(Protocol):
    def load(self, pk: str, rk: str, parent_rk: str | None, *, fresh: bool = False) -> tuple[StoredRow | None, StoredRow | None]:
        """The row and its parent's row (same partition), in one request when not cached."""

    def save(self, entity: Entity, etag: str | None) -> StoredRow:
        """Insert when etag is None, else replace if unchanged since read. Raises WriteConflict."""

    def children(self, pk: str, ranges: list[tuple[str, str]]) -> list[StoredRow]:
        """Rows in partition pk whose RowKey falls in any [low, high) range."""

    def save_batch(self, items: list[tuple[Entity, str | None]]) -> None:
        """Write up to 100 rows of one partition in one transaction, each as `save` would (insert
        when its etag is None, else replace if unchanged). All or nothing: raises WriteConflict."""

    def add_history(self, record: Entity) -> None:
        """Insert a history record. Raises AlreadyRecorded with the existing record."""

    def note_duplicate(self, record: Entity, now: datetime) -> None:
        """Count one more delivery of a recorded event (Duplicates, LastDuplicateAt)."""

    def add_rejected(self, record: Entity) -> None:
        """Upsert a rejected-event record."""

    def watched(self, kind: str, family: str) -> list[StoredRow]:
        """Every row of one kind across services, read from its family's key range only."""

    def add_alerts(self, entities: list[Entity]) -> None:
        """Upsert pending alerts into the outbox (idempotent: the ids are stable)."""

    def pending_alerts(self) -> list[Entity]:
        """The outbox's pending alerts."""

    def mark_alerts_sent(self, entities: list[Entity], now: datetime) -> None:
        """Move alerts from pending to sent."""

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        """Up to `top` matching entities (all when None) in key order, and where to go on."""

    def rows(self) -> Iterator[Entity]:
        """Every inventory row (for the demo, tests and small tools)."""

    def history(self, service_key: str, path_key: str) -> list[Entity]:
        """One resource's history records, newest first."""

    def rejected(self) -> list[Entity]:
        """Every rejected-event record."""

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        """Matching rows page by page, with their ETags, so memory stays bounded. `query.table` may also be
        "alerts" or "status"; `select` limits the columns read (the keys always come)."""

    def delete_rows(self, table: str, rows: list[StoredRow], *, if_match: bool = False) -> int:
        """Delete rows in transactions of at most 100, one partition each. With `if_match`, a row changed since
        it was read (its ETag) is kept. How many were deleted."""

    def load_status(self, pk: str, rk: str) -> StoredRow | None:
        """One service's status row."""

    def save_status(self, entity: Entity, etag: str | None) -> StoredRow:
        """Insert when etag is None, else replace if unchanged since read. Raises WriteConflict."""
