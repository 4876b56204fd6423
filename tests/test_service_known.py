"""`summary`, `changes` and the purge find services through their status rows, so a service's status row is written
before its first partition commit in a process: a service whose later status write fails (which never fails the
event) is still known. One write per service per process, not per event."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

from azure.core.exceptions import ServiceRequestError

from devtools.arm_standin import ArmStandIn
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.memory import InMemoryStore
from shared.store.ports import PartitionWrite, Store, StoredRow
from tests.support import SERVICE_ID, T0, ManualClock, event

SERVICE = parse_service_id(SERVICE_ID)


class StatusFailsAfterCommit:
    """The store, refusing every status write once a partition commit has gone through (a process that dies
    between the two, or a status write that fails and is logged)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.committed = False
        self.status_writes = 0
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        stored = self._store.commit(write)
        self.committed = True
        return stored

    def save_status(self, service_key: str, entity: dict[str, Any], etag: str | None) -> StoredRow:
        self.status_writes += 1
        if self.committed:
            self.refused += 1
            raise ServiceRequestError("the store went away")
        return self._store.save_status(service_key, entity, etag)


def known_everywhere(services: bootstrap.Services, kind: str, paths: set[str]) -> None:
    summary = services.queries.summary()
    assert [(r["service"], r["kind"]) for r in summary["resources"] if r["live"]] == [("contoso", kind)]
    page = services.queries.changes(since=T0 - timedelta(days=1), top=100)
    assert {item["Path"] for item in page.items} >= paths


def test_one_event_in_a_fresh_store_shows_in_summary_and_changes_with_no_timer_run(
        app_services: bootstrap.Services, clock: ManualClock) -> None:
    failing = StatusFailsAfterCommit(app_services.store)  # Azurite
    processor = bootstrap.wire(cast(Store, failing), app_services.settings, LoggingAlertPublisher(), clock.now).processor
    assert processor.handle(decode_event(event("UserCreated", "/users/alice", at=0))).outcome == "applied"
    assert failing.refused == 1  # the status write after the commit failed, and did not fail the event
    known_everywhere(app_services, "user", {"users/alice"})
    for n in range(3):  # more events of the service in this process: no more status writes than the minute's
        processor.handle(decode_event(event("UserUpdated", "/users/alice", at=n + 1)))
    assert failing.status_writes <= 2


def test_a_first_sync_makes_its_service_known_before_it_writes(arm: ArmStandIn, arm_settings: Settings, clock: ManualClock) -> None:
    twin = InMemoryStore()
    twin.create_tables()
    store = StatusFailsAfterCommit(twin)
    settings = replace(arm_settings, enrich_from_arm=False, sync_time_budget_seconds=1e-9)  # one page an invocation
    services = bootstrap.wire(cast(Store, store), settings, LoggingAlertPublisher(), clock.now, bootstrap.arm_client(settings))
    assert services.reconciler.syncer is not None
    report = services.reconciler.syncer.step(SERVICE)
    assert not report.finished and store.committed  # the first invocation wrote rows; the sync has not noted itself yet
    known_everywhere(services, "user", {"users/alice"})
