"""Retention against Azurite: rows on both sides of each cutoff, partitions of more than 100 rows (several
transactions), paging, a dry run that deletes nothing, and a tombstone revived after it was read."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.worker import decode_event, fire_timer, function_json
from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import InvalidSettings
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.entrypoints import cli
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.access_index import AccessIndex
from shared.store.keys import COUNT_ROW, with_keys
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import HistoryRecord, Query, Store, StoredRow, Table
from shared.store.records import feed_entities, history_entity
from shared.store.writer import RowWriter
from shared.timers import retention
from shared.timers.retention import Purger
from tests.conftest import table_repo
from tests.support import SERVICE_ID, T0, ManualClock, event, feed_entries, history_records, inventory_rows, processor_over, rejected_records

NOW = T0
DAY = timedelta(days=1)
SERVICE = parse_service_id(SERVICE_ID)


def process(repo: Store, clock: ManualClock, *events: tuple[float, str, str]) -> None:
    """(days ago, type, subject): each event received a second after its time, so RecordedAt and ReceivedAt
    follow the event's time."""
    for days_ago, suffix, subject in events:
        clock.moment = NOW - days_ago * DAY + timedelta(seconds=1)
        processor_over(repo, clock.now).handle(decode_event(event(suffix, subject, at=NOW - days_ago * DAY)))


def bulk(azurite: Azurite, table: str, rows: list[dict[str, Any]]) -> None:
    client = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(table)
    for partition in {row["PartitionKey"] for row in rows}:
        mine = [row for row in rows if row["PartitionKey"] == partition]
        for start in range(0, len(mine), 100):
            client.submit_transaction([("upsert", row) for row in mine[start:start + 100]])


def seed(azurite: Azurite, settings: Settings) -> dict[str, int]:
    """Rows on both sides of every cutoff; returns how many of each the purge must delete."""
    repo = table_repo(azurite, settings)
    process(repo, ManualClock(), (400, "UserCreated", "/users/live"), (200, "UserCreated", "/users/old"),
            (100, "UserDeleted", "/users/old"), (50, "UserCreated", "/users/young"), (10, "UserDeleted", "/users/young"),
            # rejected (bad-subject); the middle two fall on the cutoff's day, so their partition stays
            *((days_ago, "UserCreated", f"/widgets/{days_ago}") for days_ago in (40, 30 + 1 / 24, 30 - 1 / 24, 5)))
    refs = {n: parse_path(SERVICE, f"apis/orders;rev={n}") for n in range(1, 152)}  # 151 tombstones in one partition
    revisions = [with_keys(ref, merge(None, Change(ref, Op.DELETED, Stamp(NOW - 95 * DAY, f"d{n}"), "x"))) for n, ref in refs.items()]
    bulk(azurite, settings.inventory_table, revisions)
    cutoff = NOW - 365 * DAY

    def record(n: int, event_time: Any, recorded_at: Any) -> dict[str, Any]:
        return history_entity(HistoryRecord(parse_path(SERVICE, f"users/h{n:03d}"), f"h{n:03d}", "Microsoft.ApiManagement.UserUpdated",
                                            event_time, SERVICE_ID, f"/users/h{n:03d}", "updated", False, "{}", "cloudEvents", recorded_at))

    # 150 old records over five days' feed partitions, 10 young ones; on the cutoff's own day one an hour before it and
    # one an hour after; one that happened long ago and was recorded after the cutoff (its `e|` entry in an old day)
    history = [record(n, NOW - (400 + n % 5) * DAY, NOW - (400 + n % 5) * DAY) for n in range(150)]
    history += [record(n, NOW - 300 * DAY, NOW - 300 * DAY) for n in range(150, 160)]
    history += [record(160, cutoff - timedelta(hours=1), cutoff - timedelta(hours=1)), record(161, cutoff + timedelta(hours=1),
                cutoff + timedelta(hours=1)), record(162, NOW - 402 * DAY, NOW - 300 * DAY)]
    bulk(azurite, settings.inventory_table, history)  # beside their rows, found through the service's change feed
    bulk(azurite, settings.history_table, [entry for record in history for entry in feed_entities(record)])
    bulk(azurite, settings.rejected_table, [{"PartitionKey": f"{NOW - 45 * DAY:%Y%m%d}", "RowKey": f"r{n:03d}", "ReceivedAt": NOW - 45 * DAY}
                                            for n in range(150)])
    alerts: list[dict[str, Any]] = [{"PartitionKey": f"sent|{NOW - 40 * DAY:%Y%m%d}", "RowKey": f"a{n:03d}"} for n in range(150)]
    alerts += [{"PartitionKey": f"sent|{NOW - 5 * DAY:%Y%m%d}", "RowKey": "young"},
               {"PartitionKey": "pending", "RowKey": "waiting", "DetectedAt": NOW - 400 * DAY}]
    bulk(azurite, settings.outbox_table, alerts)
    return {"tombstones": 1 + 151, "history": 1 + 150 + 1, "rejected": 1 + 150, "sentAlerts": 150, "audit": 0, "auditRejected": 0}


