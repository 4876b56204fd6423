"""The store's ports: one small Protocol per thing the capabilities need of the tables (inventory rows,
history, rejected events, the alert outbox, status rows, and the read side over a `Table`), and the
types they speak in. Records go in typed (`HistoryRecord`, `RejectedRecord`, `Alert`); the adapters
turn them into entities and give them their keys (`shared.store.keys`), so no capability builds a key."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef

Entity = dict[str, Any]


@dataclass(frozen=True)
class StoredRow:
    entity: Entity
    etag: str


Loaded = tuple[StoredRow | None, StoredRow | None]  # a row and its parent's row
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


class Table(StrEnum):
    """The inventory's tables, as the read side names them (the app settings give their real names)."""

    INVENTORY = "inventory"
    HISTORY = "history"
    REJECTED = "rejected"
    OUTBOX = "alerts"
    STATUS = "status"
    USAGE = "usage"


@dataclass(frozen=True)
class Query:
    table: Table
    low_pk: str | None = None  # inclusive
    high_pk: str | None = None  # exclusive
    conditions: tuple[Condition, ...] = ()
    low_rk: str | None = None  # inclusive; with a key range on RowKey, a query of one partition is a range query on Azure
    high_rk: str | None = None  # exclusive


@dataclass(frozen=True)
class HistoryRecord:
    """One event (or one thing a sync or a management-plane read did) as it reached one resource. Its keys come
    from the resource, the event's time and its id (`shared.store.keys.history_keys`)."""

    ref: ResourceRef
    event_id: str
    event_type: str
    event_time: datetime
    source: str
    subject: str
    change: str
    stale: bool
    values: str  # JSON
    schema: str
    recorded_at: datetime


@dataclass(frozen=True)
class RowChange:
    """A row to write: inserted when `before` is None, else replacing `before` if unchanged since it was read."""

    entity: Entity
    before: StoredRow | None


@dataclass(frozen=True)
class PartitionWrite:
    """What one transaction in one inventory partition (`ref`'s) writes: the event's history record (created, so a
    redelivery fails it: AlreadyRecorded), or one more delivery of a recorded one (`duplicate`, under its ETag); the
    rows; the records of what a sync or a management-plane read did (`notes`, upserted); and the partition's count
    row, moved by the rows' live/deleted changes and by the event's `outcome` at `at` (its minute and hour buckets).
    All or nothing; WriteConflict when a row or the count row changed since it was read."""

    ref: ResourceRef
    rows: tuple[RowChange, ...] = ()
    record: HistoryRecord | None = None
    duplicate: StoredRow | None = None
    notes: tuple[HistoryRecord, ...] = ()
    outcome: str | None = None  # applied, stale or duplicate
    at: datetime | None = None


@dataclass(frozen=True)
class RejectedRecord:
    """One rejected event. `identity` is what makes two rejections the same one (a redelivery overwrites)."""

    identity: str
    event_id: str
    event_type: str
    source: str
    subject: str
    reason: str
    message: str
    payload: str
    received_at: datetime


class InventoryRows(Protocol):
    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded:
        """The resource's row and its parent's row (same partition): point reads of what is not cached."""

    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        """One entity by its keys (a point read), with its ETag."""

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        """One transaction in the partition (see PartitionWrite); the rows as stored, in order. Raises
        AlreadyRecorded (the event's record exists: nothing written) or WriteConflict (nothing written)."""

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        """The rows of a parent's children (an API's revisions and releases, a gateway's children)."""


class HistoryLog(Protocol):
    def add_feed(self, records: list[Entity]) -> None:
        """Upsert the change feed's two entries of each history record (as stored), a transaction per service
        and 50 records: idempotent, so a redelivery writes them again after a crash."""


class RejectedLog(Protocol):
    def add_rejected(self, record: RejectedRecord) -> None:
        """Record a rejected event and count it in its day's counter row, in one transaction. A redelivery of the
        same rejection keeps the first ReceivedAt and adds to Deliveries and LastReceivedAt."""


class AlertQueue(Protocol):
    def add_alerts(self, alerts: list[Alert]) -> None:
        """Upsert pending alerts into the outbox (idempotent: the ids are stable)."""

    def pending_alerts(self) -> list[Alert]:
        """The outbox's pending alerts, in id order."""

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime, sent_to: str = "topic") -> None:
        """Move alerts from pending to sent, noting where they went: "topic", or "log" (only logged)."""


class StatusRows(Protocol):
    def load_status(self, service_key: str) -> StoredRow | None:
        """One service's status row."""

    def save_status(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        """Insert when etag is None, else replace if unchanged since read. Raises WriteConflict."""


class SyncRecords(Protocol):
    """A sync's checkpoint row (its lease) and the scratch entities of the keys its listing saw, in the status table."""

    def load_sync(self, service_key: str) -> StoredRow | None:
        """The service's checkpoint row."""

    def save_sync(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        """Insert when etag is None, else replace if unchanged since read. Raises WriteConflict."""

    def save_seen(self, service_key: str, unit: int, page: int, family: str, keys: list[str], parents: list[str]) -> None:
        """Upsert the scratch entity of one listed page: the RowKeys it saw (of one family), the APIs or gateways on it."""


class TableReader(Protocol):
    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        """One entity by its keys (a point read), with its ETag."""

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        """Up to `top` matching entities (all when None) in key order, and where to go on."""

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        """Matching rows page by page, with their ETags, so memory stays bounded; `select` limits the columns
        read (the keys always come)."""


class TableDeleter(Protocol):
    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        """Delete rows in transactions of at most 100, one partition each. With `if_match`, a row changed since
        it was read (its ETag) is kept. Inventory rows (tombstones: select Kind and IsDeleted) leave their
        partition's count row in the same transaction. How many were deleted."""


class TableWriter(Protocol):
    def put(self, table: Table, entity: Entity, etag: str | None) -> StoredRow:
        """Insert when etag is None, else replace if unchanged since read (WriteConflict); for the layout's own
        rows (the count rows a recount writes, the layout marker), never an inventory row."""

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        """Upsert entities, a transaction per partition and 100 (a migration's copies)."""

    def put_all(self, table: Table, writes: list[tuple[Entity, str | None]]) -> list[StoredRow]:
        """`put` of up to 100 entities of one partition as one transaction, each inserted (etag None) or replaced
        if unchanged since read: all or none (WriteConflict when one condition fails)."""


class Store(InventoryRows, HistoryLog, RejectedLog, AlertQueue, StatusRows, TableReader, TableDeleter, TableWriter, SyncRecords, Protocol):
    """Every port at once: what an adapter of the whole store offers. Only the composition root, tests and
    tools hold one; each capability is given the ports it uses."""
