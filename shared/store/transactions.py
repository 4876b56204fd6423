"""The store's transactions as lists of operations, built once for both adapters: the Table store sends them as one
entity-group transaction, the in-memory twin applies them all or none under the same conditions (409 on a create
of an existing entity, 412 on an ETag that no longer matches, 404 on a missing one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from shared.domain.errors import WriteConflict
from shared.domain.kinds import Kind
from shared.store import counts, expiry_lists
from shared.store.keys import COUNT_ROW, check_entity, count_keys, count_shard, key_of, rejected_count_keys, rejected_keys
from shared.store.ports import Entity, PartitionWrite, RejectedRecord, StoredRow, Table
from shared.store.records import duplicate_update, history_entity, redelivered, rejected_entity

CREATE, REPLACE, MERGE, UPSERT, DELETE = "create", "replace", "merge", "upsert", "delete"
MAX_OPERATIONS = 100  # Table Storage's limit per transaction
ATTEMPTS = 10  # of a transaction whose conditions keep failing, before WriteConflict
Result = TypeVar("Result")


@dataclass(frozen=True)
class Op:
    action: str
    entity: Entity
    etag: str | None = None  # the condition of a replace, merge or delete (None: unconditional delete)


@dataclass
class Plan:
    """One transaction's operations; where the rows and the count row are among them (to read their new ETags)."""

    ops: list[Op] = field(default_factory=list)
    rows_at: int = 0
    count_at: int | None = None
    record: Entity | None = None  # the created history record, first: a 409 there is a redelivery

    def add(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1


def _write(entity: Entity, before: StoredRow | None) -> Op:
    return Op(CREATE, entity) if before is None else Op(REPLACE, entity, before.etag)


def count_row_of(write: PartitionWrite) -> tuple[str, str]:
    """The count row a write moves: the flag row when it changes a row's flag or listed expiry, else its resource's
    shard."""
    pk = count_keys(write.ref)[0]
    changes = [(c.before.entity if c.before else None, c.entity) for c in write.rows]
    listed = counts.flag_moves(changes) or expiry_lists.expiry_moves(changes)
    return pk, COUNT_ROW if listed else count_shard()


def tombstone_count_row(rows: list[StoredRow]) -> tuple[str, str]:
    """The count row a deletion of tombstones of one partition moves (the flag row when one of them is flagged or
    listed as expiring)."""
    pk = key_of(rows[0].entity)[0]
    removed = [(row.entity, None) for row in rows]
    return pk, COUNT_ROW if counts.flag_moves(removed) or expiry_lists.expiry_moves(removed) else count_shard()


def partition_plan(write: PartitionWrite, count_row: StoredRow | None) -> Plan:
    """The record, the duplicate's merge, the notes, the rows, then the count row `count_row_of` names (when anything
    moves it)."""
    plan = Plan()
    pk, count_rk = count_row_of(write)
    if write.record is not None:
        plan.record = history_entity(write.record)
        plan.add(Op(CREATE, plan.record))
    if write.duplicate is not None:
        plan.add(Op(MERGE, duplicate_update(write.duplicate.entity, write.at or write.duplicate.entity["RecordedAt"]),
                    write.duplicate.etag))
    for note in write.notes:
        plan.add(Op(UPSERT, history_entity(note)))
    plan.rows_at = len(plan.ops)
    for change in write.rows:
        check_entity(change.entity)
        if change.entity["PartitionKey"] != pk:
            raise ValueError(f"row {key_of(change.entity)} is not in partition {pk}")
        plan.add(_write(change.entity, change.before))
    changes = [(c.before.entity if c.before else None, c.entity) for c in write.rows]
    header = {"Service": write.ref.service.name, "ServiceKey": write.ref.service.key}
    counted = counts.counted(count_row.entity if count_row else None, (pk, count_rk), header, Kind(write.ref.family),
                             counts.deltas(changes), write.outcome, write.at, counts.flag_moves(changes),
                             expiry_lists.expiry_moves(changes), counts.workspace_deltas(changes))
    if counted is not None:
        plan.count_at = plan.add(_write(counted, count_row))
    if len(plan.ops) > MAX_OPERATIONS:
        raise ValueError(f"{len(plan.ops)} operations in one transaction; the limit is {MAX_OPERATIONS}")
    return plan


def tombstone_plan(rows: list[StoredRow], count_row: StoredRow | None, if_match: bool, counted: bool = True) -> Plan:
    """Deleting rows of one partition and, for tombstones (their Kind and IsDeleted read; `counted`), their counts in
    the count row `tombstone_count_row` names, in one transaction. (In layout 1, with no count rows yet, the shard's
    numbers are made up for by the migration's recount.)"""
    plan = Plan()
    for row in rows:
        plan.add(Op(DELETE, {"PartitionKey": row.entity["PartitionKey"], "RowKey": row.entity["RowKey"]}, row.etag if if_match else None))
    current = counts.uncounted(count_row.entity if count_row else None, tombstone_count_row(rows), [row.entity for row in rows]) if counted else None
    if current is not None:
        plan.count_at = plan.add(_write(current, count_row))
    return plan


def rejected_plan(record: RejectedRecord, existing: StoredRow | None, counter: StoredRow | None, keys: tuple[str, str],
                  now: datetime) -> Plan:
    """A rejection's record (created; a redelivery's merged under its ETag) and its day's counter row."""
    plan = Plan()
    plan.add(Op(CREATE, rejected_entity(record)) if existing is None else Op(MERGE, redelivered(existing.entity, now), existing.etag))
    plan.count_at = plan.add(_write(counts.rejected_counted(counter.entity if counter else None, keys, now), counter))
    return plan


class Transactions(Protocol):
    """What the retried plans below need of an adapter: point reads, and a plan sent as one transaction, raising
    WriteConflict when a condition fails (409, 412, 404: nothing was written)."""

    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        """One entity by its keys, with its ETag."""

    def submit(self, table: Table, plan: Plan) -> list[Any]:
        """The plan as one transaction on `table`; WriteConflict when a condition fails."""


def retried(attempt: Callable[[], Result], again: Callable[[], bool], what: str) -> Result | None:
    """`attempt` (a plan built from fresh reads, submitted) until it lands; after each WriteConflict `again()` reads
    what changed and says whether to try once more (False: give up, None). WriteConflict after ATTEMPTS."""
    for _ in range(ATTEMPTS):
        try:
            return attempt()
        except WriteConflict:
            if not again():
                return None
    raise WriteConflict(f"{what} kept changing")


def add_rejected(store: Transactions, record: RejectedRecord) -> None:
    """A rejection's record and its day's counter row in one transaction; the counter row is read each time
    (rejections are rare), and a conflict reads the record again (a concurrent redelivery may have created it)."""
    keys = rejected_count_keys(record.received_at)
    existing: list[StoredRow | None] = [None]

    def attempt() -> None:
        store.submit(Table.REJECTED, rejected_plan(record, existing[0], store.get(Table.REJECTED, *keys), keys, record.received_at))

    def again() -> bool:
        existing[0] = store.get(Table.REJECTED, *rejected_keys(record.received_at, record.identity))
        return True

    retried(attempt, again, "the rejected counter row")


def delete_one(store: Transactions, table: Table, row: StoredRow, if_match: bool) -> bool:
    """Delete one row (a tombstone with its count row's move); False when it is gone or, with `if_match`, changed
    since it was read (revived): kept."""
    pk, rk = key_of(row.entity)
    counted, count = table is Table.INVENTORY and "Kind" in row.entity, tombstone_count_row([row])

    def attempt() -> bool:
        store.submit(table, tombstone_plan([row], store.get(table, *count) if counted else None, if_match, counted))
        return True

    def again() -> bool:
        current = store.get(table, pk, rk)
        return current is not None and not (if_match and current.etag != row.etag)

    return bool(retried(attempt, again, f"the count row of {pk}"))
