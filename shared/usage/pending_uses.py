"""A run's pending last uses: the ingest writes the last-use rows once a run (not once a chunk), so the days a run
counted are named first in its pending row (`uw`, RK the run's id), and let go once their last uses are written. A
run that died before that leaves its row; when the row's lease has passed, a later run reads the counts of the
days it names (hourly contributions, and the daily rows of a day rolled meanwhile) and merges their last uses
again: maxima and minima, so merging more than was lost is harmless."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from shared.domain.usage import COUNTED_KINDS
from shared.store.long_text import read_long, write_long
from shared.store.ports import Entity, StoredRow, Table, TableDeleter, TableReader, TableWriter
from shared.store.usage_keys import daily_rows, hourly_partition, keyed, partition_rows, pending_use_keys, pending_use_rows


class PendingUses:
    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, clock: Callable[[], datetime],
                 lease: timedelta) -> None:
        self._reader, self._writer, self._deleter, self._clock, self.lease = reader, writer, deleter, clock, lease
        self.run = uuid.uuid4().hex
        self._days: set[str] = set()
        self._until: datetime | None = None

    def name(self, places: frozenset[str]) -> None:
        """The days of `places` (`{YYYY-MM-DDTHH}/{service}`) in this run's pending row (`{YYYY-MM-DD}/{service}`),
        renewed before its lease runs out: a write when a chunk counts a day the row does not name yet, or once per
        half a lease."""
        now = self._clock()
        places = frozenset(f"{place[:10]}/{place.split('/', 1)[1]}" for place in places)
        if places <= self._days and self._until is not None and self._until - now > self.lease / 2:
            return
        self._days |= places
        self._until = now + self.lease
        entity = keyed(pending_use_keys(self.run), {"Until": self._until})
        write_long(entity, "Days", json.dumps(sorted(self._days)))
        self._writer.upsert(Table.USAGE, [entity])

    def release(self) -> None:
        if self._until is not None:
            self._deleter.delete_rows(Table.USAGE, [StoredRow(keyed(pending_use_keys(self.run), {}), "*")])
        self._days, self._until = set(), None

    def dead(self) -> Iterator[tuple[list[str], StoredRow]]:
        """The pending rows of runs whose lease has passed, with the days each names."""
        now = self._clock()
        for page in self._reader.scan(pending_use_rows()):
            for row in page:
                until = row.entity.get("Until")
                if isinstance(until, datetime) and until < now:
                    yield json.loads(read_long(row.entity, "Days") or "[]"), row

    def forget(self, row: StoredRow) -> None:
        self._deleter.delete_rows(Table.USAGE, [row])

    def counted(self, places: list[str]) -> Iterator[Entity]:
        """The usage rows that hold the counts of `places` (`{YYYY-MM-DD}/{service}`): the days' contributions of the
        counted kinds (a partition read per service and day), and their daily rows (a day may have been rolled since)."""
        for place in sorted(places):
            day_text, service = place.split("/", 1)
            day = datetime.fromisoformat(f"{day_text}T00:00:00+00:00")
            for page in self._reader.scan(partition_rows(hourly_partition(service, day))):
                for row in page:
                    if str(row.entity["RowKey"]).split("|", 1)[0] in COUNTED_KINDS:
                        yield row.entity
            for kind in COUNTED_KINDS:
                for page in self._reader.scan(daily_rows(service, kind, day)):
                    yield from (row.entity for row in page)
