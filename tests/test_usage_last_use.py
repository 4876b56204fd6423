"""Last uses written once a run: a run that dies before writing them leaves its pending row (`uw`), and a later run,
once the row's lease has passed, merges the last uses of the days it names again, from their hourly contributions or
from the daily rows of a day rolled meanwhile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devtools.memory_archive import MemoryArchive
from shared.domain.usage import COUNTED_KINDS
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, Table
from shared.usage.rollup import Rollups
from tests.support import ManualClock
from tests.usage_ingest_support import NOW, Retention, blob_name, brute_force, ingest_over, lines, record, rows_under, stored_last_uses

pytestmark = pytest.mark.unit


class Killed(Exception):
    pass


class DiesAtLastUses:
    """The store, dying when the run writes its last uses (after every count of the run is written)."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_all(self, table: Table, writes: list[tuple[Entity, str | None]]) -> Any:
        if any(str(entity["PartitionKey"]).startswith("ul|") for entity, _ in writes):
            raise Killed()
        return self._store.put_all(table, writes)


def bounds(archive: MemoryArchive) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(service, kind, id) -> the earliest and latest record time, to the hour: what the last-use rows must hold."""
    found: dict[tuple[str, str, str], tuple[str, str]] = {}
    for (service, kind, _, resource), counted in brute_force(archive.content(n) for n in archive.names()).items():
        if kind in COUNTED_KINDS:
            first, last = found.get((service, kind, resource), (counted[8], counted[9]))
            found[(service, kind, resource)] = (min(first, counted[8]), max(last, counted[9]))
    return {key: (first[:13], last[:13]) for key, (first, last) in found.items()}


def stored(store: InMemoryStore) -> dict[tuple[str, str, str], tuple[str, str]]:
    return {key: (first[:13], last[:13]) for key, (first, last) in stored_last_uses(store).items()}


def hours_of_records(archive: MemoryArchive, start: Any, hours: int, per_hour: int = 5) -> None:
    for hour in range(hours):
        at = start + timedelta(hours=hour)
        archive.append(blob_name(at), lines(*(record(at + timedelta(minutes=i), apiId=f"api-{hour % 3}", userId=f"u{i}")
                                              for i in range(per_hour))))


def test_a_run_writes_each_last_use_once_and_lets_its_pending_row_go() -> None:
    store, archive, clock = InMemoryStore(), MemoryArchive(), ManualClock(NOW)
    hours_of_records(archive, NOW.replace(minute=0) - timedelta(hours=6), 6)
    written: list[str] = []
    original = store.put_all

    def counting(table: Table, writes: list[tuple[Entity, str | None]]) -> Any:
        written.extend(str(e["RowKey"]) for e, _ in writes if str(e["PartitionKey"]).startswith("ul|"))
        return original(table, writes)

    store.put_all = counting  # type: ignore[method-assign]
    ingest_over(archive, store, clock.now).ingest()
    assert stored(store) == bounds(archive)
    assert sorted(written) == sorted(set(written))  # six hours of one resource's records: one write, not six
    assert rows_under(store, "uw") == 0


def test_a_run_that_dies_before_its_last_uses_has_them_merged_by_a_run_after_its_lease() -> None:
    store, archive, clock = InMemoryStore(), MemoryArchive(), ManualClock(NOW)
    hours_of_records(archive, NOW.replace(minute=0) - timedelta(hours=3), 3)
    with pytest.raises(Killed):
        ingest_over(archive, DiesAtLastUses(store), clock.now).ingest()
    assert stored(store) == {} and rows_under(store, "uw") == 1
    ingest_over(archive, store, clock.now).ingest()  # the dead run's lease has not passed: its row is left alone
    assert stored(store) == {} and rows_under(store, "uw") == 1
    clock.advance(minutes=32)
    ingest_over(archive, store, clock.now).ingest()
    assert stored(store) == bounds(archive) and rows_under(store, "uw") == 0


def test_a_dead_runs_days_rolled_meanwhile_are_merged_from_their_daily_rows() -> None:
    store, archive, clock = InMemoryStore(), MemoryArchive(), ManualClock(NOW)
    old = NOW.replace(minute=0) - timedelta(days=10)
    hours_of_records(archive, old, 2)
    with pytest.raises(Killed):
        ingest_over(archive, DiesAtLastUses(store), clock.now).ingest()
    Rollups(store, store, store, Retention(), archive.container).run(NOW)  # another run's roll-ups
    assert rows_under(store, "uh|") == 0 and rows_under(store, "ud|") > 0
    clock.advance(minutes=32)
    ingest_over(archive, store, clock.now).ingest()
    assert stored(store) == bounds(archive) and rows_under(store, "uw") == 0
    assert list(store.scan(Query(Table.USAGE, low_pk="uw", high_pk="ux"))) in ([], [[]])
