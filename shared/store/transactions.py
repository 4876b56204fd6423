"""The store's transactions as lists of operations, built once for both adapters: the Table store sends them as one
entity-group transaction, the in-memory twin applies them all or none under the same conditions (409 on a create
of an existing entity, 412 on an ETag that no longer matches, 404 on a missing one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.domain.kinds import Kind
from shared.store import counts, expiry_lists
from shared.store.keys import check_entity, count_keys, key_of
from shared.store.ports import Entity, PartitionWrite, RejectedRecord, StoredRow
from shared.store.records import duplicate_update, history_entity, redelivered, rejected_entity

CREATE, REPLACE, MERGE, UPSERT, DELETE = "create", "replace", "merge", "upsert", "delete"
MAX_OPERATIONS = 100  # Table Storage's limit per transaction


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


def partition_plan(write: PartitionWrite, count_row: StoredRow | None) -> Plan:
    """The record, the duplicate's merge, the notes, the rows, then the count row (when anything moves it)."""
    plan = Plan()
    pk = count_keys(write.ref)[0]
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
    counted = counts.counted(count_row.entity if count_row else None, count_keys(write.ref), header, Kind(write.ref.family),
                             counts.deltas(changes), write.outcome, write.at, counts.flag_moves(changes),
                             expiry_lists.expiry_moves(changes))
    if counted is not None:
        plan.count_at = plan.add(_write(counted, count_row))
    if len(plan.ops) > MAX_OPERATIONS:
        raise ValueError(f"{len(plan.ops)} operations in one transaction; the limit is {MAX_OPERATIONS}")
    return plan


def tombstone_plan(rows: list[StoredRow], count_row: StoredRow | None, if_match: bool) -> Plan:
    """Deleting tombstones of one partition (their Kind and IsDeleted read) and their counts, in one transaction."""
    plan = Plan()
    for row in rows:
        plan.add(Op(DELETE, {"PartitionKey": row.entity["PartitionKey"], "RowKey": row.entity["RowKey"]}, row.etag if if_match else None))
    current = counts.uncounted(count_row.entity, [row.entity for row in rows]) if count_row is not None else None
    if current is not None:  # no count row yet (layout 1): the migration's recount counts
        plan.count_at = plan.add(_write(current, count_row))
    return plan


def rejected_plan(record: RejectedRecord, existing: StoredRow | None, counter: StoredRow | None, keys: tuple[str, str],
                  now: datetime) -> Plan:
    """A rejection's record (created; a redelivery's merged under its ETag) and its day's counter row."""
    plan = Plan()
    plan.add(Op(CREATE, rejected_entity(record)) if existing is None else Op(MERGE, redelivered(existing.entity, now), existing.etag))
    plan.count_at = plan.add(_write(counts.rejected_counted(counter.entity if counter else None, keys, now), counter))
    return plan
