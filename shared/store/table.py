"""The store's ports over Azure Table Storage (azure-data-tables), with a per-process row cache.

Constructing it sends nothing: the composition root calls `create_tables` once at start-up.

The cache holds each row's last known entity and ETag. It only ever saves a read: every write
carries If-Match, so a row changed by another process fails with 412 and is read again. The worker's
threads share it, so every touch of it holds its lock (dict operations only: no I/O under it).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef
from shared.store.keys import PENDING_ALERTS, check_entity, child_ranges, key_of, legacy_history_partition_range, row_keys, status_keys
from shared.store.ports import Entity, HistoryRecord, Loaded, Query, RejectedRecord, StoredRow, Table, Token
from shared.store.records import (
    alert_from_entity,
    duplicate_update,
    history_entity,
    outbox_entity,
    rejected_entity,
    sent_entity,
    status_entity,
)

_MISSING = StoredRow({}, "")


def _as_entity(entity: Any) -> Entity:
    """An SDK entity as a plain dict, its datetimes as plain aware UTC datetimes (not the SDK's subclass)."""
    out: Entity = {}
    for key, value in entity.items():
        if isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                             value.microsecond, tzinfo=timezone.utc)
        out[key] = value
    return out


def _stored(entity: Any) -> StoredRow:
    return StoredRow(_as_entity(entity), entity.metadata["etag"])


@dataclass(frozen=True)
class TableNames:
    """The five tables of one inventory (the app settings name them: docs/settings.md)."""

    inventory: str
    history: str
    rejected: str
    outbox: str
    status: str


