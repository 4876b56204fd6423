"""Daily roll-ups and retention of the usage table, at the end of each ingest, with bounded work per run.

A day of one service (one partition of every kind) is rolled, kind by kind, once all its hours are older than
USAGE_HOURLY_DAYS: its packed hourly contributions are summed per id into the day's row, the day's marker is written (a report then reads the daily
rows of that day), and the hourly rows are deleted. A daily row names the hourly rows it holds (`Folded`, short
hashes of their keys), so a roll-up that crashed before its deletes, ran twice at once (If-Match), or meets a
contribution that arrived after the day was rolled, counts every hourly row exactly once. Daily rows and
markers go after RETENTION_USAGE_DAYS, bad lines after RETENTION_REJECTED_DAYS (whole day partitions)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Protocol

from shared.domain.errors import WriteConflict
from shared.domain.usage import ROW_KINDS, Counters
from shared.store.long_text import read_long, write_long
from shared.store.ports import Query, StoredRow, Table, TableDeleter, TableReader, TableWriter
from shared.store.usage_keys import (
    bad_lines_before,
    daily_before,
    daily_keys,
    day_of_partition,
    hourly_before,
    hourly_day,
    hourly_partition,
    keyed,
    rollup_marker_keys,
    rollup_markers_before,
    tracking_rows,
)
from shared.store.usage_rows import counters_columns, counters_of, unpack

MAX_DAYS = 48  # (service, kind, day) roll-ups per run: a backlog is worked off over the next runs
MAX_DELETES = 5000  # rows retention deletes per run
RETRIES = 10  # a row that others write at the same moment (a daily row, a last-use row): read again, merge again
KEYS = ("PartitionKey", "RowKey")


class UsageRetention(Protocol):
    """What the roll-ups read of the app settings (shared.config.Settings has it)."""

    @property
    def usage_hourly_days(self) -> float: ...
    @property
    def usage_retention_days(self) -> float: ...
    @property
    def rejected_retention_days(self) -> float: ...


@dataclass
class RollupReport:
    days: int = 0  # (service, kind, day) rolled
    folded: int = 0  # hourly rows folded into daily rows
    purged: int = 0  # daily rows, markers and bad lines past retention


def _tag(row: StoredRow) -> str:
    return hashlib.sha256(f"{row.entity['PartitionKey']}\n{row.entity['RowKey']}".encode()).hexdigest()[:12]


def _day(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


class Rollups:
    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, settings: UsageRetention, container: str,
                 *, max_days: int = MAX_DAYS, max_deletes: int = MAX_DELETES) -> None:
        self._reader, self._writer, self._deleter, self.settings, self.container = reader, writer, deleter, settings, container
        self.max_days, self.max_deletes = max_days, max_deletes

    def run(self, now: datetime) -> RollupReport:
        report = RollupReport()
        services = [str(row.entity["Service"]) for page in self._reader.scan(tracking_rows()) for row in page]
        roll_before = now - timedelta(days=self.settings.usage_hourly_days)
        keep_from = _day(now - timedelta(days=self.settings.usage_retention_days))
        for service in services:
            for day in self._days(service, roll_before, self.max_days - report.days):
                for kind in ROW_KINDS:  # a (service, kind, day) with hourly rows counts toward the run's MAX_DAYS
                    folded = self._roll(service, kind, day)
                    report.folded += folded
                    report.days += folded > 0
        budget = self.max_deletes
        for service in services:
            queries: list[Query] = [q for kind in ROW_KINDS for q in daily_before(service, kind, keep_from)]
            for query in [*queries, *rollup_markers_before(service, keep_from, ROW_KINDS)]:
                budget -= self._purge(query, budget)
        budget -= self._purge(bad_lines_before(self.container, now - timedelta(days=self.settings.rejected_retention_days)), budget)
        report.purged = self.max_deletes - budget
        return report

    def _days(self, service: str, before: datetime, limit: int) -> list[datetime]:
        """The days before `before` that still have hourly rows (a day is one partition of every kind): one row read
        per day found (the first row from the day after the last one found), so a backlog costs what it finds."""
        days: list[datetime] = []
        query = hourly_before(service, before)
        while len(days) < limit:
            first, _ = self._reader.page(query, 1)
            if not first:
                break
            days.append(day_of_partition(str(first[0]["PartitionKey"])))
            query = replace(query, low_pk=hourly_partition(service, days[-1] + timedelta(days=1)))
        return days

    def _roll(self, service: str, kind: str, day: datetime) -> int:
        """The day's packed hourly rows of one kind summed per id into the daily rows, the marker, then the deletes.
        Each daily row names the packed rows it holds: a packed row holds many ids, each folded once."""
        rows = [row for page in self._reader.scan(hourly_day(service, kind, day)) for row in page]
        if not rows:
            return 0
        by_id: dict[str, list[tuple[str, Counters]]] = {}
        for row in rows:
            tag = _tag(row)
            for resource, counters in unpack(row.entity):
                by_id.setdefault(resource, []).append((tag, counters))
        for resource, parts in by_id.items():
            self._fold(service, kind, day, resource, parts)
        self._writer.upsert(Table.USAGE, [keyed(rollup_marker_keys(service, kind, day), {"Service": service, "Kind": kind, "Day": day.date().isoformat()})])
        self._deleter.delete_rows(Table.USAGE, rows)
        return len(rows)

    def _fold(self, service: str, kind: str, day: datetime, resource: str, parts: list[tuple[str, Counters]]) -> None:
        present = dict(parts)
        for _ in range(RETRIES):
            daily = self._reader.get(Table.USAGE, *daily_keys(service, kind, day, resource))
            folded = set(json.loads(read_long(daily.entity, "Folded") or "[]")) if daily else set()
            new = [counters for tag, counters in present.items() if tag not in folded]
            if not new:
                return
            counters = counters_of(daily.entity) if daily else Counters()
            for part in new:
                counters.merge(part)
            # Every hourly row still present is now in the sum: a crash before they are deleted adds none twice.
            entity = keyed(daily_keys(service, kind, day, resource), {"Service": service, "Kind": kind, "Id": resource, "Day": day.date().isoformat(),
                                                                    **counters_columns(counters)})
            write_long(entity, "Folded", json.dumps(sorted(present)))  # a busy id's day: thousands of hourly rows
            try:
                self._writer.put(Table.USAGE, entity, daily.etag if daily else None)
                return
            except WriteConflict:
                continue
        raise WriteConflict(f"the daily row of {service} {kind} {resource} {day:%F} kept changing")

    def _purge(self, query: Query, budget: int) -> int:
        deleted = 0
        for page in self._reader.scan(query, page_size=min(1000, max(budget, 1)), select=KEYS):
            if deleted >= budget:
                break
            deleted += self._deleter.delete_rows(Table.USAGE, page[:budget - deleted])
        return deleted
