"""The count rows are exact: after any order of events, any duplicates, a crash between any two store calls, concurrent
writers, a sync's transactions and a purge, every partition's count row equals a full scan of its rows (the live and
deleted counts, and the flagged rows), and its event buckets equal its history records (applied and stale by the Stale
column, duplicates by Duplicates)."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from azure.core.exceptions import ServiceRequestError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.domain.expiry import EXPIRY_FAMILIES, expiry_of
from shared.domain.flags import FLAGGED_FAMILIES, flag_of
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store import expiry_lists
from shared.store.counts import flagged, workspace_counts
from shared.store.keys import COUNT_ROW
from shared.store.memory import InMemoryStore
from shared.store.ports import Store
from shared.timers.retention import Purger
from tests.conftest import fresh_settings, table_repo
from tests.support import T0, ManualClock, count_rows, event, feed_entries, history_records, inventory_rows
from tests.test_sync import SERVICE, syncer

RESOURCES = [("User", "/users/u0"), ("User", "/users/u1"), ("API", "/apis/a"), ("APIRelease", "/apis/a/releases/r1"),
             ("Product", "/products/p"), ("Gateway", "/gateways/edge"),
             # a workspace's resources, under the names of the service's (its count rows keep them apart: `Workspaces`)
             ("API", "/workspaces/w1/apis/a"), ("APIRelease", "/workspaces/w1/apis/a/releases/r1"), ("Product", "/workspaces/W1/products/p"),
             ("Subscription", "/workspaces/w2/subscriptions/s")]
VERBS = ("Created", "Updated", "Deleted")
RULE = "/backends/payments/circuit-breaker/rules/r5xx"
# What flags and unflags rows: tokens near expiry and expired (a gateway's deletion tombstones its instances), breakers
# opened and closed.
FLAG_EVENTS = [("GatewayTokenNearExpiry", "/gateways/edge/pod-1"), ("GatewayTokenExpired", "/gateways/edge/pod-2"),
               ("CircuitBreaker.Opened", RULE), ("CircuitBreaker.Closed", RULE)]
EVENTS = [(prefix + verb, subject) for prefix, subject in RESOURCES for verb in VERBS] + FLAG_EVENTS
events = st.lists(st.tuples(st.sampled_from(range(len(EVENTS))), st.integers(0, 3), st.sampled_from(["e0", "e1", "e2"])),
                  min_size=1, max_size=10)


class Crashing:
    """The store, failing one call a given number of calls from now: a crash between two of its writes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.countdown: int | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self.countdown == 0:
                    self.countdown = None
                    raise ServiceRequestError("the store went away")
                if self.countdown is not None:
                    self.countdown -= 1
            return attr(*args, **kwargs)
        return call


def deliver_all(store_for: Callable[[], Store], clock: ManualClock, deliveries: list[tuple[dict[str, Any], int | None]],
                lanes: int) -> None:
    """Each delivery by one of `lanes` threads, each with its own processor (and Table store: its own cache); a
    crash makes Event Grid deliver again until it lands."""
    errors: list[BaseException] = []

    def lane(mine: list[tuple[dict[str, Any], int | None]]) -> None:
        crashing = Crashing(store_for())
        processor = bootstrap.wire(cast(Store, crashing), Settings(), LoggingAlertPublisher(), clock.now).processor
        try:
            for payload, crash_after in mine:
                crashing.countdown = crash_after
                for _ in range(30):
                    try:
                        processor.handle(decode_event(payload))
                        break
                    except ServiceRequestError:
                        continue
                else:
                    raise AssertionError("never landed")
            crashing.countdown = None
            processor.status.flush(clock.now())  # a status row lost to a crash is written by a later event
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(deliveries[n::lanes],)) for n in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def assert_counts_match_a_scan(store: Store) -> None:
    """Each partition's count rows (its flag row and shards) add up to a scan of its rows, each workspace's apart too;
    the flag row lists its flagged rows."""
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    in_workspaces: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    flagged_rows: dict[str, dict[str, str]] = defaultdict(dict)
    expiring_rows: dict[str, dict[str, int]] = defaultdict(dict)
    for row in inventory_rows(store):
        if (moment := expiry_of(row)) is not None:
            expiring_rows[row["PartitionKey"]][row["RowKey"]] = math.floor(moment.timestamp())
        expected[row["PartitionKey"]][f"{'Deleted' if row['IsDeleted'] else 'Live'}_{row['Kind']}"] += 1
        if row.get("Workspace"):
            in_workspaces[row["PartitionKey"]][(row["Workspace"].lower(), f"{'Deleted' if row['IsDeleted'] else 'Live'}_{row['Kind']}")] += 1
        if flag := flag_of(row):
            flagged_rows[row["PartitionKey"]][row["RowKey"]] = flag
    summed: dict[str, Counter[str]] = defaultdict(Counter)
    summed_workspaces: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for count in count_rows(store):
        summed[count["PartitionKey"]].update({k: v for k, v in count.items() if k.startswith(("Live_", "Deleted_"))})
        for workspace, columns in workspace_counts(count).items():
            summed_workspaces[count["PartitionKey"]].update({(workspace, column): n for column, n in columns.items()})
        if count["Family"] in FLAGGED_FAMILIES and count["RowKey"] == COUNT_ROW:  # never past the limit here: test_flags covers that
            assert flagged(count) == flagged_rows.pop(count["PartitionKey"], {}), count["PartitionKey"]
        else:
            assert "Flagged" not in count and "FlaggedOverflow" not in count
        if count["Family"] in EXPIRY_FAMILIES and count["RowKey"] == COUNT_ROW:  # what `expiring` reads instead of the rows
            assert expiry_lists.listed(count) == expiring_rows.pop(count["PartitionKey"], {}), count["PartitionKey"]
        else:
            assert "Expiring" not in count and "ExpiringOverflow" not in count
    for pk, columns in summed.items():
        assert {k: v for k, v in columns.items() if v} == dict(expected.pop(pk, Counter())), pk
    for pk in set(summed_workspaces) | set(in_workspaces):
        assert {k: v for k, v in summed_workspaces[pk].items() if v} == dict(in_workspaces[pk]), pk
    assert expected == {} and flagged_rows == {} and expiring_rows == {}  # every partition with rows has count rows; with flagged or expiring rows a flag row


