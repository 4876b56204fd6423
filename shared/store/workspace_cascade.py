"""A workspace's deletion, carried to every row in it.

A workspace's APIs, products, subscriptions and backends sit in their own families' partitions (RowKey
"workspaces|{w}|…", `keys.in_workspace`), not beside the workspace's row, so its deletion cannot ride in one
transaction with theirs as an API's reaches its revisions. It is carried in two ways, which together leave no row
alive that a deletion newer than the row's own newest change should have deleted, whatever the order:
- `cascade`: after the workspace's row is deleted, one RowKey range per family is read and each row is given the
  workspace's newest deletion (a transaction per partition). Idempotent; when it completes, the workspace's row
  records it (`CascadedKey`), and a sync finishes any cascade that was cut short (`unfinished`).
- `inherit`: a write of a row in a workspace reads the workspace's row after it (one point read) and, when the
  workspace is deleted, gives the row that deletion too. A write racing a cascade is thus caught by one of the two:
  each side writes before it reads the other's row.
"""

from __future__ import annotations

from collections import defaultdict

from shared.domain.kinds import WORKSPACE_FAMILIES
from shared.domain.model import Change, cascade_change
from shared.domain.resources import ResourceRef, parse_path
from shared.store.keys import in_workspace
from shared.store.ports import Entity, InventoryRows, StoredRow, TableReader
from shared.store.writer import Applied, RowWriter

CASCADED = "CascadedKey"  # the workspace row's LastDeleteEventKey its cascade has reached every row with


def unfinished(workspace_row: Entity | None) -> bool:
    """Whether a workspace's row is deleted and its cascade has not been seen through."""
    return bool(workspace_row and workspace_row.get("LastDeleteEventKey")
                and workspace_row.get(CASCADED) != workspace_row["LastDeleteEventKey"])


def cascade(reader: TableReader, rows: InventoryRows, writer: RowWriter, workspace: ResourceRef) -> list[Applied]:
    """Give every row in `workspace` the workspace's newest deletion, then mark the workspace's row done. Reads one
    RowKey range per family of `WORKSPACE_FAMILIES`; writes only the rows that change."""
    loaded, _ = rows.load(workspace, fresh=True)
    if loaded is None or not loaded.entity.get("LastDeleteEventKey"):
        return []
    delete_key = loaded.entity["LastDeleteEventKey"]
    delete_type = str(loaded.entity.get("LastEventType") or "")
    applied: list[Applied] = []
    for family in WORKSPACE_FAMILIES:
        by_partition: defaultdict[str, list[StoredRow]] = defaultdict(list)
        for page in reader.scan(in_workspace(family.value, workspace.service.key, workspace.name)):
            for row in page:
                if "Kind" in row.entity:  # not a history record of the range
                    by_partition[str(row.entity["PartitionKey"])].append(row)
        for partition_rows in by_partition.values():
            items: list[tuple[ResourceRef, list[Change], StoredRow | None]] = []
            for row in partition_rows:
                ref = parse_path(workspace.service, row.entity["Path"])
                change = cascade_change(loaded.entity, ref, delete_type)
                if change is not None:
                    items.append((ref, [change], row))
            applied += writer.apply_batch(items, None)
    writer.apply(workspace, lambda row, _: _marked(row, delete_key))
    return applied


def _marked(row: StoredRow | None, delete_key: str) -> Entity | None:
    """The workspace's row with its cascade recorded as done for `delete_key` (None: nothing to record)."""
    if row is None or row.entity.get("LastDeleteEventKey") != delete_key or row.entity.get(CASCADED) == delete_key:
        return None
    return {**row.entity, CASCADED: delete_key}


def inherit(rows: InventoryRows, writer: RowWriter, refs: list[ResourceRef], *, fresh: bool = False) -> list[Applied]:
    """After a write of rows in a workspace: the workspace's newest deletion given to each of them, when the workspace
    is deleted (one point read of the workspace's row per workspace named; `fresh`: not from the cache, for a writer
    that may have cached the row long before, as a sync does)."""
    applied: list[Applied] = []
    read: dict[str, Entity | None] = {}
    for ref in refs:
        workspace = ref.workspace_ref
        if workspace is None:
            continue
        if workspace.key not in read:
            row, _ = rows.load(workspace, fresh=fresh)
            read[workspace.key] = row.entity if row else None
        workspace_row = read[workspace.key]
        change = cascade_change(workspace_row, ref, str((workspace_row or {}).get("LastEventType") or ""))
        if change is not None:
            applied.append(writer.apply(ref, [change]))
    return applied