def counts(repo: Store) -> dict[str, int]:
    """Entities per table, the inventory's count rows left out (a purge writes them: `tests/test_counts.py` checks them)."""
    return {table: sum(1 for page in repo.scan(Query(Table(table))) for row in page
                       if not (table == "inventory" and str(row.entity["RowKey"]).startswith(COUNT_ROW)))
            for table in ("inventory", "history", "rejected", "alerts")}


@pytest.fixture
def in_process(app_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)
    level = logging.getLogger("apim_inventory").level

    def invoke(*argv: str) -> tuple[int, str]:
        code = cli.main(list(argv))
        bootstrap.install(None)
        out, err = capsys.readouterr()
        assert err == ""
        return code, out

    yield invoke
    logging.getLogger("apim_inventory").setLevel(level)


def test_purge_deletes_what_is_past_each_cutoff_page_by_page(azurite: Azurite, app_settings: Settings, in_process: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    expected = seed(azurite, app_settings)
    repo = table_repo(azurite, app_settings)
    before = counts(repo)
    monkeypatch.setattr(retention, "PAGE", 40)  # several pages, deleted between reads
    code, out = in_process("purge", "--now", NOW.isoformat(), "--dry-run", "-o", "json")
    document = json.loads(out)
    assert code == 0 and document["dryRun"] is True
    assert {r["what"]: r["wouldDelete"] for r in document["results"]} == expected and "deleted" not in document["results"][0]
    assert {r["what"]: r["before"] for r in document["results"]} == {
        "tombstones": "2026-08-04T09:00:00Z", "history": "2025-11-02T09:00:00Z", "rejected": "2026-10-03T09:00:00Z",
        "sentAlerts": "2026-10-03T09:00:00Z", "audit": "2025-11-02T09:00:00Z", "auditRejected": "2026-10-03T09:00:00Z"}
    assert counts(repo) == before  # a dry run deletes nothing
    code, out = in_process("--now", NOW.isoformat(), "purge")
    assert code == 0 and out.splitlines()[0].split() == ["What", "Table", "Before", "Deleted"]
    assert {line.split()[0]: int(line.split()[-1]) for line in out.splitlines()[2:]} == expected
    after = counts(repo)
    # inventory: the tombstones and the history records beside the rows; history: both feed entries of each record;
    # rejected: the records and the counter row of the purged day the app wrote (the seeded one has none)
    assert after == {"inventory": before["inventory"] - 152 - 152, "history": before["history"] - 2 * 152,
                     "rejected": before["rejected"] - 151 - 1, "alerts": before["alerts"] - 150}
    assert sorted(r["Path"] for r in inventory_rows(repo)) == ["users/live", "users/young"]
    kept = {r["EventId"] for r in history_records(repo) if r["EventId"].startswith("h")}
    assert kept == {f"h{n:03d}" for n in range(150, 163) if n != 160}
    assert {(e["EventId"], e["RowKey"][0]) for e in feed_entries(repo) if e["EventId"].startswith("h")} == {
        (i, order) for i in kept for order in "er"}  # the late record's entry in an old day stays
    assert sorted((r["PartitionKey"], r["RowKey"]) for page in repo.scan(Query(Table.OUTBOX)) for r in (p.entity for p in page)) == [
        ("pending", "waiting"), (f"sent|{NOW - 5 * DAY:%Y%m%d}", "young")]
    assert sorted(r["PartitionKey"] for r in rejected_records(repo)) == [f"{NOW - 30 * DAY:%Y%m%d}"] * 2 + [f"{NOW - 5 * DAY:%Y%m%d}"]
    code, out = in_process("--now", NOW.isoformat(), "purge", "-o", "csv")
    assert code == 0 and {line.split(",")[0]: line.split(",")[-1] for line in out.splitlines()[1:]} == dict.fromkeys(expected, "0")


def test_a_tombstone_revived_after_it_was_read_is_kept(azurite: Azurite, app_settings: Settings) -> None:
    """The revision's row changes between the purge's read and its delete: its If-Match fails, the transaction
    of its partition fails, and the rows are then deleted one by one, each under its own ETag."""
    repo, clock = table_repo(azurite, app_settings), ManualClock(NOW)
    processor = processor_over(repo, clock.now)
    for payload in [event("APICreated", "/apis/orders", at=-300 * DAY.total_seconds()),
                    *(event("APIUpdated", f"/apis/orders;rev={n}", at=-299 * DAY.total_seconds()) for n in (2, 3)),
                    event("APIDeleted", "/apis/orders", at=-200 * DAY.total_seconds())]:
        processor.handle(decode_event(payload))
    (tombstones,) = list(repo.scan(Purger(repo, repo, app_settings, clock.now).plan(NOW)[0][3]))
    assert sorted(r.entity["Path"] for r in tombstones) == ["apis/orders", "apis/orders;rev=2", "apis/orders;rev=3"]
    processor.handle(decode_event(event("APIUpdated", "/apis/orders;rev=2", at=-1)))  # revived, after the read
    assert repo.delete_rows(Table.INVENTORY, tombstones, if_match=True) == 2
    assert [(r["Path"], r["IsDeleted"]) for r in inventory_rows(repo)] == [("apis/orders;rev=2", False)]


class RevivingRepository(InMemoryStore):
    """Revives one row between the purge's read and its delete, as a concurrent event would."""

    def __init__(self) -> None:
        super().__init__()
        self.revive: dict[str, Any] | None = None

    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        if self.revive is not None:
            processor_over(self).handle(decode_event(self.revive))
            self.revive = None
        return super().delete_rows(table, rows, if_match=if_match)


@pytest.mark.unit
def test_the_in_memory_repository_purges_the_same_way() -> None:
    repo, clock = RevivingRepository(), ManualClock()
    process(repo, clock, (200, "UserCreated", "/users/a"), (100, "UserDeleted", "/users/a"), (200, "UserCreated", "/users/b"),
            (100, "UserDeleted", "/users/b"), (20, "UserDeleted", "/users/c"), (40, "UserCreated", "/widgets/w"))
    repo.revive = event("UserUpdated", "/users/a", at=-DAY.total_seconds())
    clock.moment = NOW
    results = {r.what: r.deleted for r in Purger(repo, repo, Settings(history_retention_days=150), clock.now).run()}
    assert results == {"tombstones": 1, "history": 2, "rejected": 1, "sentAlerts": 0, "audit": 0, "auditRejected": 0}
    assert sorted((r["Path"], r["IsDeleted"]) for r in inventory_rows(repo)) == [("users/a", False), ("users/c", True)]
    assert rejected_records(repo) == []


def test_the_purge_timer_uses_the_retention_settings(app_services: bootstrap.Services, app_settings: Settings,
                                                     clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    (trigger,) = [b for b in function_json("purge")["bindings"] if b["type"] == "timerTrigger"]
    assert trigger["schedule"] == "0 0 3 * * *"
    repo = app_services.store
    process(repo, clock, (3, "UserCreated", "/users/a"), (2, "UserDeleted", "/users/a"))
    clock.moment = NOW
    caplog.set_level("INFO", logger="apim_inventory")
    fire_timer("purge")
    assert [r["Path"] for r in inventory_rows(repo)] == ["users/a"]  # 90 days by default
    monkeypatch.setenv("RETENTION_TOMBSTONE_DAYS", "1")
    bootstrap.install(None)  # a changed app setting restarts the app: the next process reads it
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    fire_timer("purge")
    assert list(inventory_rows(repo)) == []
    lines = [json.loads(r.getMessage().removeprefix("apim_inventory.purge ")) for r in caplog.records
             if r.getMessage().startswith("apim_inventory.purge ")]
    assert [(line["dryRun"], line["tombstones"], line["history"]) for line in lines] == [(False, 0, 0), (False, 1, 0)]


@pytest.mark.unit
@pytest.mark.parametrize(("name", "value", "message"), [
    ("RETENTION_HISTORY_DAYS", "0", "at least 1"), ("RETENTION_REJECTED_DAYS", "-3", "at least 1"),
    ("INVENTORY_STATUS_TABLE", "ApimInventory", "different from the others"), ("INVENTORY_STATUS_TABLE", "a-b", "valid table name"),
    ("USAGE_HOURLY_DAYS", "1", "at least 2"), ("RETENTION_USAGE_DAYS", "0", "at least 1"),
    ("INVENTORY_USAGE_TABLE", "ApimInventoryStatus", "different from the others"), ("GATEWAY_LOGS_CONTAINER", "Logs_1", "lower-case"),
])
def test_bad_retention_settings_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        Settings.from_env({name: value})


@pytest.mark.unit
def test_retention_settings_are_read() -> None:
    settings = Settings.from_env({"PURGE_SCHEDULE": "0 30 1 * * *", "RETENTION_SENT_ALERTS_DAYS": "7.5"})
    assert settings.purge_schedule == "0 30 1 * * *" and settings.retention_days["sentAlerts"] == 7.5
    assert Settings.from_env({}).retention_days == {"tombstones": 90, "history": 365, "rejected": 30, "sentAlerts": 30, "usage": 400, "audit": 365}


class RevivingSubscriptions(InMemoryStore):
    """Revives a subscription between the purge's read of the tombstones and their delete, as a sync or enrichment would."""

    def __init__(self) -> None:
        super().__init__()
        self.revive: Callable[[], Any] | None = None

    def delete_rows(self, table: Table, rows: list[StoredRow], *, if_match: bool = False) -> int:
        revive, self.revive = self.revive, None
        if revive is not None:
            revive()
        return super().delete_rows(table, rows, if_match=if_match)


@pytest.mark.unit
def test_the_purge_deletes_the_index_entries_of_purged_subscriptions_and_keeps_those_of_a_revived_one() -> None:
    store, clock = RevivingSubscriptions(), ManualClock(NOW)
    writer = RowWriter(store, AlertOutbox(store, LoggingAlertPublisher()), Settings().flag_policy, clock.now, index=AccessIndex(store))

    def write(name: str, op: Op, days_ago: float) -> None:
        ref, stamp = parse_path(SERVICE, f"subscriptions/{name}"), Stamp(NOW - days_ago * DAY, f"{name}{days_ago}")
        details = Change(ref, Op.DETAILS, stamp, "x", {"Scope": f"{SERVICE_ID}/products/starter", "OwnerId": f"{SERVICE_ID}/users/{name}"})
        writer.apply(ref, [Change(ref, op, stamp, "x"), *([details] if op is not Op.DELETED else [])])

    for name in ("kept", "gone"):
        write(name, Op.CREATED, 200)
        write(name, Op.DELETED, 100)
    entries = [row.entity for page in store.scan(Query(Table.STATUS)) for row in page if str(row.entity["PartitionKey"]).startswith("access|")]
    assert sorted(e["TargetRow"] for e in entries) == ["subscriptions|gone"] * 2 + ["subscriptions|kept"] * 2
    store.revive = lambda: write("kept", Op.UPDATED, 1)
    results = {r.what: r.deleted for r in Purger(store, store, Settings(), clock.now).run()}
    assert results["tombstones"] == 1
    left = [row.entity for page in store.scan(Query(Table.STATUS)) for row in page if str(row.entity["PartitionKey"]).startswith("access|")]
    assert sorted(e["TargetRow"] for e in left) == ["subscriptions|kept"] * 2
    queries = bootstrap.wire(store, Settings(), LoggingAlertPublisher(), clock.now).queries
    assert [r["Name"] for r in queries.list_kind(Kind.SUBSCRIPTION, scope="contoso/products/starter").rows] == ["kept"]
