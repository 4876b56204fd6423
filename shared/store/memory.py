"""The in-memory twin of the Table store: the same ports (shared.store.ports), with ETags, in dicts."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef
from shared.store import records
from shared.store.keys import PENDING_ALERTS, child_ranges, key_of, row_keys, status_keys
from shared.store.ports import Entity, HistoryRecord, Loaded, Query, RejectedRecord, StoredRow, Table, Token


class InMemoryStore:
    """The same ports as the Table store, with ETags, in dicts. Thread-safe."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StoredRow] = {}
        self._history: dict[tuple[str, str], Entity] = {}
        self._rejected: dict[tuple[str, str], Entity] = {}
        self._outbox: dict[tuple[str, str], Entity] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self._status: dict[tuple[str, str], StoredRow] = {}

    def create_tables(self) -> None:
        """Nothing to create: the dicts are there."""

    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded:
        pk, rk, parent_rk = row_keys(ref)
        with self._lock:
            return self._copy(self._rows.get((pk, rk))), self._copy(self._rows.get((pk, parent_rk))) if parent_rk else None

    def save(self, entity: Entity, etag: str | None) -> StoredRow:
        return self._put(self._rows, entity, etag)

    def _put(self, store: dict[tuple[str, str], StoredRow], entity: Entity, etag: str | None) -> StoredRow:
        key = (entity["PartitionKey"], entity["RowKey"])
        with self._lock:
            _check_etag(store, key, etag)
            stored = StoredRow(copy.deepcopy(entity), f"W/\"{next(self._etags)}\"")
            store[key] = stored
            return self._copy(stored) or stored

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        pk, prk, _ = row_keys(parent)
        ranges = child_ranges(prk, parent.kind)
        with self._lock:
            found = [row for (p, r), row in self._rows.items() if p == pk and any(lo <= r < hi for lo, hi in ranges)]
        return [StoredRow(copy.deepcopy(row.entity), row.etag) for row in sorted(found, key=lambda s: s.entity["RowKey"])]

    def save_batch(self, items: list[tuple[Entity, str | None]]) -> None:
        with self._lock:
            for entity, etag in items:  # all or nothing, as a Table transaction
                _check_etag(self._rows, (entity["PartitionKey"], entity["RowKey"]), etag)
            for entity, _ in items:
                self._rows[(entity["PartitionKey"], entity["RowKey"])] = StoredRow(copy.deepcopy(entity), f"W/\"{next(self._etags)}\"")

    def add_history(self, record: HistoryRecord) -> None:
        entity = records.history_entity(record)
        key = key_of(entity)
        with self._lock:
            if key in self._history:
                raise AlreadyRecorded(copy.deepcopy(self._history[key]))
            self._history[key] = entity

    def note_duplicate(self, existing: Entity, now: datetime) -> None:
        update = records.duplicate_update(existing, now)
        with self._lock:
            self._history[key_of(update)].update(update)

    def add_rejected(self, record: RejectedRecord) -> None:
        entity = records.rejected_entity(record)
        with self._lock:
            self._rejected[key_of(entity)] = entity

    def add_alerts(self, alerts: list[Alert]) -> None:
        entities = [records.outbox_entity(a) for a in alerts]
        with self._lock:
            self._outbox.update({key_of(e): e for e in entities})

    def pending_alerts(self) -> list[Alert]:
        with self._lock:
            return [records.alert_from_entity(e) for (pk, _), e in sorted(self._outbox.items()) if pk == PENDING_ALERTS]

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime) -> None:
        with self._lock:
            for alert in alerts:
                self._outbox.pop((PENDING_ALERTS, alert.id), None)
                sent = records.sent_entity(alert, now)
                self._outbox[key_of(sent)] = sent

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

    def get(self, table: Table, partition_key: str, row_key: str) -> Entity | None:
        with self._lock:
            found = self._table(table).get((partition_key, row_key))
            entity = found.entity if isinstance(found, StoredRow) else found
            return copy.deepcopy(entity) if entity is not None else None

    def _table(self, table: Table) -> dict[tuple[str, str], Any]:
        """The dict of one table: StoredRows for the inventory and status tables, entities for the others."""
        tables: dict[Table, dict[tuple[str, str], Any]] = {
            Table.INVENTORY: self._rows, Table.HISTORY: self._history, Table.REJECTED: self._rejected,
            Table.OUTBOX: self._outbox, Table.STATUS: self._status}
        return tables[table]

    def history(self, service_key: str, path_key: str) -> list[Entity]:
        with self._lock:
            found = [copy.deepcopy(r) for r in self._history.values() if r["ServiceKey"] == service_key and r["PathKey"] == path_key]
        return sorted(found, key=lambda r: (r["EventTime"], r["EventId"]), reverse=True)

    @staticmethod
    def _copy(row: StoredRow | None) -> StoredRow | None:
        return StoredRow(copy.deepcopy(row.entity), row.etag) if row else None

    def _snapshot(self, table: Table) -> list[tuple[tuple[str, str], StoredRow]]:
        with self._lock:
            if table in (Table.INVENTORY, Table.STATUS):
                return sorted((self._rows if table is Table.INVENTORY else self._status).items())
            entities = {Table.HISTORY: self._history, Table.REJECTED: self._rejected, Table.OUTBOX: self._outbox}[table]
            return [(key, StoredRow(entity, "")) for key, entity in sorted(entities.items())]

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        found = [StoredRow(copy.deepcopy(row.entity), row.etag) for key, row in self._snapshot(query.table)
                 if _wanted(query, key, row.entity)]
        for at in range(0, len(found), page_size):
            yield found[at:at + page_size]

    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        deleted = 0
        with self._lock:
            store = self._table(table)
            for row in rows:
                key = (row.entity["PartitionKey"], row.entity["RowKey"])
                current = store.get(key)
                if current is None or (if_match and isinstance(current, StoredRow) and current.etag != row.etag):
                    continue  # gone, or changed since it was read: kept
                del store[key]
                deleted += 1
        return deleted

    def load_status(self, service_key: str) -> StoredRow | None:
        with self._lock:
            return self._copy(self._status.get(status_keys(service_key)))

    def save_status(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        return self._put(self._status, records.status_entity(service_key, entity), etag)


def _wanted(query: Query, key: tuple[str, str], entity: Entity) -> bool:
    """The query's key range and conditions, evaluated in memory."""
    return (query.low_pk is None or key[0] >= query.low_pk) and (query.high_pk is None or key[0] < query.high_pk) \
        and (query.low_rk is None or key[1] >= query.low_rk) and (query.high_rk is None or key[1] < query.high_rk) \
        and all(c.holds(entity) for c in query.conditions)


def _check_etag(store: dict[tuple[str, str], StoredRow], key: tuple[str, str], etag: str | None) -> None:
    """Insert (etag None) only where no row is; replace only the row as it was read. The lock is held."""
    current = store.get(key)
    if (current is None) != (etag is None) or (current is not None and current.etag != etag):
        raise WriteConflict(f"{key} changed since it was read")
