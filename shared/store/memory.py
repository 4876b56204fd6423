"""The in-memory twin of the Table store: the same ports (shared.store.ports), with ETags, in dicts. Transactions
are the same operation lists (shared.store.transactions), applied all or none under the same conditions."""

from __future__ import annotations

import copy
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef
from shared.store import records
from shared.store.keys import (
    COUNT_ROW,
    LAYOUT_KEYS,
    PENDING_ALERTS,
    child_ranges,
    count_keys,
    history_range,
    key_of,
    rejected_count_keys,
    rejected_keys,
    row_keys,
    status_keys,
)
from shared.store.ports import Entity, Loaded, PartitionWrite, Query, RejectedRecord, StoredRow, Table, Token
from shared.store.transactions import CREATE, DELETE, MERGE, REPLACE, Op, Plan, partition_plan, rejected_plan, tombstone_plan

Key = tuple[str, str]


class _Failed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class InMemoryStore:
    """The same ports as the Table store, with ETags, in dicts. Thread-safe."""

    def __init__(self) -> None:
        self._tables: dict[Table, dict[Key, StoredRow]] = {table: {} for table in Table}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)

    def create_tables(self) -> None:
        """The dicts are there; a new (empty) inventory gets its layout marker, as the Table store's does."""
        with self._lock:
            if LAYOUT_KEYS not in self._tables[Table.STATUS] and not self._tables[Table.INVENTORY]:
                self._tables[Table.STATUS][LAYOUT_KEYS] = self._stored(records.layout_marker(datetime.now(timezone.utc)))

    def _stored(self, entity: Entity) -> StoredRow:
        return StoredRow(copy.deepcopy(entity), f"W/\"{next(self._etags)}\"")

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
                out.append(StoredRow(copy.deepcopy(entity), store[key].etag))
            return out

    def _submit(self, table: Table, plan: Plan) -> list[StoredRow | None]:
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
        pk = count_keys(write.ref)[0]
        plan = partition_plan(write, self.get(Table.INVENTORY, pk, COUNT_ROW))
        if not plan.ops:
            return []
        done = self._submit(Table.INVENTORY, plan)
        return [row for row in done[plan.rows_at:plan.rows_at + len(write.rows)] if row is not None]

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        pk, prk, _ = row_keys(parent)
        ranges = child_ranges(prk, parent.kind)
        with self._lock:
            found = [row for (p, r), row in self._tables[Table.INVENTORY].items() if p == pk and any(lo <= r < hi for lo, hi in ranges)]
        return [StoredRow(copy.deepcopy(row.entity), row.etag) for row in sorted(found, key=lambda s: s.entity["RowKey"])]

    # -- history and rejected events ---------------------------------------------------------
    def add_feed(self, records_: list[Entity]) -> None:
        entries = [entry for record in records_ for entry in records.feed_entities(record)]
        with self._lock:
            for entry in entries:
                self._tables[Table.HISTORY][key_of(entry)] = self._stored(entry)

    def history(self, ref: ResourceRef, with_children: bool = False) -> list[Entity]:
        found, _ = self.page(history_range(ref, with_children), None)
        return sorted(found, key=lambda r: (r["EventTime"], r["EventId"]), reverse=True)

    def add_rejected(self, record: RejectedRecord) -> None:
        keys = rejected_count_keys(record.received_at)
        existing: StoredRow | None = None
        for _ in range(10):
            plan = rejected_plan(record, existing, self.get(Table.REJECTED, *keys), keys, record.received_at)
            try:
                self._apply(Table.REJECTED, plan)
                return
            except _Failed:
                existing = self.get(Table.REJECTED, *rejected_keys(record.received_at, record.identity))
        raise WriteConflict("the rejected counter row kept changing")

    # -- alert outbox ------------------------------------------------------------------------
    def add_alerts(self, alerts: list[Alert]) -> None:
        entities = [records.outbox_entity(a) for a in alerts]
        with self._lock:
            self._tables[Table.OUTBOX].update({key_of(e): self._stored(e) for e in entities})

    def pending_alerts(self) -> list[Alert]:
        with self._lock:
            return [records.alert_from_entity(row.entity) for (pk, _), row in sorted(self._tables[Table.OUTBOX].items())
                    if pk == PENDING_ALERTS]

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime) -> None:
        with self._lock:
            outbox = self._tables[Table.OUTBOX]
            for alert in alerts:
                outbox.pop((PENDING_ALERTS, alert.id), None)
                sent = records.sent_entity(alert, now)
                outbox[key_of(sent)] = self._stored(sent)

    # -- the read side -----------------------------------------------------------------------
    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        with self._lock:
            row = self._tables[table].get((partition_key, row_key))
            return StoredRow(copy.deepcopy(row.entity), row.etag) if row else None

    def _snapshot(self, table: Table) -> list[tuple[Key, StoredRow]]:
        with self._lock:
            return sorted(self._tables[table].items())

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        start = (continuation["PartitionKey"], continuation["RowKey"]) if continuation else None
        found: list[Entity] = []
        for key, row in self._snapshot(query.table):
            if (start and key < start) or not _wanted(query, key, row.entity):
                continue
            if top is not None and len(found) == top:
                return found, {"PartitionKey": key[0], "RowKey": key[1]}
            found.append(copy.deepcopy(row.entity))
        return found, None

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        found = [StoredRow(copy.deepcopy(row.entity), row.etag) for key, row in self._snapshot(query.table)
                 if _wanted(query, key, row.entity)]
        for at in range(0, len(found), page_size):
            yield found[at:at + page_size]

    # -- retention, status rows and the layout's own rows ------------------------------------
    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        partitions: dict[str, list[StoredRow]] = defaultdict(list)
        for row in rows:
            partitions[row.entity["PartitionKey"]].append(row)
        deleted = 0
        for pk, group in partitions.items():
            for row in group:  # one by one, as the Table store falls back to when a transaction fails
                for _ in range(10):
                    counted = table is Table.INVENTORY and "Kind" in row.entity
                    plan = tombstone_plan([row], self.get(table, pk, COUNT_ROW) if counted else None, if_match)
                    try:
                        self._apply(table, plan)
                        deleted += 1
                        break
                    except _Failed:
                        current = self.get(table, *key_of(row.entity))
                        if current is None or (if_match and current.etag != row.etag):
                            break  # gone, or changed since it was read: kept
        return deleted

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

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        with self._lock:
            for entity in entities:
                self._tables[table][key_of(entity)] = self._stored(entity)


def _wanted(query: Query, key: Key, entity: Entity) -> bool:
    """The query's key range and conditions, evaluated in memory."""
    return (query.low_pk is None or key[0] >= query.low_pk) and (query.high_pk is None or key[0] < query.high_pk) \
        and (query.low_rk is None or key[1] >= query.low_rk) and (query.high_rk is None or key[1] < query.high_rk) \
        and all(c.holds(entity) for c in query.conditions)
