"""The in-memory twin of the Table repository: the same contract (shared.store.ports), with ETags, in dicts."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.store.ports import Entity, Query, StoredRow, Token


class InMemoryInventoryRepository:
    """The same contract as the Table repository, with ETags, in a dict. Thread-safe."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StoredRow] = {}
        self._history: dict[tuple[str, str], Entity] = {}
        self._rejected: dict[tuple[str, str], Entity] = {}
        self._outbox: dict[tuple[str, str], Entity] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self._status: dict[tuple[str, str], StoredRow] = {}

    def load(self, pk: str, rk: str, parent_rk: str | None, *, fresh: bool = False) -> tuple[StoredRow | None, StoredRow | None]:
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

    def children(self, pk: str, ranges: list[tuple[str, str]]) -> list[StoredRow]:
        with self._lock:
            found = [row for (p, r), row in self._rows.items() if p == pk and any(lo <= r < hi for lo, hi in ranges)]
        return [StoredRow(copy.deepcopy(row.entity), row.etag) for row in sorted(found, key=lambda s: s.entity["RowKey"])]

    def save_batch(self, items: list[tuple[Entity, str | None]]) -> None:
        with self._lock:
            for entity, etag in items:  # all or nothing, as a Table transaction
                _check_etag(self._rows, (entity["PartitionKey"], entity["RowKey"]), etag)
            for entity, _ in items:
                self._rows[(entity["PartitionKey"], entity["RowKey"])] = StoredRow(copy.deepcopy(entity), f"W/\"{next(self._etags)}\"")

    def add_history(self, record: Entity) -> None:
        key = (record["PartitionKey"], record["RowKey"])
        with self._lock:
            if key in self._history:
                raise AlreadyRecorded(copy.deepcopy(self._history[key]))
            self._history[key] = copy.deepcopy(record)

    def note_duplicate(self, record: Entity, now: datetime) -> None:
        with self._lock:
            stored = self._history[(record["PartitionKey"], record["RowKey"])]
            stored["Duplicates"] = int(stored.get("Duplicates", 0)) + 1
            stored["LastDuplicateAt"] = now

    def add_rejected(self, record: Entity) -> None:
        with self._lock:
            self._rejected[(record["PartitionKey"], record["RowKey"])] = copy.deepcopy(record)

    def watched(self, kind: str, family: str) -> list[StoredRow]:
        with self._lock:
            found = [row for row in self._rows.values() if row.entity["Kind"] == kind]
        return [StoredRow(copy.deepcopy(row.entity), row.etag) for row in found]

    def add_alerts(self, entities: list[Entity]) -> None:
        with self._lock:
            self._outbox.update({(e["PartitionKey"], e["RowKey"]): copy.deepcopy(e) for e in entities})

    def pending_alerts(self) -> list[Entity]:
        with self._lock:
            return [copy.deepcopy(e) for (pk, _), e in sorted(self._outbox.items()) if pk == "pending"]

    def mark_alerts_sent(self, entities: list[Entity], now: datetime) -> None:
        with self._lock:
            for entity in entities:
                self._outbox.pop(("pending", entity["RowKey"]), None)
                sent = {**entity, "PartitionKey": f"sent|{now:%Y%m%d}", "SentAt": now}
                self._outbox[(sent["PartitionKey"], sent["RowKey"])] = sent

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

    def rows(self) -> Iterator[Entity]:
        with self._lock:
            items = sorted(self._rows.items())
        for _, row in items:
            yield copy.deepcopy(row.entity)

    def history(self, service_key: str, path_key: str) -> list[Entity]:
        with self._lock:
            found = [copy.deepcopy(r) for r in self._history.values() if r["ServiceKey"] == service_key and r["PathKey"] == path_key]
        return sorted(found, key=lambda r: (r["EventTime"], r["EventId"]), reverse=True)

    def all_history(self) -> list[Entity]:
        with self._lock:
            return [copy.deepcopy(r) for _, r in sorted(self._history.items())]

    def rejected(self) -> list[Entity]:
        with self._lock:
            return [copy.deepcopy(r) for _, r in sorted(self._rejected.items())]

    @staticmethod
    def _copy(row: StoredRow | None) -> StoredRow | None:
        return StoredRow(copy.deepcopy(row.entity), row.etag) if row else None

    def _snapshot(self, table: str) -> list[tuple[tuple[str, str], StoredRow]]:
        with self._lock:
            if table in ("inventory", "status"):
                return sorted((self._rows if table == "inventory" else self._status).items())
            entities = {"history": self._history, "rejected": self._rejected, "alerts": self._outbox}[table]
            return [(key, StoredRow(entity, "")) for key, entity in sorted(entities.items())]

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        found = [StoredRow(copy.deepcopy(row.entity), row.etag) for key, row in self._snapshot(query.table)
                 if _wanted(query, key, row.entity)]
        for at in range(0, len(found), page_size):
            yield found[at:at + page_size]

    def delete_rows(self, table: str, rows: list[StoredRow], *, if_match: bool = False) -> int:
        deleted = 0
        with self._lock:
            stores: dict[str, dict[tuple[str, str], Any]] = {
                "inventory": self._rows, "history": self._history, "rejected": self._rejected, "alerts": self._outbox,
                "status": self._status}
            store = stores[table]
            for row in rows:
                key = (row.entity["PartitionKey"], row.entity["RowKey"])
                current = store.get(key)
                if current is None or (if_match and isinstance(current, StoredRow) and current.etag != row.etag):
                    continue  # gone, or changed since it was read: kept
                del store[key]
                deleted += 1
        return deleted

    def load_status(self, pk: str, rk: str) -> StoredRow | None:
        with self._lock:
            return self._copy(self._status.get((pk, rk)))

    def save_status(self, entity: Entity, etag: str | None) -> StoredRow:
        return self._put(self._status, entity, etag)


def _wanted(query: Query, key: tuple[str, str], entity: Entity) -> bool:
    """The query's key range and conditions, evaluated in memory."""
    return (query.low_pk is None or key[0] >= query.low_pk) and (query.high_pk is None or key[0] < query.high_pk) \
        and all(c.holds(entity) for c in query.conditions)


def _check_etag(store: dict[tuple[str, str], StoredRow], key: tuple[str, str], etag: str | None) -> None:
    """Insert (etag None) only where no row is; replace only the row as it was read. The lock is held."""
    current = store.get(key)
    if (current is None) != (etag is None) or (current is not None and current.etag != etag):
        raise WriteConflict(f"{key} changed since it was read")
