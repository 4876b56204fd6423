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
from shared.store.keys import COUNT_ROW, FEED_PREFIX, LAYOUT_KEYS, legacy_history_keys, legacy_history_query, rows_only
from shared.store.memory import InMemoryStore
from shared.store.ports import Condition, Entity, PartitionWrite, Query, Store, StoredRow, Table
from tests.conftest import fresh_settings, table_repo
from tests.support import CLOCK, SERVICE_ID, T0, count_rows, event, feed_entries, history_records, inventory_rows, processor_over
from tests.test_cli import Cli, store_env
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


# -- the Workspace column ---------------------------------------------------------------------------------------------

def before_workspaces(store: Store, users: int) -> list[tuple[str, str]]:
    """A store as the version before workspaces left it: rows without a `Workspace` column (users, an API with a
    revision and a release, a backend with a rule), beside one workspace's API already written by this version. The
    keys of the rows it stripped."""
    processor = processor_over(store, CLOCK.now)
    payloads = [event("UserCreated", f"/users/u{i}", at=i) for i in range(users)]
    payloads += [event("APICreated", "/apis/orders", at=1), event("APICreated", "/apis/orders;rev=2", at=1),
                 event("APIReleaseCreated", "/apis/orders/releases/r1", at=1), event("CircuitBreaker.Opened", at=2),
                 event("APICreated", "/workspaces/wks1/apis/billing", at=3)]
    for payload in payloads:
        processor.handle(decode_event(payload))
    old = [{k: v for k, v in row.items() if k != "Workspace"} for row in inventory_rows(store) if not row["Path"].startswith("workspaces/")]
    store.upsert(Table.INVENTORY, old)
    assert sum("Workspace" not in row for row in inventory_rows(store)) == len(old) == users + 5
    return [(row["PartitionKey"], row["RowKey"]) for row in old]


SERVICE_LEVEL = rows_only(Query(Table.INVENTORY, conditions=(Condition("Workspace", "eq", ""),)))


def _fills_and_check(store: Store, users: int) -> None:
    stripped = before_workspaces(store, users)
    assert [r for page in store.scan(SERVICE_LEVEL) for r in page] == []  # a row without the column matches no filter on it
    done: list[tuple[str, int, int]] = []
    report = Migration(store, CLOCK.now).migrate(lambda phase, k, total: done.append((phase, k, total)))
    assert report.workspaces_filled == len(stripped)
    rows = {(r["PartitionKey"], r["RowKey"]): r for r in inventory_rows(store)}
    assert {key: rows[key]["Workspace"] for key in stripped} == dict.fromkeys(stripped, "")
    assert sorted((r.entity["PartitionKey"], r.entity["RowKey"]) for page in store.scan(SERVICE_LEVEL) for r in page) == sorted(stripped)
    assert [r["Workspace"] for r in rows.values() if r["Path"].startswith("workspaces/")] == ["wks1"]
    shown = [d for d in done if d[0] == "workspace column"]
    assert shown[0] == ("workspace column", 0, len(rows)) and shown[-1] == ("workspace column", len(rows), len(rows))
    assert_counts_match_a_scan(store)
    etags = {key: store.get(Table.INVENTORY, *key).etag for key in rows}  # type: ignore[union-attr]
    again = Migration(store, CLOCK.now).migrate()
    assert again.workspaces_filled == 0
    assert {key: store.get(Table.INVENTORY, *key).etag for key in rows} == etags  # type: ignore[union-attr]


@pytest.mark.unit
def test_rows_written_before_workspaces_get_the_workspace_column_in_memory() -> None:
    _fills_and_check(InMemoryStore(), 40)


def test_rows_written_before_workspaces_get_the_workspace_column_on_azurite(azurite: Azurite) -> None:
    _fills_and_check(table_repo(azurite), 40)


class DiesOnCommit(InMemoryStore):
    """Fails the n-th transaction of inventory rows from now: a migration killed half way through the column."""

    def __init__(self) -> None:
        super().__init__()
        self.commits_left: int | None = None

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        if self.commits_left is not None:
            if self.commits_left == 0:
                raise ServiceRequestError("killed")
            self.commits_left -= 1
        return super().commit(write)


@pytest.mark.unit
def test_an_interrupted_fill_of_the_workspace_column_resumes() -> None:
    store = DiesOnCommit()
    stripped = before_workspaces(store, 1200)  # users in 16 partitions, more than one page of 500 rows
    store.commits_left = 5
    with pytest.raises(ServiceRequestError):
        Migration(store, CLOCK.now).migrate()
    left = sum("Workspace" not in row for row in inventory_rows(store))
    assert 0 < left < len(stripped)
    store.commits_left = None
    report = Migration(store, CLOCK.now).migrate()
    assert report.workspaces_filled == left
    assert all(row["Workspace"] == "" for row in inventory_rows(store) if not row["Path"].startswith("workspaces/"))
    assert_counts_match_a_scan(store)


@pytest.mark.unit
def test_a_write_during_the_fill_wins() -> None:
    """An event lands on a row after the fill read its page and before it writes it: the fill's transaction fails on
    the row's ETag, the row is read again, and the event's write stands (here it already has the column)."""
    class EventBeforeFill(InMemoryStore):
        fired = False

        def commit(self, write: PartitionWrite) -> list[StoredRow]:
            if not self.fired and write.record is None and any("Workspace" not in c.before.entity for c in write.rows if c.before):
                self.fired = True
                processor_over(self, CLOCK.now).handle(decode_event(event("UserDeleted", "/users/u0", at=T0 + timedelta(hours=1))))
            return super().commit(write)

    store = EventBeforeFill()
    layout_ = before_workspaces(store, 30)
    u0 = store.load(parse_path(SERVICE, "users/u0"))[0]
    assert u0 is not None and (u0.entity["PartitionKey"], u0.entity["RowKey"]) in layout_
    report = Migration(store, CLOCK.now).migrate()
    assert store.fired
    row = store.load(parse_path(SERVICE, "users/u0"), fresh=True)[0]
    assert row is not None and row.entity["IsDeleted"] is True and row.entity["Workspace"] == ""
    assert report.workspaces_filled < len(layout_)  # the row the event wrote was not the fill's to write
    assert all(r["Workspace"] == "" for r in inventory_rows(store) if not r["Path"].startswith("workspaces/"))
    assert_counts_match_a_scan(store)


@pytest.mark.slow  # the console script, as a subprocess
def test_the_migrate_command_fills_the_workspace_column(azurite: Azurite, tmp_path: Any) -> None:
    settings = fresh_settings()
    stripped = before_workspaces(table_repo(azurite, settings), 3)
    run = Cli(store_env(azurite, settings), tmp_path)
    result = run("migrate")
    assert result.returncode == 0, result
    assert f"rows given a Workspace column: {len(stripped)};" in result.stdout
    assert all(row["Workspace"] == "" for row in inventory_rows(table_repo(azurite, settings)) if not row["Path"].startswith("workspaces/"))
    again = run("migrate")
    assert again.returncode == 0 and "rows given a Workspace column: 0;" in again.stdout
