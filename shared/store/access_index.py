"""Reverse indexes for the access questions: subscriptions by scope and by owner, products by the APIs they contain.

An entry lives in the status table: PartitionKey "access|{index}|{service}|{bucket of the value}", RowKey
"{value}|{the target's RowKey}"; it names the row it points to (TargetPartition, TargetRow). An entry is upserted
BEFORE the row write that makes it true, so a crash between the two leaves an entry too many, never one too few, and
a row whose value changes leaves its old entry behind: the entries of a value are a superset of the rows that hold it.
The read side point-reads each entry's row and keeps it only if it holds the value now (`holds`). One key range per
value and one point read per entry: the cost grows with the answer, not with the tables.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.domain.access import api_value, linked_api, owner_name, parse_scope
from shared.domain.kinds import Kind
from shared.domain.resources import ResourceRef
from shared.store.keys import bucket, check_key, child_ranges, encode_part, resource_keys, status_keys, workspace_of_row_key
from shared.store.ports import Condition, Entity, Query, StoredRow, Table, TableReader, TableWriter

SCOPE, OWNER, API = "scope", "owner", "products"  # subscriptions by Scope, by OwnerId; products (their API links) by API
PREFIX = "access|"
SCHEMA_VERSION = 1


def indexed(entity: Entity | None) -> dict[str, str]:
    """The index values a live row holds: a subscription's scope key and owner, a product API link's API."""
    if entity is None or entity.get("IsDeleted"):
        return {}
    return _values(entity)


def _values(entity: Entity) -> dict[str, str]:
    """The index values of a row's columns, live or a tombstone."""
    kind = entity.get("Kind")
    if kind == Kind.SUBSCRIPTION:
        scope, owner = parse_scope(entity.get("Scope")), owner_name(entity.get("OwnerId"))
        return {**({SCOPE: scope.key} if scope else {}), **({OWNER: owner} if owner else {})}
    if kind == Kind.PRODUCT_API:
        if not workspace_of_row_key(str(entity.get("RowKey", ""))):
            return {API: api_value(None, str(entity.get("Name", "")))}  # a service product's link is named after its API
        linked = linked_api(entity.get("LinkedApiId"))  # a workspace product's link names its API by ARM id
        return {API: api_value(linked.workspace, linked.name or "")} if linked is not None else {}
    return {}


def holds(entity: Entity | None, index: str, value: str) -> bool:
    """Whether the row an entry points to holds the entry's value now (live, and the same value)."""
    return indexed(entity).get(index) == value


def _service_part(entity: Entity) -> str:
    return str(entity["PartitionKey"]).split("|")[1]  # "{family}|{service}|{bucket}", the service already encoded


def partition(index: str, service_part: str, value: str) -> str:
    return f"{PREFIX}{index}|{service_part}|{bucket(value):02d}"


def entries(before: Entity | None, after: Entity) -> list[Entity]:
    """The entries a write from `before` to `after` needs first: one per value the row holds after it and did not
    hold (live) before."""
    old = indexed(before)
    return [_entry(index, value, after) for index, value in indexed(after).items() if old.get(index) != value]


def _entry(index: str, value: str, row: Entity) -> Entity:
    pk, rk = partition(index, _service_part(row), value), f"{encode_part(value)}|{row['RowKey']}"
    check_key(rk, "RowKey")
    return {"PartitionKey": pk, "RowKey": rk, "SchemaVersion": SCHEMA_VERSION, "TargetPartition": row["PartitionKey"],
            "TargetRow": row["RowKey"]}


COLUMNS = ("Kind", "Name", "Scope", "OwnerId", "LinkedApiId")  # the columns the index values follow from (a purge selects them)


def entries_of_tombstones(reader: TableReader, rows: Iterable[Entity]) -> list[StoredRow]:
    """The stored entries the values of these tombstones point from (their last values: an entry of a value a row
    held before it is left), each read with its ETag so that a delete under If-Match keeps one that a revival
    upserted meanwhile. One point read per value."""
    found = []
    for row in rows:
        for index, value in _values(row).items():
            entry = _entry(index, value, row)
            stored = reader.get(Table.STATUS, entry["PartitionKey"], entry["RowKey"])
            if stored is not None:
                found.append(stored)
    return found


def lookup(index: str, service_key: str, value: str) -> Query:
    """Every entry of one value in one service: one RowKey range in one partition."""
    prefix = f"{encode_part(value)}|"
    pk = partition(index, encode_part(service_key), value)
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=prefix, high_rk=prefix[:-1] + "}")


def live_row(reader: TableReader, ref: ResourceRef) -> Entity | None:
    """A resource's row by a point read, or None when absent or a tombstone."""
    row = reader.get(Table.INVENTORY, *resource_keys(ref))
    return row.entity if row is not None and not row.entity.get("IsDeleted") else None


def status_row(reader: TableReader, service_key: str) -> Entity | None:
    row = reader.get(Table.STATUS, *status_keys(service_key))
    return row.entity if row is not None else None


def children_of(parent: ResourceRef, kind: Kind | None = None) -> list[Query]:
    """A parent's child rows (of one kind, when given): key ranges in the parent's partition."""
    pk, rk = resource_keys(parent)
    kinds = (Condition("Kind", "eq", kind.value),) if kind is not None else ()
    return [Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", pk), *kinds), low_rk=low, high_rk=high)
            for low, high in child_ranges(rk, parent.kind)]


class AccessIndex:
    """Writes the entries of rows about to be written (RowWriter calls it before every transaction of rows)."""

    def __init__(self, tables: TableWriter) -> None:
        self._tables = tables

    def __call__(self, writes: Iterable[tuple[Entity | None, Entity]]) -> None:
        found = [entry for before, after in writes for entry in entries(before, after)]
        if found:
            self._tables.upsert(Table.STATUS, found)