def assert_buckets_match_the_history(store: Store) -> None:
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in history_records(store):
        records[record["PartitionKey"]].append(record)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for count in count_rows(store):
        for bucket in json.loads(count.get("Events") or "{}").get("m", {}).values():
            totals[count["PartitionKey"]] = [a + b for a, b in zip(totals[count["PartitionKey"]], bucket, strict=True)]
    for pk in set(totals) | set(records):
        mine = records[pk]
        assert totals[pk] == [sum(1 for r in mine if not r["Stale"]), sum(1 for r in mine if r["Stale"]),
                              sum(int(r.get("Duplicates", 0)) for r in mine)], pk


def assert_feed_complete(store: Store) -> None:
    pointed = Counter((e["HistoryPartition"], e["HistoryRow"]) for e in feed_entries(store))
    assert pointed == {(r["PartitionKey"], r["RowKey"]): 2 for r in history_records(store)}


def run(store_for: Callable[[], Store], plan: list[tuple[int, int, str]], data: st.DataObject, lanes: int) -> None:
    clock = ManualClock()  # every delivery in one minute: its bucket holds them all
    payloads = [event(EVENTS[n][0], EVENTS[n][1], at=second, event_id=eid) for n, second, eid in plan]
    redelivered = data.draw(st.lists(st.sampled_from(payloads), max_size=4), label="redelivered")
    order = data.draw(st.permutations(payloads + redelivered), label="order")
    crashes = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=len(order), max_size=len(order)), label="crashes")
    deliver_all(store_for, clock, list(zip(order, crashes, strict=True)), lanes)
    store = store_for()
    assert_counts_match_a_scan(store)
    assert_buckets_match_the_history(store)
    assert_feed_complete(store)
    clock.moment = T0 + timedelta(days=400)  # past every retention: tombstones and history go
    Purger(store, store, Settings(), clock.now).run()
    assert_counts_match_a_scan(store)
    assert history_records(store) == [] and feed_entries(store) == []


@pytest.mark.unit
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=events, data=st.data(), lanes=st.sampled_from([1, 2]))
def test_count_rows_equal_a_scan_in_memory(plan: list[tuple[int, int, str]], data: st.DataObject, lanes: int) -> None:
    store = InMemoryStore()
    run(lambda: store, plan, data, lanes)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=events, data=st.data(), lanes=st.sampled_from([1, 2]))
def test_count_rows_equal_a_scan_on_azurite(azurite: Azurite, plan: list[tuple[int, int, str]], data: st.DataObject,
                                            lanes: int) -> None:
    tables = fresh_settings()
    table_repo(azurite, tables)  # creates the tables
    run(lambda: table_repo(azurite, tables), plan, data, lanes)


def test_a_sync_and_a_purge_keep_the_counts_exact(arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    """A sync writes rows, their records and the count row in transactions of 49 rows; a later sync tombstones what
    ARM no longer lists; a purge deletes the tombstones with their counts."""
    store = arm_services.store
    arm_services.processor.handle(decode_event(event("UserCreated", "/users/zed")))  # not in ARM: the sync tombstones it
    syncer(arm_services).sync(SERVICE)
    assert_counts_match_a_scan(store)
    types = Counter(r["EventType"] for r in history_records(store))
    assert types["ApimInventory.Synced"] >= 1 and types["ApimInventory.SyncTombstoned"] == 1
    assert_feed_complete(store)
    arm.delete(f"{SERVICE.resource_id}/users/bob")
    clock.advance(hours=1)
    syncer(arm_services).sync(SERVICE)
    assert_counts_match_a_scan(store)
    clock.advance(days=400)
    Purger(store, store, Settings(), clock.now).run()
    assert_counts_match_a_scan(store)
    assert not any(r["IsDeleted"] for r in inventory_rows(store))
