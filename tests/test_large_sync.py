"""Syncs of large instances: invocations that stop within a budget and resume from the checkpoint, a crash mid-way,
overlapping invocations (the lease), a listing whose pages shift, and ARM's throttling. Small instances and tiny
budgets (0 seconds: one page an invocation) keep them fast; the real ARM client drives the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.management_plane import user
from devtools.worker import deliver
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.management.checkpoint import LISTING, Checkpoint
from shared.management.sync import InventorySync
from shared.store.memory import InMemoryStore
from shared.store.ports import PartitionWrite, StoredRow
from tests.support import SERVICE_ID, ManualClock, event
from tests.test_enrichment import row
from tests.test_health import health
from tests.test_sync import LISTED, syncer

SERVICE = parse_service_id(SERVICE_ID)
TOTAL = sum(LISTED.values())


class Crashing(InMemoryStore):
    """Dies (raises) on the n-th scratch entity it is asked to save, as a process killed mid-way would stop."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_at: int | None = None
        self.saved_pages = 0
        self.writes: list[str] = []

    def save_seen(self, service_key: str, unit: int, page: int, family: str, keys: list[str], parents: list[str]) -> None:
        self.saved_pages += 1
        if self.saved_pages == self.crash_at:
            raise RuntimeError("killed")
        super().save_seen(service_key, unit, page, family, keys, parents)

    def commit(self, write: PartitionWrite) -> list[StoredRow]:
        self.writes.extend(change.entity["RowKey"] for change in write.rows)
        return super().commit(write)


@pytest.fixture
def memory_services(arm_settings: Settings, clock: ManualClock) -> Iterator[bootstrap.Services]:
    settings = replace(arm_settings, enrich_from_arm=False, reconcile_services=(SERVICE_ID,), sync_time_budget_seconds=1e-9)
    services = bootstrap.wire(Crashing(), settings, LoggingAlertPublisher(), clock.now, bootstrap.arm_client(settings))
    bootstrap.install(services)
    yield services
    bootstrap.install(None)


def store_of(services: bootstrap.Services) -> Crashing:
    assert isinstance(services.store, Crashing)
    return services.store


def checkpoint(services: bootstrap.Services) -> Checkpoint:
    stored = services.store.load_sync(SERVICE.key)
    assert stored is not None
    return Checkpoint.from_entity(stored.entity)


def first_pages(arm: ArmStandIn, collection: str) -> int:
    """How often a collection's listing was started (its first page asked for)."""
    return sum(1 for r in arm.hits(collection) if r.path.lower().endswith(collection.lower()) and not r.query.keys() - {"api-version"})