class TableStore:
    """Every port of `shared.store.ports` over one set of tables."""

    def __init__(self, service: TableServiceClient, tables: TableNames, cache_size: int = 10_000) -> None:
        self._service = service
        self._names = tables
        self._clients = {table: service.get_table_client(getattr(tables, table.name.lower())) for table in Table}
        self._inventory = self._clients[Table.INVENTORY]
        self._history = self._clients[Table.HISTORY]
        self._rejected = self._clients[Table.REJECTED]
        self._outbox = self._clients[Table.OUTBOX]
        self._status = self._clients[Table.STATUS]
        self._cache: OrderedDict[tuple[str, str], StoredRow] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = cache_size

    def create_tables(self) -> None:
        """Create the five tables where missing: once, at start-up (a request each)."""
        for table in Table:
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(getattr(self._names, table.name.lower()))

    # -- cache -----------------------------------------------------------------------------
    def _remember(self, key: tuple[str, str], row: StoredRow | None) -> None:
        with self._cache_lock:
            self._cache[key] = row or _MISSING
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _cached(self, key: tuple[str, str]) -> tuple[bool, StoredRow | None]:
        with self._cache_lock:
            row = self._cache.get(key)
            if row is None:
                return False, None
            self._cache.move_to_end(key)
        return True, None if row is _MISSING else StoredRow(dict(row.entity), row.etag)

    def _drop(self, keys: list[tuple[str, str]]) -> None:
        with self._cache_lock:
            for key in keys:
                self._cache.pop(key, None)

    # -- inventory -------------------------------------------------------------------------
    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded:
        pk, rk, parent_rk = row_keys(ref)
        if not fresh:
            hit, row = self._cached((pk, rk))
            parent_hit, parent = self._cached((pk, parent_rk)) if parent_rk else (True, None)
            # A remembered miss is trusted for top-level rows (the insert fails with 409 if the row
            # appeared since); a new child always rereads its parent, whose deletion it must inherit.
            if hit and parent_hit and (row is not None or parent_rk is None):
                return row, parent
        if parent_rk is None:
            try:
                row = _stored(self._inventory.get_entity(pk, rk))
            except ResourceNotFoundError:
                row = None
            self._remember((pk, rk), row)
            return row, None
        found = {
            e["RowKey"]: _stored(e)
            for e in self._inventory.query_entities(
                "PartitionKey eq @pk and ( RowKey eq @rk or RowKey eq @prk )",
                parameters={"pk": pk, "rk": rk, "prk": parent_rk},
            )
        }
        self._remember((pk, rk), found.get(rk))
        self._remember((pk, parent_rk), found.get(parent_rk))
        return found.get(rk), found.get(parent_rk)

    def save(self, entity: Entity, etag: str | None) -> StoredRow:
        check_entity(entity)
        key = (entity["PartitionKey"], entity["RowKey"])
        try:
            stored = _put(self._inventory, entity, etag)
        except WriteConflict:
            self._drop([key])
            raise
        self._remember(key, stored)
        return stored

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        pk, prk, _ = row_keys(parent)
        rows: list[StoredRow] = []
        for low, high in child_ranges(prk, parent.kind):
            query = self._inventory.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": pk, "low": low, "high": high},
            )
            rows.extend(_stored(e) for e in query)
        return rows

    def save_batch(self, items: list[tuple[Entity, str | None]]) -> None:
        """One transaction. Each replace carries If-Match, so a row changed since it was read fails the
        whole batch with 412 (an insert of a row that appeared meanwhile: 409), on Azure and on Azurite 3.35."""
        for entity, _ in items:
            check_entity(entity)
        operations: list[Any] = [
            ("create", entity) if etag is None
            else ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})
            for entity, etag in items
        ]
        try:
            results = self._inventory.submit_transaction(operations)
        except TableTransactionError as exc:
            self._drop([(entity["PartitionKey"], entity["RowKey"]) for entity, _ in items])
            if exc.status_code in (409, 412, 404):
                raise WriteConflict(f"transaction of {len(items)} rows: {exc.status_code}") from exc
            raise
        for (entity, _), meta in zip(items, results, strict=True):
            self._remember((entity["PartitionKey"], entity["RowKey"]), StoredRow(dict(entity), meta["etag"]))

    def get(self, table: Table, partition_key: str, row_key: str) -> Entity | None:
        try:
            return _as_entity(self._clients[table].get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        pages = _entities(self._clients[query.table], query, top).by_page(continuation_token=continuation)  # type: ignore[arg-type]
        found: list[Entity] = []
        for page in pages:
            found.extend(_as_entity(e) for e in page)
            token = pages.continuation_token or None  # type: ignore[attr-defined]
            if top is not None and (found or token is None):
                return found, token  # a filtered page may come back empty with a token: read on
        return found, None

    # -- alert outbox ----------------------------------------------------------------------
    def add_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._outbox.upsert_entity(outbox_entity(alert), mode=UpdateMode.REPLACE)

    def pending_alerts(self) -> list[Alert]:
        found = self._outbox.query_entities("PartitionKey eq @pk", parameters={"pk": PENDING_ALERTS})
        return [alert_from_entity(_as_entity(e)) for e in found]

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime) -> None:
        """Two transactions per 100 alerts: the sent copies, then the pending deletes (a crash in
        between only means the alert is sent again, with the same id)."""
        for at in range(0, len(alerts), 100):
            chunk = alerts[at:at + 100]
            self._outbox.submit_transaction([("upsert", sent_entity(a, now), {"mode": UpdateMode.REPLACE}) for a in chunk])
            try:
                self._outbox.submit_transaction([("delete", {"PartitionKey": PENDING_ALERTS, "RowKey": a.id}) for a in chunk])
            except TableTransactionError:
                # Another flush sent some of them too; single deletes ignore what is already gone.
                for alert in chunk:
                    self._outbox.delete_entity(PENDING_ALERTS, alert.id)

    # -- history and rejected events -----------------------------------------------------
    def add_history(self, record: HistoryRecord) -> None:
        entity = history_entity(record)
        try:
            self._history.create_entity(entity)
        except ResourceExistsError:
            existing = self._history.get_entity(*key_of(entity))
            raise AlreadyRecorded(_as_entity(existing)) from None

    def note_duplicate(self, existing: Entity, now: datetime) -> None:
        self._history.update_entity(duplicate_update(existing, now), mode=UpdateMode.MERGE)

    def history(self, service_key: str, path_key: str) -> list[Entity]:
        low, high = legacy_history_partition_range(service_key)
        found = [
            _as_entity(e)
            for e in self._history.query_entities(
                "PartitionKey ge @low and PartitionKey le @high and PathKey eq @path",
                parameters={"low": low, "high": high, "path": path_key},
            )
        ]
        return sorted(found, key=lambda r: (r["EventTime"], r["EventId"]), reverse=True)

    def add_rejected(self, record: RejectedRecord) -> None:
        self._rejected.upsert_entity(rejected_entity(record), mode=UpdateMode.REPLACE)

    # -- retention and status rows ---------------------------------------------------------
    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        for page in _entities(self._clients[query.table], query, page_size, select).by_page():
            rows = [_stored(e) for e in page]
            if rows:  # a filtered page may come back empty, with a continuation
                yield rows

    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        """A transaction per partition and 100 rows. When one fails (a row changed: 412, or is gone: 404; Azure
        applies none of it), its rows are deleted one by one, each under its own condition."""
        client = self._clients[table]
        partitions: dict[str, list[StoredRow]] = defaultdict(list)
        for row in rows:
            partitions[row.entity["PartitionKey"]].append(row)
        deleted = 0
        when = MatchConditions.IfNotModified if if_match else MatchConditions.Unconditionally
        for group in partitions.values():
            for at in range(0, len(group), 100):
                chunk = [(r.entity["PartitionKey"], r.entity["RowKey"], r.etag if if_match else None) for r in group[at:at + 100]]
                try:
                    client.submit_transaction([("delete", {"PartitionKey": pk, "RowKey": rk}, {"etag": etag, "match_condition": when})
                                               for pk, rk, etag in chunk])
                    deleted += len(chunk)
                except TableTransactionError:
                    for pk, rk, etag in chunk:
                        with contextlib.suppress(ResourceModifiedError):  # changed since it was read (revived): kept
                            client.delete_entity(pk, rk, etag=etag, match_condition=when)  # a 404 passes silently
                            deleted += 1
                if table is Table.INVENTORY:
                    self._drop([(pk, rk) for pk, rk, _ in chunk])
        return deleted

    def load_status(self, service_key: str) -> StoredRow | None:
        try:
            return _stored(self._status.get_entity(*status_keys(service_key)))
        except ResourceNotFoundError:
            return None

    def save_status(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        return _put(self._status, status_entity(service_key, entity), etag)


def _put(table: TableClient, entity: Entity, etag: str | None) -> StoredRow:
    """Insert when etag is None, else replace under If-Match; WriteConflict when someone else wrote first."""
    try:
        if etag is None:
            meta = table.create_entity(entity)
        else:
            meta = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
    except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
        raise WriteConflict(f"{(entity['PartitionKey'], entity['RowKey'])} changed since it was read") from exc
    return StoredRow(dict(entity), meta["etag"])


def _entities(table: TableClient, query: Query, page_size: int | None, select: tuple[str, ...] | None = None) -> Any:
    """The query as a filter of `column op @pN` with the values as parameters (never pasted into the text)."""
    parts, params = [], {}
    if query.low_pk is not None:
        parts.append("PartitionKey ge @low")
        params["low"] = query.low_pk
    if query.high_pk is not None:
        parts.append("PartitionKey lt @high")
        params["high"] = query.high_pk
    if query.low_rk is not None:
        parts.append("RowKey ge @lowrk")
        params["lowrk"] = query.low_rk
    if query.high_rk is not None:
        parts.append("RowKey lt @highrk")
        params["highrk"] = query.high_rk
    for n, condition in enumerate(query.conditions):
        parts.append(f"{condition.column} {condition.op} @p{n}")
        params[f"p{n}"] = condition.value
    columns = list(select) if select else None
    if parts:
        return table.query_entities(" and ".join(parts), parameters=params, results_per_page=page_size, select=columns)
    return table.list_entities(results_per_page=page_size, select=columns)
