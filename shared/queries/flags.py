"""`flags`: gateway tokens near expiry or expired, circuit breakers open or stuck open, live rows only; read from the
count rows' `Flagged` lists (`shared.store.counts`), so the rows read are the rows listed.

Requests: the layout marker, the status rows (the services), 32 point reads of count rows per service (the gateway
and backend families' partitions), then one point read per flagged row; a partition whose count row does not know its
flagged rows (`FlaggedOverflow`) is read as rows instead, one query filtered on the kind flagged there."""

from __future__ import annotations

from shared.domain.flags import BREAKER, FLAGGED_FAMILIES, FLAGGED_KINDS, TOKEN, flag_of
from shared.domain.kinds import Kind
from shared.queries.summary import check_layout, in_parallel, services
from shared.store.counts import flagged
from shared.store.keys import COUNT_ROW, count_partitions, key_of, partition_rows
from shared.store.ports import Condition, Entity, Table, TableReader

_FLAGGED_KIND = {kind.family: kind for kind in FLAGGED_KINDS}  # the one kind flagged in each family's partitions


def flagged_rows(reader: TableReader) -> dict[str, list[Entity]]:
    """{"tokens": [...], "breakers": [...]}, each in key order (PartitionKey, RowKey), as a key-range read gives them."""
    check_layout(reader)
    partitions = [(pk, family) for key, _ in services(reader) for family in FLAGGED_FAMILIES
                  for pk in count_partitions(key, (family,))]
    count_rows = in_parallel(lambda item: reader.get(Table.INVENTORY, item[0], COUNT_ROW), partitions)
    listed: list[tuple[str, str]] = []
    unknown: list[tuple[str, Kind]] = []
    for (pk, family), stored in zip(partitions, count_rows, strict=True):
        if stored is None:
            continue
        found = flagged(stored.entity)
        if found is None:
            unknown.append((pk, family))
        else:
            listed += [(pk, row_key) for row_key in found]
    rows = [stored.entity for stored in in_parallel(lambda keys: reader.get(Table.INVENTORY, *keys), listed) if stored]
    for pk, family in unknown:
        rows += reader.page(partition_rows(pk, (Condition("Kind", "eq", _FLAGGED_KIND[family].value),)), None)[0]
    # A row changed since its count row was read is listed as it is now: flagged still, or not at all.
    ordered = sorted((row for row in rows if flag_of(row)), key=key_of)
    return {"tokens": [r for r in ordered if flag_of(r) == TOKEN], "breakers": [r for r in ordered if flag_of(r) == BREAKER]}