def test_the_timer_resumes_a_budgeted_sync_and_tombstones_only_after_the_whole_listing(
        memory_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    deliver([event("UserCreated", "/users/carol", at=0)])  # ARM has no carol: the sync tombstones her, at the end
    started = clock.advance(minutes=1)
    runs = 0
    while True:
        (report,) = memory_services.reconciler.run()  # one invocation, one page (a budget of ~0 s)
        runs += 1
        clock.advance(minutes=10)
        if report.finished:
            break
        assert report.stopped == "budget" and runs < 100
        assert not row(memory_services, "users/carol")["IsDeleted"] or checkpoint(memory_services).phase != LISTING
        if runs == 2:  # GET /api/health shows the sync in progress
            (contoso,) = [s for s in health()[1]["services"] if s["service"] == "contoso"]
            assert contoso["syncInProgress"]["phase"] == LISTING and contoso["syncInProgress"]["invocations"] == 2
    assert runs > TOTAL and report.invocations == runs and report.started_at == started
    assert by_outcome(report) == {"added": TOTAL, "tombstoned": 1}
    carol, alice = row(memory_services, "users/carol"), row(memory_services, "users/alice")
    assert carol["IsDeleted"] and carol["DeletedAt"] == started and alice["LastEventTime"] == started  # S, in every invocation
    assert first_pages(arm, f"{SERVICE_ID}/users") == 1 and first_pages(arm, f"{SERVICE_ID}/apis") == 1  # resumed from nextLink, never started over
    assert list(memory_services.store.scan(seen_query())) == []  # the scratch is gone
    assert health()[1]["services"][0]["syncInProgress"] is None


def seen_query() -> Any:
    from shared.store.keys import seen_pages
    return seen_pages(SERVICE.key)


def by_outcome(report: Any) -> dict[str, int]:
    return {k: v for k, v in report.counts.items() if v}


def test_a_sync_that_dies_mid_way_resumes_once_its_lease_expires(memory_services: bootstrap.Services, arm: ArmStandIn,
                                                                 clock: ManualClock) -> None:
    sync = syncer(memory_services)
    sync.budget = 3600
    store_of(memory_services).crash_at = 4
    with pytest.raises(RuntimeError, match="killed"):
        sync.step(SERVICE)
    done = checkpoint(memory_services)
    assert (done.unit, done.page, done.next_link) == (1, 0, None)  # users done; the APIs' rows written, not checkpointed
    assert sync.step(SERVICE).stopped == "busy"  # the dead invocation's lease has not expired
    clock.advance(minutes=3)
    report = sync.step(SERVICE)
    # The page written before the crash is listed again: its rows are already there, so they count as unchanged.
    assert report.finished and report.invocations == 2 and report.counts["unchanged"] >= 1
    assert report.counts["added"] + report.counts["unchanged"] == TOTAL == report.by_kind["api"]["unchanged"] + sum(
        c["added"] for c in report.by_kind.values())
    assert first_pages(arm, f"{SERVICE_ID}/users") == 1  # the users were not listed again


def test_overlapping_invocations_never_both_write(memory_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    store = store_of(memory_services)
    first = syncer(memory_services)
    first.budget = 3600
    second = InventorySync(first.arm, store, first._writer, first._outbox, clock.now, records=store, deleter=store, budget=0)
    seen: dict[str, Any] = {}

    def note(phase: str, done: int, total: int | None) -> None:
        if phase == "write" and done == 0 and "busy" not in seen:
            seen["busy"] = second.step(SERVICE).stopped  # the first holds the lease
        elif phase == "write" and done == 0 and "taken" not in seen:
            clock.advance(minutes=3)  # the first stalls past its lease; the second takes the sync over
            seen["taken"] = second.step(SERVICE)
            seen["writes"] = len(store.writes)

    report = first.step(SERVICE, note)
    assert seen["busy"] == "busy" and seen["taken"].stopped == "budget" and seen["taken"].invocations == 2
    assert report.stopped == "lease-lost" and len(store.writes) == seen["writes"]  # the first wrote nothing after
    clock.advance(minutes=1)
    assert second.sync(SERVICE).counts["added"] == TOTAL


def test_a_page_that_shifts_skips_a_user_who_is_confirmed_by_a_get_and_kept(memory_services: bootstrap.Services,
                                                                            arm: ArmStandIn, clock: ManualClock) -> None:
    for name in ("alice", "bob"):
        arm.delete(f"{SERVICE_ID}/users/{name}")
    arm.generate(f"{SERVICE_ID}/users", "user-", 10, user)
    arm.page_size = 3
    sync = syncer(memory_services)
    sync.budget = 3600
    assert sync.sync(SERVICE).counts["added"] == TOTAL - 2 + 10

    def delete_between_pages(path: str, offset: int) -> None:
        if path.endswith("/users") and offset == 0:
            arm.delete(f"{SERVICE_ID}/users/user-000001")  # user-000003 moves to offset 2, which was served

    arm.after_page = delete_between_pages
    clock.advance(hours=6)
    report = sync.sync(SERVICE)
    # user-000001 was on the first page, so this listing saw her; user-000003 it skipped: a candidate, which ARM has.
    assert report.by_kind["user"]["tombstoned"] == 0 and report.kept == 1 and report.by_kind["user"]["unchanged"] == 10
    assert not row(memory_services, "users/user-000003")["IsDeleted"]
    assert [r.path for r in arm.hits("/users/user-")] == [f"{SERVICE_ID}/users/user-000003"]  # the GET that kept her
    arm.after_page = None
    clock.advance(hours=6)
    again = sync.sync(SERVICE)  # the next listing does not see user-000001: her GET answers 404
    assert again.by_kind["user"]["tombstoned"] == 1 and again.kept == 0 and row(memory_services, "users/user-000001")["IsDeleted"]


def test_retry_after_of_arm_and_of_the_resource_provider_is_honoured(memory_services: bootstrap.Services, arm: ArmStandIn) -> None:
    sync = syncer(memory_services)
    sync.budget, sync.reads_reserve = 3600, 0  # Retry-After alone (the remaining-reads headers: the test below)
    arm.throttle(bucket=5, refill=2.0)  # ARM's bucket runs dry within the first pages: 429 with Retry-After
    arm.fail("/products", 429, times=1, retry_after="1")  # the resource provider's own 429
    report = sync.sync(SERVICE)
    assert report.finished and report.counts["added"] == TOTAL and report.incomplete == {}
    assert len(arm.retry_afters) >= 2 and "1" in {wait for _, wait in arm.retry_afters}
    arm_calls = [r.at for r in arm.requests if "/msi/" not in r.path]
    for sent, wait in arm.retry_afters:  # the next request came only after the wait ARM asked for
        assert min(at for at in arm_calls if at > sent) >= sent + float(wait) - 0.01


def test_a_retry_after_beyond_the_limit_stops_the_invocation_and_the_next_resumes_at_the_page(
        memory_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    sync = syncer(memory_services)
    sync.budget = 3600
    arm.fail("/products", 429, times=1, retry_after="120")
    report = sync.step(SERVICE)
    assert report.stopped == "throttled" and report.retry_after == 120 and report.incomplete == {}
    assert checkpoint(memory_services).unit == 2  # users and APIs listed; the products' first page is next
    assert sync.step(SERVICE).finished and first_pages(arm, f"{SERVICE_ID}/products") == 2 and first_pages(arm, f"{SERVICE_ID}/users") == 1


def test_the_remaining_reads_headers_slow_the_sync_then_stop_it(memory_services: bootstrap.Services, arm: ArmStandIn) -> None:
    pauses: list[float] = []
    sync = syncer(memory_services)
    sync.budget, sync.reads_reserve, sync.sleep = 3600, 20, pauses.append
    arm.throttle(bucket=12, refill=0.001)  # hardly refills: the headers count down one a read, from 11
    report = sync.step(SERVICE)
    assert report.stopped == "throttled" and report.retry_after == 20 / 25  # stops at 2 left (a tenth of the reserve)
    assert pauses == sorted(pauses) and len(pauses) == 9 and pauses[0] == pytest.approx(9 / 25)  # slower as it drains
    assert arm.retry_afters == []  # it never ran into a 429
    arm.throttle(bucket=1000, refill=100.0)
    assert sync.step(SERVICE).finished


def test_the_tombstone_pass_stops_within_its_budget_mid_page_and_the_next_invocation_resumes_there(
        memory_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    deliver([event("UserCreated", f"/users/ghost-{n}", at=n) for n in range(8)])  # ARM has none of them: candidates
    clock.advance(minutes=1)
    store = store_of(memory_services)
    base = syncer(memory_services)
    # The budget counts the candidates' GETs: three an invocation.
    sync = InventorySync(base.arm, store, base._writer, base._outbox, clock.now, records=store, deleter=store, budget=3,
                         timer=lambda: float(len(arm.hits("/users/ghost-"))))
    first = sync.step(SERVICE)
    done = checkpoint(memory_services)
    assert first.stopped == "budget" and len(arm.hits("/users/ghost-")) == 3
    assert done.phase == "tombstones" and done.after is None and done.resume_at is not None  # within the first page
    assert first.by_kind["user"]["tombstoned"] == 3
    while not (report := sync.step(SERVICE)).finished:
        assert report.stopped == "budget" and report.invocations < 10
    assert report.invocations == 3 and report.by_kind["user"]["tombstoned"] == 8  # 3 + 3 + 2 GETs
    ghosts = sorted(r.path for r in arm.hits("/users/ghost-"))
    assert ghosts == sorted(f"{SERVICE_ID}/users/ghost-{n}" for n in range(8))  # each asked once, none again on resume
    assert all(row(memory_services, f"users/ghost-{n}")["IsDeleted"] for n in range(8))


def test_the_tombstone_pass_paces_itself_before_each_get(memory_services: bootstrap.Services, arm: ArmStandIn,
                                                         clock: ManualClock) -> None:
    sync = syncer(memory_services)
    sync.budget = 3600
    assert sync.step(SERVICE).finished
    listing = len([r for r in arm.requests if "/msi/" not in r.path])  # the reads of one listing
    pauses: list[float] = []
    sync.reads_reserve, sync.sleep = 20, pauses.append
    deliver([event("UserCreated", f"/users/late-{n}", at=100 + n) for n in range(6)])  # candidates ARM does not have
    clock.advance(hours=12)
    arm.throttle(bucket=listing + 4, refill=0.001)  # 4 reads left after the listing, hardly refilling
    report = sync.step(SERVICE)
    # The first GET leaves 3 (a pause before the next), the second 2: a tenth of the reserve, so it stops before a third.
    assert report.stopped == "throttled" and len(arm.hits("/users/late-")) == 2 and arm.retry_afters == []
    assert pauses[-1] == pytest.approx((20 - 3) / 25) and checkpoint(memory_services).phase == "tombstones"
    arm.throttle(bucket=1000, refill=100.0)
    assert sync.step(SERVICE).finished
    assert sorted(r.path for r in arm.hits("/users/late-")) == [f"{SERVICE_ID}/users/late-{n}" for n in range(6)]  # once each


def test_the_tombstone_pass_lists_a_gateways_api_links_once(memory_services: bootstrap.Services, arm: ArmStandIn,
                                                            clock: ManualClock) -> None:
    links = [f"/gateways/edge/apis/ghost-{n}" for n in range(5)]
    deliver([event("GatewayAPIAdded", link, at=n) for n, link in enumerate(links)])  # links ARM does not have
    clock.advance(minutes=1)
    sync = syncer(memory_services)
    sync.budget = 3600
    report = sync.sync(SERVICE)
    assert report.finished and report.by_kind["gatewayApi"]["tombstoned"] == 5
    listings = [r for r in arm.hits("/gateways/edge/apis") if r.path.lower().endswith("/gateways/edge/apis")]
    assert len(listings) == 2  # the sync's own listing, and the tombstone pass's one check
    assert not row(memory_services, "gateways/edge/apis/orders")["IsDeleted"]


def test_links_whose_list_cannot_be_read_are_kept_unconfirmed_not_counted_unchanged(
        memory_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    links = [f"/gateways/edge/apis/ghost-{n}" for n in range(3)]
    deliver([event("GatewayAPIAdded", link, at=n) for n, link in enumerate(links)])  # links ARM does not have
    clock.advance(minutes=1)

    def break_the_check(path: str, offset: int) -> None:  # the sync's listing is served; the tombstone pass's check fails
        if path.lower().endswith("/gateways/edge/apis"):
            arm.fail("/gateways/edge/apis", 400)
    arm.after_page = break_the_check
    sync = syncer(memory_services)
    sync.budget = 3600
    report = sync.sync(SERVICE)
    assert report.finished and report.by_kind["gatewayApi"]["tombstoned"] == 0
    assert (report.unconfirmed, report.kept, report.by_kind["gatewayApi"]["unchanged"]) == (3, 0, 0)
    assert not any(row(memory_services, link.lstrip("/"))["IsDeleted"] for link in links)
    text = caplog.text
    assert "could not confirm that gateways/edge/apis/ghost-0 is gone" in text and "pages shifted" not in text
    arm.after_page = None
    clock.advance(hours=6)
    again = sync.sync(SERVICE)
    assert again.by_kind["gatewayApi"]["tombstoned"] == 3 and again.unconfirmed == 0


@pytest.mark.unit
def test_a_pages_stored_rows_cost_what_the_page_holds_in_any_order() -> None:
    """ARM documents no order for a listing: the range from a page's lowest to its highest name in a partition may hold
    the whole partition. It is read only while it returns at most RANGE_SPREAD rows per name looked for; the names past
    that point are read one by one. Names in order cost one range read."""
    from devtools.worker import decode_event
    from shared.domain.resources import parse_path
    from shared.management.listing_pass import RANGE_SPREAD, stored_rows
    from shared.store.keys import bucket, resource_keys
    from shared.store.ports import Query, Table

    class Counting(InMemoryStore):
        requests = returned = 0

        def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
            self.requests += 1
            found = super().get(table, partition_key, row_key)
            self.returned += found is not None
            return found

        def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
            for page in super().scan(query, page_size, select):
                self.requests += 1
                self.returned += len(page)
                yield page

    store = Counting()
    names = sorted(n for n in (f"user-{i:05d}" for i in range(4000)) if bucket(n) == 3)  # one partition's users
    processor = bootstrap.in_memory(store=store).processor
    for n, name in enumerate(names):
        processor.handle(decode_event(event("UserCreated", f"/users/{name}", at=n)))
    keys = sorted(resource_keys(parse_path(SERVICE, f"users/{name}")) for name in names)
    absent = (keys[0][0], "users|absent")

    store.requests = store.returned = 0
    spread = {k for n, k in enumerate(keys) if n % 50 == 0} | {absent}  # from the first row to the last
    assert set(stored_rows(store, spread)) == spread - {absent}
    assert len(keys) > 200 and store.returned <= RANGE_SPREAD * len(spread) + len(spread) and store.requests <= 2 + len(spread)

    store.requests = store.returned = 0
    together = set(keys[100:120])  # a page listed in name order: one range, no point read
    assert set(stored_rows(store, together)) == together and store.requests == 1 and store.returned == 20
