"""`apim-inventory migrate`: a layout-1 store (history records in the history table, keyed by event id; no count
rows) into layout 2 (docs/schema.md), then the layout marker; and every row written before workspaces given its
`Workspace` column ("" for a service-level row).

Idempotent and resumable: each layout-1 record is copied (upserted under its layout-2 key, with its feed entries)
before it is deleted, page by page, so a rerun, or a run after a crash, copies only what is left, and copying
twice writes the same entities. Then every partition is recounted: its count rows are read (their ETags), the
partition's rows are counted, the count rows are read again, and the flag row is written, under its ETag, as the
count less what the shards hold. An event that moved a shard meanwhile changed its ETag: the partition is counted
again; one that moved the flag row fails the write (412), and it is counted again too. A row without `Workspace` is
written with it under its ETag, a partition's page in one transaction: a write since the row was read wins (412),
and the row is read again and filled only if it still lacks the column.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.errors import PermanentEventError, WriteConflict
from shared.domain.expiry import EXPIRY_COLUMNS
from shared.domain.flags import FLAG_COLUMNS
from shared.domain.kinds import Kind
from shared.domain.resources import row_ref
from shared.store import counts
from shared.store.keys import (
    COUNT_ROW,
    LAYOUT_KEYS,
    all_count_rows,
    count_keys,
    count_range,
    legacy_history_query,
    partition_rows,
    rows_only,
)
from shared.store.ports import (
    HistoryLog,
    InventoryRows,
    PartitionWrite,
    Query,
    RowChange,
    StoredRow,
    Table,
    TableDeleter,
    TableReader,
    TableWriter,
)
from shared.store.records import from_legacy, layout_marker

log = logging.getLogger("apim_inventory.migration")
PAGE = 500
KEYS = ("PartitionKey", "RowKey")
COUNTED = (*KEYS, "Kind", "IsDeleted", "ResourceId", "Path", *FLAG_COLUMNS, *EXPIRY_COLUMNS.values())  # what a recount reads of each row
Progress = Callable[[str, int, int], None]  # phase, done, total


WORKSPACE = "Workspace"  # the column rows written before workspaces lack (shared.domain.model.new_row)
BATCH = 99  # rows of one partition per transaction, beside the count row a write may move (it moves none here)


class MigrationStore(TableReader, TableWriter, TableDeleter, HistoryLog, InventoryRows, Protocol):
    """The ports a migration uses."""


@dataclass
class MigrationReport:
    copied: int = 0
    kept: int = 0  # layout-1 records that name no resource the inventory can key (left where they are)
    partitions: int = 0
    recounts: int = 0  # partitions counted again after a concurrent write
    workspaces_filled: int = 0  # rows given the Workspace column


class Migration:
    def __init__(self, store: MigrationStore, clock: Callable[[], datetime], conflict_retries: int = 10) -> None:
        self._store = store
        self.clock = clock
        self._retries = conflict_retries

    def migrate(self, progress: Progress | None = None) -> MigrationReport:
        note = progress or (lambda phase, done, total: None)
        report = MigrationReport()
        legacy = legacy_history_query()
        total = sum(len(page) for page in self._store.scan(legacy, 1000, select=KEYS))
        note("history", 0, total)
        for page in self._store.scan(legacy, PAGE):
            self._copy(page, report)
            note("history", report.copied + report.kept, total)
        self.fill_workspace(report, note)
        self.recount(report, note)
        marker = self._store.get(Table.STATUS, *LAYOUT_KEYS)
        self._store.put(Table.STATUS, layout_marker(self.clock()), marker.etag if marker else None)
        return report

    def _copy(self, page: list[StoredRow], report: MigrationReport) -> None:
        copies, done = [], []
        for old in page:
            try:
                copies.append(from_legacy(old.entity, row_ref(old.entity)))
                done.append(old)
            except (PermanentEventError, KeyError) as exc:
                report.kept += 1
                log.warning("history record %s kept in layout 1: %s", old.entity.get("RowKey"), exc)
        self._store.upsert(Table.INVENTORY, copies)
        self._store.add_feed(copies)
        self._store.delete_rows(Table.HISTORY, done)  # only once its copy and feed entries landed
        report.copied += len(done)

    def fill_workspace(self, report: MigrationReport | None = None, progress: Progress | None = None) -> MigrationReport:
        """Every inventory row without a `Workspace` column given one (its resource's workspace: "" at the service,
        which every row written before workspaces is). Rows are read page by page; a rerun finds only what is left."""
        report = report or MigrationReport()
        note = progress or (lambda phase, done, total: None)
        rows = rows_only(Query(Table.INVENTORY))
        total = sum(len(page) for page in self._store.scan(rows, 1000, select=KEYS))
        done = 0
        note("workspace column", 0, total)
        for page in self._store.scan(rows, PAGE):
            by_partition: defaultdict[str, list[StoredRow]] = defaultdict(list)
            for row in page:
                if row.entity.get(WORKSPACE) is None:
                    by_partition[str(row.entity["PartitionKey"])].append(row)
            for lacking in by_partition.values():
                for at in range(0, len(lacking), BATCH):
                    report.workspaces_filled += self._fill(lacking[at:at + BATCH])
            done += len(page)
            note("workspace column", done, total)
        return report

    def _fill(self, rows: list[StoredRow]) -> int:
        """Rows of one partition given `Workspace`, in one transaction under their ETags; on a conflict, row by row,
        each read again first. How many were written."""
        try:
            self._store.commit(PartitionWrite(row_ref(rows[0].entity), tuple(RowChange(_filled(r), r) for r in rows)))
            return len(rows)
        except WriteConflict:
            pass
        written = 0
        for row in rows:
            current: StoredRow | None = row
            for _ in range(self._retries):
                current = self._store.get(Table.INVENTORY, row.entity["PartitionKey"], row.entity["RowKey"])
                if current is None or current.entity.get(WORKSPACE) is not None:
                    break  # purged, or written since with the column: the other write won
                try:
                    self._store.commit(PartitionWrite(row_ref(current.entity), (RowChange(_filled(current), current),)))
                    written += 1
                    break
                except WriteConflict:
                    continue
            else:
                raise WriteConflict(f"row {row.entity['PartitionKey']}/{row.entity['RowKey']}: it kept changing")
        return written

    def recount(self, report: MigrationReport | None = None, progress: Progress | None = None) -> MigrationReport:
        """Every inventory partition's count row from its rows (and every count row whose rows are gone)."""
        report = report or MigrationReport()
        note = progress or (lambda phase, done, total: None)
        partitions = {r.entity["PartitionKey"] for page in self._store.scan(rows_only(Query(Table.INVENTORY)), 1000, select=KEYS)
                      for r in page}
        partitions |= {r.entity["PartitionKey"] for page in self._store.scan(all_count_rows(), 1000, select=KEYS) for r in page}
        for n, pk in enumerate(sorted(partitions), 1):
            report.recounts += self._recount(pk)
            report.partitions += 1
            note("counts", n, len(partitions))
        return report

    def _count_rows(self, pk: str) -> tuple[StoredRow | None, list[StoredRow]]:
        """The partition's flag row and its shards."""
        found = [row for page in self._store.scan(count_range(pk)) for row in page]
        flag = next((row for row in found if row.entity["RowKey"] == COUNT_ROW), None)
        return flag, sorted((row for row in found if row is not flag), key=lambda row: str(row.entity["RowKey"]))

    def _recount(self, pk: str) -> int:
        """How many times the partition was counted again."""
        for attempt in range(self._retries):
            current, shards = self._count_rows(pk)
            rows = [r.entity for page in self._store.scan(partition_rows(pk), 1000, select=COUNTED)
                    for r in page]
            if not rows and current is None and not shards:
                return attempt
            if [s.etag for s in self._count_rows(pk)[1]] != [s.etag for s in shards]:
                continue  # an event moved a shard while the rows were read: it may or may not be in the scan
            ref = row_ref(rows[0]) if rows else None
            header = {"Service": ref.service.name, "ServiceKey": ref.service.key} if ref else {}
            counted = current or (shards[0] if shards else None)
            family = Kind(ref.family) if ref else Kind(counted.entity["Family"]) if counted else Kind.USER
            keys = count_keys(ref) if ref else (pk, COUNT_ROW)
            try:
                self._store.put(Table.INVENTORY, counts.recounted(current.entity if current else None, keys, header, family, rows,
                                                                  [s.entity for s in shards]), current.etag if current else None)
                return attempt
            except WriteConflict:
                continue
        raise WriteConflict(f"partition {pk}: the count row kept changing")


def _filled(row: StoredRow) -> dict[str, object]:
    """The row with its `Workspace` column (from its path: rows written before workspaces are all at the service)."""
    return {**row.entity, WORKSPACE: row_ref(row.entity).workspace_name}
