"""A crash between a record's transaction and its feed's: a sync's or an enrichment's record (nothing redelivers
those) gets its feed entries when the sync resumes or the event that asked for the read is delivered again, so the
feed lists it and retention (which finds records through the feed) purges it. And a sync interrupted after any
number of store requests, then resumed, ends as an uninterrupted one: the same rows, count rows, records and feed."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

import pytest
from azure.core.exceptions import ServiceRequestError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.arm_standin import ArmStandIn
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.domain.outcomes import SyncStop
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.management.sync import InventorySync
from shared.store.memory import InMemoryStore
from shared.store.ports import Store
from shared.timers.retention import Purger
from tests.support import SERVICE_ID, ManualClock, count_rows, event, feed_entries, history_records, inventory_rows
from tests.test_counts import Crashing, assert_feed_complete

SERVICE = parse_service_id(SERVICE_ID)


class DiesOnFeed:
    """The store, dying at its `nth` feed write: the record's transaction went through, its feed's never will."""

    def __init__(self, store: Store, nth: int = 1) -> None:
        self._store = store
        self.feeds_left = nth

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add_feed(self, records: list[dict[str, Any]]) -> None:
        self.feeds_left -= 1
        if self.feeds_left == 0:
            raise ServiceRequestError("the process died")
        self._store.add_feed(records)


def syncer_over(store: Any, settings: Settings, clock: ManualClock) -> InventorySync:
    services = bootstrap.wire(cast(Store, store), settings, LoggingAlertPublisher(), clock.now, bootstrap.arm_client(settings))
    assert services.reconciler.syncer is not None
    return services.reconciler.syncer


def missing_feed(store: Store) -> int:
    pointed = {(e["HistoryPartition"], e["HistoryRow"]) for e in feed_entries(store)}
    return sum(1 for r in history_records(store) if (r["PartitionKey"], r["RowKey"]) not in pointed)


def test_a_sync_that_dies_between_a_record_and_its_feed_heals_the_feed_when_it_resumes(
        arm_services: bootstrap.Services, arm_settings: Settings, clock: ManualClock) -> None:
    store = arm_services.store  # Azurite
    settings = replace(arm_settings, enrich_from_arm=False)
    with pytest.raises(ServiceRequestError):
        syncer_over(DiesOnFeed(store), settings, clock).step(SERVICE)
    assert missing_feed(store) >= 1  # the first transaction's records, with no feed entries
    clock.advance(minutes=3)  # the dead invocation's lease expires
    assert syncer_over(store, settings, clock).sync(SERVICE).finished
    assert_feed_complete(store)
    clock.advance(days=400)  # past every retention: the records are found through the feed, and go
    Purger(store, store, Settings(), clock.now).run()
    assert history_records(store) == [] and feed_entries(store) == []


def test_an_enrichment_that_dies_before_its_feed_is_healed_by_the_redelivery(
        arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    store = arm_services.store  # Azurite
    payload = event("UserCreated", "/users/alice", at=0)
    processor = bootstrap.wire(cast(Store, DiesOnFeed(store, nth=2)), arm_services.settings, LoggingAlertPublisher(), clock.now,
                               bootstrap.arm_client(arm_services.settings)).processor
    with pytest.raises(ServiceRequestError):  # the event's feed landed (1st), the read's DetailsChanged feed did not (2nd)
        processor.handle(decode_event(payload))
    assert {r["EventType"] for r in history_records(store)} == {"Microsoft.ApiManagement.UserCreated", "ApimInventory.DetailsChanged"}
    assert missing_feed(store) == 1
    reads = len(arm.hits(f"{SERVICE_ID}/users/alice"))
    assert arm_services.processor.handle(decode_event(payload)).outcome == "duplicate"  # Event Grid delivers it again
    assert_feed_complete(store)
    assert len(arm.hits(f"{SERVICE_ID}/users/alice")) == reads  # healed from the stored record, not read again


class CountsFeeds:
    """The store, counting its feed writes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.feeds = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add_feed(self, records: list[dict[str, Any]]) -> None:
        self.feeds += 1
        self._store.add_feed(records)


