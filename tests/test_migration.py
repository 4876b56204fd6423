"""`apim-inventory migrate`: a layout-1 store (history in the history table, keyed by event id; no count rows) into
layout 2 with nothing recorded lost; a rerun is a no-op; an interrupted run resumes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared.domain.resources import parse_path, parse_service_id
from shared.migration.layout import Migration
from shared.store.keys import COUNT_ROW, FEED_PREFIX, LAYOUT_KEYS, legacy_history_keys, legacy_history_query
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, Store, Table
from tests.conftest import table_repo
from tests.support import CLOCK, SERVICE_ID, T0, count_rows, event, feed_entries, history_records, inventory_rows, processor_over
from tests.test_counts import assert_counts_match_a_scan, assert_feed_complete

SERVICE = parse_service_id(SERVICE_ID)


def layout_1(store: Store, n: int) -> list[Entity]:
    """A store as layout 1 left it: rows without count rows, and history records in the history table."""
    processor = processor_over(store, CLOCK.now)
    for i in range(n):
        processor.handle(decode_event(event("UserCreated", f"/users/u{i}", at=i, event_id=f"id-{i}")))
    for record in history_records(store):  # the same records where layout 1 kept them
        pk, rk = legacy_history_keys(record["ServiceKey"], record["EventId"])
        store.upsert(Table.HISTORY, [{**{k: v for k, v in record.items() if k not in ("RecordType", "ResourceKind")},
                                      "PartitionKey": pk, "RowKey": rk, "Kind": record["ResourceKind"]}])
    store.delete_rows(Table.INVENTORY, [row for page in store.scan(LAYOUT_2_EXTRAS) for row in page])
    store.delete_rows(Table.HISTORY, [row for page in store.scan(FEED) for row in page])
    store.delete_rows(Table.STATUS, [row for page in store.scan(MARKER) for row in page])
    legacy = [row.entity for page in store.scan(LEGACY) for row in page]
    assert len(legacy) == n and history_records(store) == [] and count_rows(store) == []
    return legacy


LAYOUT_2_EXTRAS = Query(Table.INVENTORY, low_rk="~")  # count rows and history records
FEED = Query(Table.HISTORY, FEED_PREFIX, FEED_PREFIX[:-1] + "}")
MARKER = Query(Table.STATUS, LAYOUT_KEYS[0], LAYOUT_KEYS[0] + "\0")
LEGACY = legacy_history_query()


def _same_records(store: Store, legacy: list[Entity]) -> None:
    moved = {(r["EventId"], r["Path"]): r for r in history_records(store)}
    assert sorted(moved) == sorted((r["EventId"], r["Path"]) for r in legacy)
    for old in legacy:
        new = moved[(old["EventId"], old["Path"])]
        kept = {k: v for k, v in old.items() if k not in ("PartitionKey", "RowKey", "Kind")}
        assert {k: new[k] for k in kept} == kept and new["ResourceKind"] == old["Kind"] and "Kind" not in new
    assert list(store.scan(LEGACY)) == []


def _migrate_and_check(store: Store, n: int) -> None:
    legacy = layout_1(store, n)
    done: list[tuple[str, int, int]] = []
    report = Migration(store, CLOCK.now).migrate(lambda phase, k, total: done.append((phase, k, total)))
    assert (report.copied, report.kept) == (n, 0) and done[0] == ("history", 0, n) and done[-1][1] == done[-1][2]
    _same_records(store, legacy)
    assert_counts_match_a_scan(store)
    assert_feed_complete(store)
    assert store.get(Table.STATUS, *LAYOUT_KEYS) is not None
    before = (history_records(store), feed_entries(store), inventory_rows(store))
    again = Migration(store, CLOCK.now).migrate()
    assert (again.copied, again.kept) == (0, 0) and (history_records(store), feed_entries(store), inventory_rows(store)) == before


@pytest.mark.unit
def test_a_layout_1_store_moves_to_layout_2_in_memory() -> None:
    _migrate_and_check(InMemoryStore(), 30)


def test_a_layout_1_store_moves_to_layout_2_on_azurite(azurite: Azurite) -> None:
    _migrate_and_check(table_repo(azurite), 30)


class DiesAfter(InMemoryStore):
    """Fails the n-th upsert of copies from now, as a migration killed half way would stop."""

    def __init__(self) -> None:
        super().__init__()
        self.upserts_left: int | None = None

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        if self.upserts_left is not None:
            if self.upserts_left == 0:
                raise ServiceRequestError("killed")
            self.upserts_left -= 1
        super().upsert(table, entities)


@pytest.mark.unit
def test_an_interrupted_migration_resumes() -> None:
    store = DiesAfter()
    legacy = layout_1(store, 1200)  # three pages of 500
    store.upserts_left = 1
    with pytest.raises(ServiceRequestError):
        Migration(store, CLOCK.now).migrate()
    assert len(list(r for page in store.scan(LEGACY) for r in page)) == 700  # the first page moved, no more
    store.upserts_left = None
    report = Migration(store, CLOCK.now).migrate()
    assert report.copied == 700
    _same_records(store, legacy)
    assert_counts_match_a_scan(store)


@pytest.mark.unit
def test_events_during_the_recount_keep_it_exact() -> None:
    """The recount writes each flag row under the ETag it read before counting, and checks that no shard moved while it
    read the rows: an event in between (here, while the rows are read) makes it count again."""
    class EventDuringScan(InMemoryStore):
        fired = False

        def scan(self, query: Any, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Any:
            if not self.fired and query.conditions and query.conditions[0].column == "PartitionKey" and query.low_rk != COUNT_ROW:
                self.fired = True
                processor_over(self, CLOCK.now).handle(decode_event(event("UserDeleted", "/users/u0", at=T0 + timedelta(hours=1))))
            return super().scan(query, page_size, select)

    store = EventDuringScan()
    layout_1(store, 5)
    report = Migration(store, CLOCK.now).migrate()
    assert report.recounts >= 1
    assert_counts_match_a_scan(store)
    assert store.load(parse_path(SERVICE, "users/u0"))[0].entity["IsDeleted"]  # type: ignore[union-attr]
