"""A workspace's deletion, carried to every row in it.

A workspace's APIs, products, subscriptions and backends sit in their own families' partitions (RowKey
"workspaces|{w}|…", `keys.in_workspace`), not beside the workspace's row, so its deletion cannot ride in one
transaction with theirs as an API's reaches its revisions. It is carried in two ways, which together leave no row
alive that a deletion newer than the row's own newest change should have deleted, whatever the order:
- `cascade`: after the workspace's row is deleted, one RowKey range per family is read and each row is given the
  workspace's newest deletion (a transaction per partition). Idempotent; when it completes, the workspace's row
  records it (`CascadedKey`), and a sync finishes any cascade that was cut short (`unfinished`), whether by a crash
  or by the sync itself stopping between two transactions (`between`: its lease, its time budget).
- `inherit`: a write of a row in a workspace reads the workspace's row after it (one point read, never from the
  cache: another process may have deleted it) and, when the workspace is deleted, gives the row that deletion too.
  A write racing a cascade is thus caught by one of the two: each side writes before it reads the other's row.
  (`deletion_of` also folds the deletion the cache knows of into the write itself, so a late event in a deleted
  workspace is written once, deleted and stale, as a late event of a deleted API's revision is.)
Either way a row takes the deletion as `DELETED_TYPE`, whatever the workspace's row says now, so that the rows are
the same in any order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from shared.domain.kinds import WORKSPACE_FAMILIES
from shared.domain.model import Change, cascade_change
from shared.domain.resources import ResourceRef, parse_path
from shared.store.keys import in_workspace
from shared.store.ports import Entity, InventoryRows, StoredRow, TableReader
from shared.store.writer import BATCH_ROWS, Applied, RowWriter

CASCADED = "CascadedKey"  # the workspace row's LastDeleteEventKey its cascade has reached every row with
DELETED_TYPE = "ApimInventory.WorkspaceDeleted"  # the LastEventType a workspace's deletion gives the rows in it


def unfinished(workspace_row: Entity | None) -> bool:
    """Whether a workspace's row is deleted and its cascade has not been seen through."""
    return bool(workspace_row and workspace_row.get("LastDeleteEventKey")
                and workspace_row.get(CASCADED) != workspace_row["LastDeleteEventKey"])


def cascade(reader: TableReader, rows: InventoryRows, writer: RowWriter, workspace: ResourceRef, *,
            between: Callable[[list[Applied]], bool] | None = None) -> list[Applied]:
    """Give every row in `workspace` the workspace's newest deletion, then mark the workspace's row done. Reads one
    RowKey range per family of `WORKSPACE_FAMILIES`; writes only the rows that change. `between` is asked before each
    partition's transaction (of up to BATCH_ROWS rows), with what the cascade applied so far: it may renew a lease (or
    raise), and False stops the cascade there, unfinished, returning what it applied; a later run goes on from there."""
    loaded, _ = rows.load(workspace, fresh=True)
    if loaded is None or not loaded.entity.get("LastDeleteEventKey"):
        return []
    delete_key = loaded.entity["LastDeleteEventKey"]
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
                change = cascade_change(loaded.entity, ref, DELETED_TYPE)
                if change is not None:
                    items.append((ref, [change], row))
            for at in range(0, len(items), BATCH_ROWS):
                if between is not None and not between(applied):
                    return applied  # the workspace's row stays `unfinished`
                applied += writer.apply_batch(items[at:at + BATCH_ROWS], None)
    writer.apply(workspace, lambda row, _: _marked(row, delete_key))
    return applied


def _marked(row: StoredRow | None, delete_key: str) -> Entity | None:
    """The workspace's row with its cascade recorded as done for `delete_key` (None: nothing to record)."""
    if row is None or row.entity.get("LastDeleteEventKey") != delete_key or row.entity.get(CASCADED) == delete_key:
        return None
    return {**row.entity, CASCADED: delete_key}


def deletion_of(rows: InventoryRows, ref: ResourceRef) -> list[Change]:
    """The deletion of the workspace `ref` is in, as the store's cache knows it, as a change to `ref` (none at the
    service level, or when the workspace is not known deleted). A write folds it in; `inherit` makes sure after."""
    workspace = ref.workspace_ref
    if workspace is None:
        return []
    row, _ = rows.load(workspace)
    change = cascade_change(row.entity if row else None, ref, DELETED_TYPE)
    return [change] if change is not None else []


def inherit(rows: InventoryRows, writer: RowWriter, refs: list[ResourceRef]) -> list[Applied]:
    """After a write of rows in a workspace: the workspace's newest deletion given to each of them, when the workspace
    is deleted (one fresh point read of the workspace's row per workspace named)."""
    applied: list[Applied] = []
    read: dict[str, Entity | None] = {}
    for ref in refs:
        workspace = ref.workspace_ref
        if workspace is None:
            continue
        if workspace.key not in read:
            row, _ = rows.load(workspace, fresh=True)  # the cache may predate a cascade that missed this write
            read[workspace.key] = row.entity if row else None
        change = cascade_change(read[workspace.key], ref, DELETED_TYPE)
        if change is not None:
            applied.append(writer.apply(ref, [change]))
    return applied
