"""Retention: Table Storage keeps every row until it is deleted, so the `purge` timer deletes

- tombstones (inventory rows with IsDeleted) whose DeletedAt is older than RETENTION_TOMBSTONE_DAYS, each
  under its ETag (a row revived after it was read is kept), with their partition's count row in the transaction;
  then the access index's entries of their values (shared.store.access_index), each under the ETag read before the
  tombstone went, and only of tombstones that are gone;
- history records whose RecordedAt is older than RETENTION_HISTORY_DAYS, found through each service's change feed
  (the `r|` entries of its day partitions before the cutoff's, then of the cutoff's own day up to the cutoff: the
  cost is what is purged), the record first, then both feed entries, each in its own day (a crash in between
  leaves entries the next purge deletes);
- audit records (the Activity Log's, beside each resource's history) whose time is older than RETENTION_AUDIT_DAYS,
  found through each service's `ar|` feed entries the same way (the audit writer writes a service's status row before
  its first record, so a service known only from the Activity Log is in the list): the caller's name, UPN and IP go
  with them;
- rejected records of the days before now - RETENTION_REJECTED_DAYS: whole partitions (the UTC day); so too the
  Activity Log's bad-record rows (`ub|{ACTIVITY_LOGS_CONTAINER}|{day}`, usage table: an excerpt may hold a UPN or an IP),
  whichever route wrote them (the archive, the stream, the backfill);
- sent alerts (`sent|YYYYMMDD` partitions) of the days before now - RETENTION_SENT_ALERTS_DAYS; pending ones
  never.

It reads page by page (at most 1000 rows in memory) and deletes in transactions of at most 100 rows of one
partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.logs import PURGE, Line
from shared.store import access_index, audit_keys
from shared.store.keys import (
    feed_purge,
    feed_recorded_before,
    rejected_counters,
    rejected_from,
    rows_only,
    sent_alerts_before,
    service_of_status,
    status_rows,
)
from shared.store.ports import Condition, Query, StoredRow, Table, TableDeleter, TableReader
from shared.store.usage_keys import bad_lines_before

log = logging.getLogger("apim_inventory")
PAGE = 1000
KEYS = ("PartitionKey", "RowKey")
TOMBSTONE_COLUMNS = (*KEYS, "IsDeleted", *access_index.COLUMNS)  # the count row's move, the index entries' keys
FEED_COLUMNS = (*KEYS, "HistoryPartition", "HistoryRow", "EventTime", "RecordedAt")
HISTORY = "history"
AUDIT = "audit"


@dataclass(frozen=True)
class PurgeResult:
    what: str  # tombstones, history, rejected, sentAlerts, audit, auditRejected
    table: str
    before: datetime  # the cutoff
    deleted: int  # or, in a dry run, how many would be


class RetentionSettings(Protocol):
    """What the purge reads of the app settings (shared.config.Settings has it)."""

    @property
    def inventory_table(self) -> str: ...
    @property
    def history_table(self) -> str: ...
    @property
    def rejected_table(self) -> str: ...
    @property
    def outbox_table(self) -> str: ...
    @property
    def usage_table(self) -> str: ...
    @property
    def activity_logs_container(self) -> str: ...
    @property
    def retention_days(self) -> dict[str, float]:
        """Days kept per kind of record: tombstones, history, rejected, sentAlerts."""


class Purger:
    def __init__(self, reader: TableReader, deleter: TableDeleter, settings: RetentionSettings, clock: Callable[[], datetime]) -> None:
        self._reader = reader
        self._deleter = deleter
        self.settings = settings
        self.clock = clock

    def plan(self, now: datetime) -> list[tuple[str, str, datetime, Query]]:
        """(what, table name, cutoff, query) for each kind of record."""
        s, days = self.settings, self.settings.retention_days
        cut = {what: now - timedelta(days=n) for what, n in days.items()}
        return [
            ("tombstones", s.inventory_table, cut["tombstones"],
             rows_only(Query(Table.INVENTORY, conditions=(Condition("IsDeleted", "eq", True), Condition("DeletedAt", "lt", cut["tombstones"]))))),
            ("history", s.inventory_table, cut["history"], Query(Table.HISTORY)),  # per service: `_purge_history`
            # whole days: a partition goes once all of its day is before the cutoff
            ("rejected", s.rejected_table, cut["rejected"], rejected_from(None, cut["rejected"])),
            ("sentAlerts", s.outbox_table, cut["sentAlerts"], sent_alerts_before(cut["sentAlerts"])),
            ("audit", s.inventory_table, cut["audit"], Query(Table.HISTORY)),  # per service, through the feed: `_purge_feed`
            ("auditRejected", s.usage_table, cut["rejected"], bad_lines_before(s.activity_logs_container, cut["rejected"])),
        ]

    def run(self, dry_run: bool = False) -> list[PurgeResult]:
        started, now = time.perf_counter(), self.clock()
        feeds = {HISTORY: (feed_recorded_before, feed_purge), AUDIT: (audit_keys.purge_ranges, audit_keys.purge_of)}
        results = [PurgeResult(what, table, cutoff, self._purge_feed(cutoff, dry_run, *feeds[what]) if what in feeds else self._purge(query, dry_run))
                   for what, table, cutoff, query in self.plan(now)]
        if not dry_run:  # the purged days' counter rows go too (not counted: they are no records)
            self._purge(rejected_counters(None, next(r.before for r in results if r.table == self.settings.rejected_table)), dry_run)
        log.info(Line(PURGE, {"dryRun": dry_run, **{r.what: r.deleted for r in results},
                              "ms": round((time.perf_counter() - started) * 1000)}))
        return results

    def _purge(self, query: Query, dry_run: bool) -> int:
        """Page by page; tombstones are deleted under their ETags (If-Match), so a revived row stays."""
        count = 0
        inventory = query.table is Table.INVENTORY
        for page in self._reader.scan(query, PAGE, select=TOMBSTONE_COLUMNS if inventory else KEYS):
            if dry_run:
                count += len(page)
            elif inventory:
                count += self._purge_tombstones(page)
            else:
                count += self._deleter.delete_rows(query.table, page)
        return count

    def _purge_tombstones(self, page: list[StoredRow]) -> int:
        """The tombstones, then their index entries. The entries are read first: a revival upserts its entries before
        its row, so an entry it wrote after this read fails the If-Match and stays; one it wrote before belongs to a
        row that is then live again, and a tombstone kept (or written again) keeps its entries."""
        entries = access_index.entries_of_tombstones(self._reader, (row.entity for row in page))
        deleted = self._deleter.delete_rows(Table.INVENTORY, page, if_match=True)
        if entries and deleted < len(page):  # some were kept: only the entries of rows now gone
            entries = [e for e in entries if self._reader.get(Table.INVENTORY, e.entity["TargetPartition"], e.entity["TargetRow"]) is None]
        if entries:
            self._deleter.delete_rows(Table.STATUS, entries, if_match=True)
        return deleted

    def _purge_feed(self, cutoff: datetime, dry_run: bool, ranges: Callable[[str, datetime], list[Query]],
                    purged: Callable[[list[StoredRow]], tuple[list[StoredRow], list[StoredRow]]]) -> int:
        """Each service's feed entries of records before the cutoff (history: recorded before it, `r|`; audit records:
        whose time is before it, `ar|`): their records, then the entries."""
        count = 0
        for status in self._reader.scan(status_rows(), PAGE, select=KEYS):
            for row in status:
                for feed in ranges(service_of_status(row.entity["RowKey"]), cutoff):
                    for page in self._reader.scan(feed, PAGE // 2, select=FEED_COLUMNS):
                        count += len(page)
                        if not dry_run:
                            records, entries = purged(page)
                            self._deleter.delete_rows(Table.INVENTORY, records)
                            self._deleter.delete_rows(Table.HISTORY, entries)
        return count
