"""`flags`: gateway tokens near expiry or expired, circuit breakers open or stuck open, live rows only; read from the
count rows' `Flagged` lists (`shared.store.counts`), so the rows read are the rows listed.

Requests: the layout marker, the status rows (the services), 32 point reads of count rows per service (the gateway
and backend families' partitions), then one point read per flagged row; a partition whose count row does not know its
flagged rows (`FlaggedOverflow`) is read as rows instead, one query filtered on the kind flagged there."""

from __future__ import annotations

from typing import TypeVar

from shared.domain.flags import BREAKER, FLAGGED_KINDS, TOKEN, flag_of
from shared.domain.kinds import Kind
from shared.queries.summary import check_layout, in_parallel, services
from shared.store.counts import FLAGGED_LIST
from shared.store.keys import COUNT_ROW, count_partitions, key_of, partition_rows
from shared.store.listed_columns import ListedColumn
from shared.store.ports import Condition, Entity, Table, TableReader

V = TypeVar("V")

_FLAGGED_KIND = {kind.family: kind for kind in FLAGGED_KINDS}  # the one kind flagged in each family's partitions


def flag_row_lists(reader: TableReader, column: ListedColumn[V]) -> tuple[list[tuple[str, dict[str, V]]], list[tuple[str, Kind]]]:
    """Point reads of the flag row of every partition of the column's families, each service's: the lists they hold,
    (PartitionKey, {RowKey: value}), and the partitions whose flag row does not know them (PartitionKey, family):
    their rows are the answer. A partition with no flag row has no rows."""
    partitions = [(pk, family) for key, _ in services(reader) for family in column.families for pk in count_partitions(key, (family,))]
    count_rows = in_parallel(lambda item: reader.get(Table.INVENTORY, item[0], COUNT_ROW), partitions)
    lists: list[tuple[str, dict[str, V]]] = []
    unknown: list[tuple[str, Kind]] = []
    for (pk, family), stored in zip(partitions, count_rows, strict=True):
        if stored is None:
            continue
        found = column.listed(stored.entity)
        if found is None:
            unknown.append((pk, family))
        else:
            lists.append((pk, found))
    return lists, unknown


def flagged_rows(reader: TableReader) -> dict[str, list[Entity]]:
    """{"tokens": [...], "breakers": [...]}, each in key order (PartitionKey, RowKey), as a key-range read gives them."""
    check_layout(reader)
    lists, unknown = flag_row_lists(reader, FLAGGED_LIST)
    listed = [(pk, row_key) for pk, found in lists for row_key in found]
    rows = [stored.entity for stored in in_parallel(lambda keys: reader.get(Table.INVENTORY, *keys), listed) if stored]
    for pk, family in unknown:
        rows += reader.page(partition_rows(pk, (Condition("Kind", "eq", _FLAGGED_KIND[family].value),)), None)[0]
    # A row changed since its count row was read is listed as it is now: flagged still, or not at all.
    ordered = sorted((row for row in rows if flag_of(row)), key=key_of)
    return {"tokens": [r for r in ordered if flag_of(r) == TOKEN], "breakers": [r for r in ordered if flag_of(r) == BREAKER]}
