"""Daily roll-ups and retention of the usage table: a rolled day holds what its hours held, once, after a crash
between the roll-up's writes, a second roll-up, or a contribution that arrives after the day was rolled; daily
rows and bad lines go after their retention."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from devtools.memory_archive import MemoryArchive
from shared.domain.usage import Counters
from shared.logread.reader import LineReader
from shared.store.long_text import read_long
from shared.store.memory import InMemoryStore
from shared.store.ports import Table
from shared.store.usage_keys import daily_keys, keyed, source, tracking_keys
from shared.usage.ingest import UsageSink
from shared.usage.rollup import Rollups
from tests.support import ManualClock
from tests.test_usage_property import Crashing, Killed
from tests.usage_ingest_support import NOW, Retention, blob_name, brute_force, by_day, ingest_over, lines, record, rows_under, stored_by_day
from tests.usage_support import packed

pytestmark = pytest.mark.unit
OLD = NOW.replace(minute=0) - timedelta(days=10)


def old_records(n: int, start: int = 0) -> bytes:
    return lines(*(record(OLD + timedelta(hours=i % 3, minutes=i), code=(200, 500)[i % 2], duration=float(i)) for i in range(start, start + n)))


def test_old_hours_are_rolled_into_days_once(memory_store: InMemoryStore) -> None:
    archive, clock = MemoryArchive(), ManualClock(NOW)
    for hour in range(3):
        archive.append(blob_name(OLD + timedelta(hours=hour)), old_records(20, hour * 20))
    report = ingest_over(archive, memory_store, clock.now, chunk_size=2048).ingest()
    assert report.rollup.days == 4  # the service total, the API, the operation and the subscription, of one day
    assert stored_by_day(memory_store) == by_day(brute_force(archive.content(n) for n in archive.names()))
    assert rows_under(memory_store, f"uh|contoso|{OLD:%Y%m%d}") == 0
    assert memory_store.get(Table.USAGE, "ur|contoso", f"api|{OLD:%Y%m%d}") is not None
    assert ingest_over(archive, memory_store, clock.now).ingest().rollup.days == 0
    # A contribution that arrives after its day was rolled (old records in the current hour's blob: late records go
    # to the blob of the hour they arrive in; an old blob no longer grows, and is no longer listed) is folded in, once.
    archive.append(blob_name(NOW.replace(minute=0)), old_records(5, 100))
    assert ingest_over(archive, memory_store, clock.now).ingest().rollup.days == 4
    assert stored_by_day(memory_store) == by_day(brute_force(archive.content(n) for n in archive.names()))
    archive.append(blob_name(NOW.replace(minute=0)), lines(record(NOW.replace(minute=5))))  # recent: stays hourly
    ingest_over(archive, memory_store, clock.now).ingest()
    assert rows_under(memory_store, f"uh|contoso|{NOW:%Y%m%d}") == 4  # one packed row of each kind the record names
    assert stored_by_day(memory_store) == by_day(brute_force(archive.content(n) for n in archive.names()))


@pytest.mark.parametrize("crash_at", range(1, 12))
def test_a_roll_up_that_dies_between_writes_leaves_nothing_counted_twice(memory_store: InMemoryStore, crash_at: int) -> None:
    archive, clock = MemoryArchive(), ManualClock(NOW)
    archive.append(blob_name(OLD), old_records(30))
    ingest_over(archive, memory_store, clock.now).ingest()
    archive.append(blob_name(NOW.replace(minute=0)), old_records(7, 50))  # late records, read below, rolled by the roll-ups that crash
    sink = UsageSink(memory_store, memory_store, memory_store, archive.container)
    LineReader(archive, memory_store, memory_store, sink, clock.now, table=Table.USAGE, name="usage").run(NOW)
    crashing = Crashing(memory_store, crash_at)
    with pytest.raises(Killed):
        Rollups(crashing, crashing, crashing, Retention(), archive.container).run(NOW)  # type: ignore[arg-type]
    Rollups(memory_store, memory_store, memory_store, Retention(), archive.container).run(NOW)
    assert stored_by_day(memory_store) == by_day(brute_force(archive.content(n) for n in archive.names()))


def test_retention_of_daily_rows_and_bad_lines(memory_store: InMemoryStore) -> None:
    archive = MemoryArchive()
    ancient = NOW.replace(minute=0) - timedelta(days=402)
    archive.append(blob_name(ancient), lines(record(ancient)) + b"junk\n")
    ingest_over(archive, memory_store, ManualClock(NOW - timedelta(days=31)).now).ingest(NOW - timedelta(days=31))
    assert rows_under(memory_store, "ub|") == 1
    assert rows_under(memory_store, "ud|") > 0
    report = ingest_over(archive, memory_store, ManualClock(NOW).now).ingest(NOW)
    assert report.rollup.purged > 0
    assert rows_under(memory_store, "ub|") == 0 and rows_under(memory_store, "ud|") == 0 and rows_under(memory_store, "ur|") == 0


def test_roll_ups_are_bounded_per_run(memory_store: InMemoryStore) -> None:
    archive, clock = MemoryArchive(), ManualClock(NOW)
    for day in range(3):
        archive.append(blob_name(OLD - timedelta(days=day)), lines(record(OLD - timedelta(days=day))))
    ingest_over(archive, memory_store, clock.now).ingest()  # reads, and rolls all 3 days
    assert rows_under(memory_store, "ur|") == 3 * 4  # service, api, operation, subscription, of 3 days


def test_a_busy_ids_day_of_thousands_of_hourly_rows_rolls_into_columns_table_storage_holds(memory_store: InMemoryStore) -> None:
    """A 1 GB hour blob is read in 4 MiB chunks: the service total then has about 6,000 hourly rows a day, whose tags
    outgrow one string property (32K characters); they go on in continuation columns."""
    counters = Counters(total=1, successful=1, duration_sum_ms=2.0, duration_max_ms=2.0, first_at="2026-11-22T10:00:00Z",
                        last_at="2026-11-22T10:00:00Z")
    rows = [packed("contoso", "service", OLD, {"-": replace(counters)}, source("blob", 1, n, n + 1)) for n in range(3000)]
    memory_store.upsert(Table.USAGE, [*rows, keyed(tracking_keys("contoso"), {"Service": "contoso"})])
    Rollups(memory_store, memory_store, memory_store, Retention(), "insights-logs-gatewaylogs").run(NOW)
    daily = memory_store.get(Table.USAGE, *daily_keys("contoso", "service", OLD, "-"))
    assert daily is not None and daily.entity["Total"] == 3000 and rows_under(memory_store, "uh|") == 0
    assert all(len(v) <= 32_000 for v in daily.entity.values() if isinstance(v, str)) and "Folded_1" in daily.entity
    assert len(json.loads(read_long(daily.entity, "Folded"))) == 3000
