"""The in-memory twin of the Table store: the same ports (shared.store.ports), with ETags, in dicts. Transactions
are the same operation lists (shared.store.transactions), applied all or none under the same conditions.

Reads go through each table's sorted keys, so a key-range read costs what it returns, as on Azure (Azurite scans
the whole table for every query): the scale benchmark measures the key design on the twin."""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef
from shared.store import records, transactions
from shared.store.keys import (
    LAYOUT_KEYS,
    PENDING_ALERTS,
    child_ranges,
    key_of,
    row_keys,
    status_keys,
    sync_keys,
)
from shared.store.ports import Condition, Entity, Loaded, PartitionWrite, Query, RejectedRecord, StoredRow, Table, Token
from shared.store.transactions import CREATE, DELETE, MERGE, REPLACE, Op, Plan, count_row_of, partition_plan

Key = tuple[str, str]


class _Rows(dict[Key, StoredRow]):
    """A table's entities by key, and its keys in order: a long sorted list and a short sorted list of the keys added
    since the last fold, merged as they are read. A write costs an insert into the short list (a fold, about every
    1/64 of the table, merges the two: two sorted runs, one linear pass), never a sort of the table; a deleted key
    stays listed until the fold after a sixteenth of the table went, and reads skip it."""

    def __init__(self) -> None:
        super().__init__()
        self._order: list[Key] = []
        self._recent: list[Key] = []
        self._listed: set[Key] = set()  # the keys in either list, present or deleted
        self._gone = 0

    def __setitem__(self, key: Key, row: StoredRow) -> None:
        back = key in self._listed and key not in self  # listed while deleted: back
        super().__setitem__(key, row)  # before a fold, which keeps only the keys present
        if back:
            self._gone -= 1
        elif key not in self._listed:
            self._listed.add(key)
            bisect.insort(self._recent, key)
            if len(self._recent) > max(1024, len(self._order) // 64):
                self._fold()

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._deleted()

    def pop(self, key: Key, *default: StoredRow | None) -> StoredRow | None:  # type: ignore[override]
        present = key in self
        row = super().pop(key, *default)
        if present:
            self._deleted()  # after the pop, so a fold drops the key
        return row

    def update(self, other: dict[Key, StoredRow]) -> None:  # type: ignore[override]
        for key, row in other.items():
            self[key] = row

    def _deleted(self) -> None:
        self._gone += 1
        if self._gone > max(1024, len(self._listed) // 16):
            self._fold()

    def _fold(self) -> None:
        merged = sorted(self._order + self._recent)  # two sorted runs: one merge
        if self._gone:
            merged = [key for key in merged if key in self]
            self._listed, self._gone = set(merged), 0
        self._order, self._recent = merged, []

    def in_range(self, query: Query, start: Key | None) -> Iterator[tuple[Key, StoredRow]]:
        """The entries from the query's first possible key (or `start`, if later) to its last, in key order."""
        partition = next((c.value for c in query.conditions if c.column == "PartitionKey" and c.op == "eq"), None)
        low: Key = (partition, query.low_rk or "") if partition is not None else (query.low_pk or "", "")
        if start is not None and start > low:
            low = start
        order, recent = self._order, self._recent[bisect.bisect_left(self._recent, low):]
        tail = (order[at] for at in range(bisect.bisect_left(order, low), len(order)))
        for key in heapq.merge(tail, recent):
            if (partition is not None and (key[0] != partition or (query.high_rk is not None and key[1] >= query.high_rk))) \
                    or (query.high_pk is not None and key[0] >= query.high_pk):
                return
            row = dict.get(self, key)
            if row is not None:  # else deleted since the last fold
                yield key, row


def _copied(entity: Entity) -> Entity:
    """A copy of an entity: a flat dict of immutable values (str, int, float, bool, datetime), as Table Storage holds."""
    return dict(entity)


class _Failed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class InMemoryStore:
    """The same ports as the Table store, with ETags, in dicts. Thread-safe."""

    def __init__(self) -> None:
        self._tables: dict[Table, _Rows] = {table: _Rows() for table in Table}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)

    def create_tables(self) -> None:
        """The dicts are there; a new (empty) inventory gets its layout marker, as the Table store's does."""
        with self._lock:
            if LAYOUT_KEYS not in self._tables[Table.STATUS] and not self._tables[Table.INVENTORY]:
                self._tables[Table.STATUS][LAYOUT_KEYS] = self._stored(records.layout_marker(datetime.now(timezone.utc)))

    def _stored(self, entity: Entity) -> StoredRow:
        return StoredRow(_copied(entity), f"W/\"{next(self._etags)}\"")

    # -- transactions ------------------------------------------------------------------------
    def _apply(self, table: Table, plan: Plan) -> list[StoredRow | None]:
        """All or none, as a Table transaction: every condition is checked before anything is written."""
        store = self._tables[table]
        with self._lock:
            for op in plan.ops:
                current = store.get(key_of(op.entity))
                if op.action == CREATE and current is not None:
                    raise _Failed(409)
                if op.action in (REPLACE, MERGE) or (op.action == DELETE and op.etag is not None):
                    if current is None:
                        raise _Failed(404)
                    if current.etag != op.etag:
                        raise _Failed(412)
                if op.action == DELETE and current is None:
                    raise _Failed(404)
            out: list[StoredRow | None] = []
            for op in plan.ops:
                key = key_of(op.entity)
                if op.action == DELETE:
                    del store[key]
                    out.append(None)
                    continue
                entity = {**store[key].entity, **op.entity} if op.action == MERGE else op.entity
                store[key] = self._stored(entity)
                out.append(StoredRow(_copied(entity), store[key].etag))
            return out

    def submit(self, table: Table, plan: Plan) -> list[StoredRow | None]:
        try:
            return self._apply(table, plan)
        except _Failed as exc:
            if exc.status == 409 and plan.record is not None:
                existing = self.get(Table.INVENTORY, *key_of(plan.record))
                if existing is not None:
                    raise AlreadyRecorded(existing.entity, existing.etag) from None
            raise WriteConflict(f"transaction of {len(plan.ops)} operations: {exc.status}") from None

    # -- inventory ---------------------------------------------------------------------------
    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded:
        pk, rk, parent_rk = row_keys(ref)
        return self.get(Table.INVENTORY, pk, rk), self.get(Table.INVENTORY, pk, parent_rk) if parent_rk else None

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        plan = partition_plan(write, self.get(Table.INVENTORY, *count_row_of(write)))
        if not plan.ops:
            return []
        done = self.submit(Table.INVENTORY, plan)
        return [row for row in done[plan.rows_at:plan.rows_at + len(write.rows)] if row is not None]

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        pk, prk, _ = row_keys(parent)
        ranges = child_ranges(prk, parent.kind)
        found = [row for low, high in ranges
                 for _, row in self._matching(Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=low, high_rk=high))[0]]
        return sorted(found, key=lambda s: s.entity["RowKey"])

    # -- history and rejected events ---------------------------------------------------------
    def add_feed(self, records_: list[Entity]) -> None:
        entries = [entry for record in records_ for entry in records.feed_entities(record)]
        with self._lock:
            for entry in entries:
                self._tables[Table.HISTORY][key_of(entry)] = self._stored(entry)

    def add_rejected(self, record: RejectedRecord) -> None:
        transactions.add_rejected(self, record)

    # -- alert outbox ------------------------------------------------------------------------
    def add_alerts(self, alerts: list[Alert]) -> None:
        entities = [records.outbox_entity(a) for a in alerts]
        with self._lock:
            self._tables[Table.OUTBOX].update({key_of(e): self._stored(e) for e in entities})

    def pending_alerts(self) -> list[Alert]:
        found, _ = self._matching(Query(Table.OUTBOX, conditions=(Condition("PartitionKey", "eq", PENDING_ALERTS),)))
        return [records.alert_from_entity(row.entity) for _, row in found]

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime, sent_to: str = "topic") -> None:
        with self._lock:
            outbox = self._tables[Table.OUTBOX]
            for alert in alerts:
                outbox.pop((PENDING_ALERTS, alert.id), None)
                sent = records.sent_entity(alert, now, sent_to)
                outbox[key_of(sent)] = self._stored(sent)

    # -- the read side -----------------------------------------------------------------------
    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        with self._lock:
            row = self._tables[table].get((partition_key, row_key))
            return StoredRow(_copied(row.entity), row.etag) if row else None

    def _matching(self, query: Query, start: Key | None = None, limit: int | None = None) -> tuple[list[tuple[Key, StoredRow]], Key | None]:
        """Up to `limit` matching entries in key order, copied under the lock, and the key to go on from."""
        found: list[tuple[Key, StoredRow]] = []
        with self._lock:
            for key, row in self._tables[query.table].in_range(query, start):
                if not _wanted(query, key, row.entity):
                    continue
                if limit is not None and len(found) == limit:
                    return found, key
                found.append((key, StoredRow(_copied(row.entity), row.etag)))
        return found, None

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        start = (continuation["PartitionKey"], continuation["RowKey"]) if continuation else None
        found, next_key = self._matching(query, start, top)
        token = {"PartitionKey": next_key[0], "RowKey": next_key[1]} if next_key else None
        return [row.entity for _, row in found], token

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        start: Key | None = None
        while True:
            found, start = self._matching(query, start, page_size)
            if found:
                yield [row for _, row in found]
            if start is None:
                return

    # -- retention, status rows and the layout's own rows ------------------------------------
    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        """One by one, as the Table store falls back to when a transaction fails."""
        return sum(transactions.delete_one(self, table, row, if_match) for row in rows)

    def load_status(self, service_key: str) -> StoredRow | None:
        return self.get(Table.STATUS, *status_keys(service_key))

    def save_status(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        return self.put(Table.STATUS, records.status_entity(service_key, entity), etag)

    def put(self, table: Table, entity: Entity, etag: str | None) -> StoredRow:
        plan = Plan([Op(CREATE, entity) if etag is None else Op(REPLACE, entity, etag)])
        try:
            (stored,) = self._apply(table, plan)
        except _Failed as exc:
            raise WriteConflict(f"{key_of(entity)} changed since it was read: {exc.status}") from None
        assert stored is not None
        return stored

    def put_all(self, table: Table, writes: list[tuple[Entity, str | None]]) -> list[StoredRow]:
        plan = Plan([Op(CREATE, entity) if etag is None else Op(REPLACE, entity, etag) for entity, etag in writes])
        try:
            stored = self._apply(table, plan)
        except _Failed as exc:
            raise WriteConflict(f"transaction of {len(writes)} puts: {exc.status}") from None
        return [row for row in stored if row is not None]

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        with self._lock:
            for entity in entities:
                self._tables[table][key_of(entity)] = self._stored(entity)

    def load_sync(self, service_key: str) -> StoredRow | None:
        return self.get(Table.STATUS, *sync_keys(service_key))

    def save_sync(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        pk, rk = sync_keys(service_key)
        return self.put(Table.STATUS, {**entity, "PartitionKey": pk, "RowKey": rk}, etag)

    def save_seen(self, service_key: str, unit: int, page: int, family: str, keys: list[str], parents: list[str]) -> None:
        self.upsert(Table.STATUS, [records.seen_entity(service_key, unit, page, family, keys, parents)])


def _wanted(query: Query, key: Key, entity: Entity) -> bool:
    """The query's key range and conditions, evaluated in memory."""
    return (query.low_pk is None or key[0] >= query.low_pk) and (query.high_pk is None or key[0] < query.high_pk) \
        and (query.low_rk is None or key[1] >= query.low_rk) and (query.high_rk is None or key[1] < query.high_rk) \
        and all(c.holds(entity) for c in query.conditions)
