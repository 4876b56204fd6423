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

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.domain.errors import AlreadyRecorded, WriteConflict
from shared.domain.flags import Alert
from shared.domain.resources import ResourceRef
from shared.store import table_io as sdk
from shared.store import transactions
from shared.store.keys import (
    LAYOUT_KEYS,
    PENDING_ALERTS,
    check_entity,
    child_ranges,
    key_of,
    row_keys,
    status_keys,
    sync_keys,
)
from shared.store.ports import Entity, Loaded, PartitionWrite, Query, RejectedRecord, StoredRow, Table, Token
from shared.store.records import (
    alert_from_entity,
    feed_entities,
    layout_marker,
    outbox_entity,
    seen_entity,
    sent_entity,
    status_entity,
)
from shared.store.transactions import CREATE, REPLACE, Op, Plan, count_row_of, partition_plan, tombstone_count_row, tombstone_plan

_MISSING = StoredRow({}, "")


@dataclass(frozen=True)
class TableNames:
    """The six tables of one inventory (the app settings name them: docs/settings.md)."""

    inventory: str
    history: str
    rejected: str
    outbox: str
    status: str
    usage: str


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
        """Create the six tables where missing: once, at start-up (a request each). A new inventory (no entity
        yet) is in the current layout from the start: its layout marker is written (two requests more)."""
        for table in Table:
            with contextlib.suppress(ResourceExistsError):
                self._service.create_table(getattr(self._names, table.name.lower()))
        if self.get(Table.STATUS, *LAYOUT_KEYS) is None and not self.page(Query(Table.INVENTORY), 1)[0]:
            with contextlib.suppress(WriteConflict):
                self.put(Table.STATUS, layout_marker(datetime.now(timezone.utc)), None)

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
        """Point reads of what the cache does not hold: `or` on RowKey would make a partition scan on Azure, and a
        partition holds its rows' history too."""
        pk, rk, parent_rk = row_keys(ref)
        hit, row = (False, None) if fresh else self._cached((pk, rk))
        # A remembered miss is trusted for top-level rows and children (the insert fails with 409 if the row
        # appeared since); a new child always rereads its parent, whose deletion it must inherit.
        if not hit:
            row = self._point(pk, rk)
        if parent_rk is None:
            return row, None
        parent_hit, parent = (False, None) if fresh or row is None else self._cached((pk, parent_rk))
        return row, parent if parent_hit else self._point(pk, parent_rk)

    def _point(self, pk: str, rk: str) -> StoredRow | None:
        row = self.get(Table.INVENTORY, pk, rk)
        self._remember((pk, rk), row)
        return row

    def _count_row(self, key: tuple[str, str]) -> StoredRow | None:
        hit, row = self._cached(key)
        return row if hit else self._point(*key)

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        """One transaction: Azure honours If-Match per operation inside it, and so does Azurite 3.35 (a test pins
        it). A 412 or 409 drops the rows and the count row from the cache, so the retry reads them again."""
        count = count_row_of(write)
        plan = partition_plan(write, self._count_row(count))
        if not plan.ops:
            return []
        rows = plan.ops[plan.rows_at:plan.rows_at + len(write.rows)]
        results = self._submit(self._inventory, plan, [key_of(op.entity) for op in rows] + [count])
        stored = [StoredRow(dict(op.entity), meta["etag"]) for op, meta in zip(rows, results[plan.rows_at:], strict=False)]
        for row in stored:
            self._remember(key_of(row.entity), row)
        if plan.count_at is not None:
            self._remember(count, StoredRow(dict(plan.ops[plan.count_at].entity), results[plan.count_at]["etag"]))
        return stored

    def put_all(self, table: Table, writes: list[tuple[Entity, str | None]]) -> list[StoredRow]:
        plan = Plan([Op(CREATE, entity) if etag is None else Op(REPLACE, entity, etag) for entity, etag in writes])
        results = self._submit(self._clients[table], plan, [])
        return [StoredRow(dict(entity), result["etag"]) for (entity, _), result in zip(writes, results, strict=True)]

    def submit(self, table: Table, plan: Plan) -> list[Any]:
        """One plan as a transaction on `table` (the shared retried plans' port): WriteConflict when a condition fails."""
        return self._submit(self._clients[table], plan, [key_of(op.entity) for op in plan.ops] if table is Table.INVENTORY else [])

    def _submit(self, client: TableClient, plan: Plan, cached: list[tuple[str, str]]) -> list[Any]:
        try:
            return list(client.submit_transaction([sdk.operation(op) for op in plan.ops]))
        except TableTransactionError as exc:
            if exc.status_code == 409 and plan.record is not None:
                existing = self.get(Table.INVENTORY, *key_of(plan.record))
                if existing is not None:  # a redelivery: nothing else was the cause, so the cache stands
                    raise AlreadyRecorded(existing.entity, existing.etag) from None
            self._drop(cached)
            if exc.status_code in (409, 412, 404):
                raise WriteConflict(f"transaction of {len(plan.ops)} operations: {exc.status_code}") from exc
            raise

    def children(self, parent: ResourceRef) -> list[StoredRow]:
        pk, prk, _ = row_keys(parent)
        rows: list[StoredRow] = []
        for low, high in child_ranges(prk, parent.kind):
            query = self._inventory.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": pk, "low": low, "high": high},
            )
            rows.extend(sdk.stored(e) for e in query)
        return rows

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        pages = sdk.entities(self._clients[query.table], query, top).by_page(continuation_token=continuation)  # type: ignore[arg-type]
        found: list[Entity] = []
        for page in pages:
            found.extend(sdk.as_entity(e) for e in page)
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
        return [alert_from_entity(sdk.as_entity(e)) for e in found]

    def mark_alerts_sent(self, alerts: list[Alert], now: datetime, sent_to: str = "topic") -> None:
        """Two transactions per 100 alerts: the sent copies, then the pending deletes (a crash in
        between only means the alert is sent again, with the same id)."""
        for at in range(0, len(alerts), 100):
            chunk = alerts[at:at + 100]
            self._outbox.submit_transaction([("upsert", sent_entity(a, now, sent_to), {"mode": UpdateMode.REPLACE}) for a in chunk])
            try:
                self._outbox.submit_transaction([("delete", {"PartitionKey": PENDING_ALERTS, "RowKey": a.id}) for a in chunk])
            except TableTransactionError:
                # Another flush sent some of them too; single deletes ignore what is already gone.
                for alert in chunk:
                    self._outbox.delete_entity(PENDING_ALERTS, alert.id)

    # -- history and rejected events -----------------------------------------------------
    def add_feed(self, records: list[Entity]) -> None:
        partitions: dict[str, list[Entity]] = defaultdict(list)
        for record in records:
            for entry in feed_entities(record):
                partitions[entry["PartitionKey"]].append(entry)
        for entries in partitions.values():
            for at in range(0, len(entries), 100):
                self._history.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entries[at:at + 100]])

    def add_rejected(self, record: RejectedRecord) -> None:
        transactions.add_rejected(self, record)

    # -- retention and status rows ---------------------------------------------------------
    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        for page in sdk.entities(self._clients[query.table], query, page_size, select).by_page():
            rows = [sdk.stored(e) for e in page]
            if rows:  # a filtered page may come back empty, with a continuation
                yield rows

    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        """A transaction per partition and 99 rows (with the count row, for tombstones). When one fails (a row
        changed: 412, or is gone: 404; Azure applies none of it), its rows are deleted one by one, each under its
        own condition."""
        client = self._clients[table]
        partitions: dict[str, list[StoredRow]] = defaultdict(list)
        for row in rows:
            partitions[row.entity["PartitionKey"]].append(row)
        deleted = 0
        for group in partitions.values():
            for at in range(0, len(group), 99):
                chunk = group[at:at + 99]
                counted = table is Table.INVENTORY and any("Kind" in r.entity for r in chunk)  # tombstones, not history
                count = tombstone_count_row(chunk)
                plan = tombstone_plan(chunk, self._count_row(count) if counted else None, if_match, counted)
                try:
                    results = self._submit(client, plan, [count] if counted else [])
                    deleted += len(chunk)
                    if plan.count_at is not None:
                        self._remember(count, StoredRow(dict(plan.ops[plan.count_at].entity), results[plan.count_at]["etag"]))
                except WriteConflict:
                    deleted += sum(transactions.delete_one(self, table, row, if_match) for row in chunk)
                if table is Table.INVENTORY:
                    self._drop([key_of(r.entity) for r in chunk])
        return deleted

    def load_status(self, service_key: str) -> StoredRow | None:
        return self.get(Table.STATUS, *status_keys(service_key))

    def save_status(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        return sdk.put(self._status, status_entity(service_key, entity), etag)

    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        try:
            return sdk.stored(self._clients[table].get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None

    def put(self, table: Table, entity: Entity, etag: str | None) -> StoredRow:
        try:
            return sdk.put(self._clients[table], entity, etag)
        finally:
            if table is Table.INVENTORY:
                self._drop([key_of(entity)])

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        partitions: dict[str, list[Entity]] = defaultdict(list)
        for entity in entities:
            partitions[entity["PartitionKey"]].append(entity)
        for group in partitions.values():
            for at in range(0, len(group), 100):
                self._clients[table].submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in group[at:at + 100]])
            if table is Table.INVENTORY:
                self._drop([key_of(e) for e in group])

    def load_sync(self, service_key: str) -> StoredRow | None:
        return self.get(Table.STATUS, *sync_keys(service_key))

    def save_sync(self, service_key: str, entity: Entity, etag: str | None) -> StoredRow:
        pk, rk = sync_keys(service_key)
        return sdk.put(self._status, {**entity, "PartitionKey": pk, "RowKey": rk}, etag)

    def save_seen(self, service_key: str, unit: int, page: int, family: str, keys: list[str], parents: list[str]) -> None:
        entity = seen_entity(service_key, unit, page, family, keys, parents)
        check_entity(entity)
        self._status.upsert_entity(entity, mode=UpdateMode.REPLACE)