def test_only_a_redelivery_heals_the_feed_of_a_later_read_not_a_late_new_event(
        arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    assert arm_services.processor.handle(decode_event(event("UserCreated", "/users/alice", at=0))).outcome == "applied"
    counting = CountsFeeds(arm_services.store)  # the details were read at the clock's time, an hour after the event
    processor = bootstrap.wire(cast(Store, counting), arm_services.settings, LoggingAlertPublisher(), clock.now,
                               bootstrap.arm_client(arm_services.settings)).processor
    late = event("UserUpdated", "/users/alice", at=1)  # a new event, older than that read
    assert processor.handle(decode_event(late)).outcome == "applied"
    assert counting.feeds == 1  # its own feed, no heal of the read's
    assert processor.handle(decode_event(late)).outcome == "duplicate"
    assert counting.feeds == 3  # its own again, and the read's healed
    assert_feed_complete(arm_services.store)


# -- interrupted anywhere, then resumed -----------------------------------------------------------------------------

def _sync_settings(arm_settings: Settings) -> Settings:
    return replace(arm_settings, enrich_from_arm=False, sync_time_budget_seconds=1e-9)  # one page an invocation


PREPARED = [event("UserCreated", "/users/carol", at=0), event("UserCreated", "/users/alice", at=1)]
REQUESTS: list[int] = []  # the store calls of an uninterrupted sync, counted once


def _prepared(clock: ManualClock) -> InMemoryStore:
    """A twin with one user ARM does not have (the sync tombstones her) and one it has (the sync merges her)."""
    store = InMemoryStore()
    store.create_tables()
    processor = bootstrap.in_memory(clock=clock.now, store=store).processor
    for payload in PREPARED:
        processor.handle(decode_event(payload))
    return store


def _uninterrupted(settings_: Settings, started: ManualClock | None = None) -> tuple[InMemoryStore, int]:
    """A sync from start to end (begun at `started`'s time): the store, and how many store calls it made."""
    clock = ManualClock()
    store = _prepared(clock)
    if started is not None:
        clock.moment = started.moment
    counting = Crashing(store)
    counting.countdown = 10**9
    _finish(syncer_over(counting, settings_, clock), clock)
    return store, 10**9 - (counting.countdown or 0)


def _finish(sync: InventorySync, clock: ManualClock) -> None:
    """Invocations until the sync is done. A crash after its end (the checkpoint saved as done) leaves nothing to
    resume: with an interval, a done sync is not begun again."""
    for _ in range(200):
        report = sync.step(SERVICE, interval=timedelta(hours=1))
        clock.advance(minutes=1)
        if report.finished or report.stopped == SyncStop.NOT_DUE:
            return
        assert report.stopped == SyncStop.BUDGET
    raise AssertionError("the sync never finished")


def _outcome(store: InMemoryStore) -> dict[str, Any]:
    """What a sync leaves: the rows and count rows, the records and the feed (but the times of recording, which are
    the clock's when each invocation ran)."""
    def recorded_aside(entity: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entity.items() if k != "RecordedAt"}
    by_event = sorted((recorded_aside(e) for e in feed_entries(store) if e["RowKey"].startswith("e|")), key=lambda e: e["RowKey"])
    by_recorded = Counter((e["HistoryPartition"], e["HistoryRow"]) for e in feed_entries(store) if e["RowKey"].startswith("r|"))
    return {"rows": inventory_rows(store), "counts": count_rows(store), "records": [recorded_aside(r) for r in history_records(store)],
            "feed by event": by_event, "feed by recorded": by_recorded}


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_sync_interrupted_after_any_number_of_requests_ends_as_an_uninterrupted_one(
        arm: ArmStandIn, arm_settings: Settings, data: st.DataObject) -> None:
    settings_ = _sync_settings(arm_settings)
    if not REQUESTS:
        REQUESTS.append(_uninterrupted(settings_)[1])
    clock = ManualClock()
    store = _prepared(clock)
    crashing = Crashing(store)
    sync = syncer_over(crashing, settings_, clock)
    requests = REQUESTS[0]
    crashes = data.draw(st.lists(st.integers(0, requests - 1), min_size=1, max_size=2), label="crashes")
    died = 0
    for crash_after in crashes:  # each counted from the start of the process it kills
        crashing.countdown = crash_after
        try:
            _finish(sync, clock)
            break  # the sync ended first (or the failed call was a status write, which never fails a sync)
        except ServiceRequestError:
            died += 1
            clock.advance(minutes=3)  # the dead invocation's lease expires; the next process resumes
            sync = syncer_over(crashing, settings_, clock)
    else:
        crashing.countdown = None
        _finish(sync, clock)
    assert died >= 1 or crashing.countdown is None  # the first crash came within the sync: it died, or a status write failed
    checkpoint = store.load_sync(SERVICE.key)
    assert checkpoint is not None
    # A crash before the checkpoint was first saved leaves no sync begun: the one that ran began later.
    baseline, _ = _uninterrupted(settings_, ManualClock(checkpoint.entity["StartedAt"]))
    assert _outcome(store) == _outcome(baseline)
    assert _outcome(store) == _outcome(baseline)
    assert_feed_complete(store)
