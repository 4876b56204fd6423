"""Full sync and the reconcile timer: the real ARM client against the stand-in management plane,
with nextLink paging, faults and secrets, reconciled into Azurite (and into the in-memory repository,
which enforces If-Match inside transactions as Azure does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import SECRET, user
from devtools.worker import deliver, fire_timer
from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import InvalidSettings, WriteConflict
from shared.domain.model import new_row
from shared.domain.resources import parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.integrations.trigger import decode_event
from shared.management.sync import InventorySync, SyncReport
from shared.store.keys import with_keys
from shared.store.memory import InMemoryStore
from shared.store.ports import PartitionWrite, RowChange, StoredRow, Table
from shared.store.table import TableStore
from tests.conftest import table_repo
from tests.support import SERVICE_ID, ManualClock, count_rows, dumps, event, history_records, inventory_rows
from tests.test_enrichment import row
from tests.test_health import health

SERVICE = parse_service_id(SERVICE_ID)
LISTED = {"user": 2, "api": 3, "apiRelease": 1, "product": 1, "subscription": 1, "gateway": 1, "gatewayApi": 1,
          "gatewayHostnameConfiguration": 1, "gatewayCertificateAuthority": 1, "backend": 1, "circuitBreakerRule": 1}


def syncer(services: bootstrap.Services) -> InventorySync:
    assert services.reconciler.syncer is not None
    return services.reconciler.syncer


def by_kind(report: SyncReport, outcome: str) -> dict[str, int]:
    return {kind: counts[outcome] for kind, counts in report.by_kind.items() if counts[outcome]}


def test_sync_of_an_empty_inventory_adds_every_kind_with_its_details(arm_services: bootstrap.Services, arm: ArmStandIn,
                                                                     clock: ManualClock) -> None:
    report = syncer(arm_services).sync(SERVICE)
    assert report.incomplete == {} and by_kind(report, "added") == LISTED and report.listed == sum(LISTED.values())
    assert any("$skiptoken" in {k.lower() for k in r.query} for r in arm.requests)  # listings went past page one
    assert row(arm_services, "apis/orders;rev=2")["IsCurrent"] is True and row(arm_services, "apis/orders;rev=1")["IsCurrent"] is False
    assert row(arm_services, "gateways/edge/apis/orders")["DisplayName"] == "Orders API"
    assert row(arm_services, "backends/payments/circuit-breaker/rules/r5xx")["ConfiguredTripDuration"] == "00:01:00"
    alice = row(arm_services, "users/alice")
    assert (alice["Email"], alice["LastEventType"], alice["LastEventTime"]) == ("alice@contoso.example", "ApimInventory.Synced", report.started_at)
    repo = arm_services.store
    assert isinstance(repo, TableStore)
    assert all(SECRET not in str(value) for entity in inventory_rows(repo) for value in entity.values())
    records = history_records(repo)  # what the sync did, one record per row it added; nothing personal in them
    assert {r["EventType"] for r in records} == {"ApimInventory.Synced"} and len(records) == report.listed
    assert all(SECRET not in str(v) and "@contoso.example" not in str(v) for r in records for v in r.values())
    assert json.loads(next(r for r in records if r["PathKey"] == "users/alice")["Values"])["Email"] == "changed"

    again = syncer(arm_services).sync(SERVICE)
    assert dict(again.counts) == {"unchanged": report.listed}
    clock.advance(hours=6)  # the next scheduled sync: nothing changed, so nothing is written
    later = syncer(arm_services).sync(SERVICE)
    assert dict(later.counts) == {"unchanged": report.listed} and row(arm_services, "users/alice")["LastEventTime"] == report.started_at


def test_sync_updates_what_changed_and_tombstones_what_arm_no_longer_has(
        arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    deliver([event("UserCreated", "/users/carol", at=0), event("UserDeleted", "/users/bob", at=1),
             event("APICreated", "/apis/legacy;rev=1", at=2), event("GatewayCreated", "/gateways/old", at=3),
             event("GatewayTokenNearExpiry", "/gateways/old/pod-1", at=4), event("ProductCreated", at=5)])
    arm.put(f"{SERVICE_ID}/products/starter", {"displayName": "Starter (renamed)", "state": "notPublished"})
    clock.advance(minutes=1)
    report = syncer(arm_services).sync(SERVICE)

    assert by_kind(report, "tombstoned") == {"user": 1, "api": 1, "gateway": 1, "gatewayInstance": 1}
    assert report.by_kind["product"]["updated"] == 1 and report.by_kind["user"]["added"] == 2  # bob is back, alice is new
    carol, pod = row(arm_services, "users/carol"), row(arm_services, "gateways/old/instances/pod-1")
    assert carol["IsDeleted"] and carol["LastEventType"] == "ApimInventory.SyncTombstoned" and carol["DeletedAt"] == report.started_at
    assert pod["IsDeleted"] and pod["LastEventType"].endswith("GatewayDeleted")  # the gateway's tombstone, cascaded
    assert not row(arm_services, "users/bob")["IsDeleted"]
    product = row(arm_services, "products/starter")
    assert (product["DisplayName"], product["ProductState"]) == ("Starter (renamed)", "notPublished") and "Terms" not in product
    # An event older than the listing does not undo what the listing saw.
    deliver([event("UserCreated", "/users/carol", at=50)])
    assert row(arm_services, "users/carol")["IsDeleted"]


def test_updated_at_moves_only_on_the_rows_a_sync_changes(arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    repo = arm_services.store
    assert isinstance(repo, TableStore)
    first = syncer(arm_services).sync(SERVICE)
    added = list(inventory_rows(repo))
    assert {r["Kind"] for r in added} == set(LISTED) and {r["UpdatedAt"] for r in added} == {first.started_at}
    assert not any("CreatedAt" in r for r in added)  # only a Created event says when a resource was created

    clock.advance(hours=6)
    arm.put(f"{SERVICE_ID}/users/alice", user("alice", "alice@new.example"))
    bob, _ = repo.load(parse_path(SERVICE, "users/bob"), fresh=True)
    assert bob is not None  # as a version that kept UpdatedAt on fewer rows left it: live, without one
    repo.put(Table.INVENTORY, {k: v for k, v in bob.entity.items() if k != "UpdatedAt"}, bob.etag)
    second = syncer(arm_services).sync(SERVICE)
    assert dict(second.counts) == {"updated": 2, "unchanged": first.listed - 2}
    assert row(arm_services, "users/alice")["UpdatedAt"] == second.started_at  # her details changed
    assert row(arm_services, "users/bob")["UpdatedAt"] == second.started_at
    assert row(arm_services, "apis/orders")["UpdatedAt"] == first.started_at  # seen as it was


def test_a_kind_not_listed_completely_is_never_tombstoned(arm_services: bootstrap.Services, arm: ArmStandIn) -> None:
    deliver([event("UserCreated", "/users/carol", at=0), event("ProductCreated", "/products/gone", at=1)])
    arm.fail("/users", 500, times=10)
    report = syncer(arm_services).sync(SERVICE)
    assert set(report.incomplete) == {"user"} and "500" in report.incomplete["user"]
    assert not row(arm_services, "users/carol")["IsDeleted"] and row(arm_services, "products/gone")["IsDeleted"]
    assert report.by_kind["product"]["added"] == 1


def _event_during_sync(services: bootstrap.Services, clock: ManualClock, payload: dict[str, Any]) -> SyncReport:
    """Run a sync that receives `payload` after reading the inventory and before writing it."""
    phases: Counter[str] = Counter()

    def note(phase: str, done: int, total: int | None) -> None:
        phases[phase] += 1
        if phase == "write" and done == 0:
            clock.advance(seconds=1)
            services.processor.handle(decode_event(dumps(payload)))

    report = syncer(services).sync(SERVICE, note)
    assert phases["write"] >= 1
    return report


@pytest.mark.parametrize("transactions", [True, False], ids=["transactions", "single-entity"])
def test_an_event_during_a_sync_wins_on_azurite(arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock,
                                                transactions: bool) -> None:
    syncer(arm_services).sync(SERVICE)
    syncer(arm_services).transactions = transactions
    arm.put(f"{SERVICE_ID}/users/alice", user("alice", "alice@new.example"))  # the sync will want to write alice
    clock.advance(minutes=5)
    deleted = event("UserDeleted", "/users/alice", at=clock.now() + timedelta(seconds=1))
    report = _event_during_sync(arm_services, clock, deleted)
    # Her write, planned from the row read before the event, failed on its ETag (the whole transaction, or
    # the single write); read again, her row was newer than the listing, so the sync left it alone.
    assert report.by_kind["user"]["skipped"] == 1 and report.by_kind["user"]["unchanged"] == 1
    alice = row(arm_services, "users/alice")
    assert alice["IsDeleted"] and alice["LastEventId"] == deleted["id"] and "Email" not in alice


def test_azurite_enforces_if_match_inside_a_transaction(azurite: Azurite) -> None:
    """What the sync's guard and the event's one transaction rely on, as Azure documents it: one stale ETag fails
    the whole transaction (the rows and the count row)."""
    repo = table_repo(azurite)
    api, revision = parse_path(SERVICE, "apis/a"), parse_path(SERVICE, "apis/a;rev=2")  # one partition
    first, second = with_keys(api, new_row(api)), with_keys(revision, new_row(revision))
    repo.commit(PartitionWrite(api, (RowChange(first, None), RowChange(second, None))))
    (stale_a, _), (stale_b, _) = repo.load(api, fresh=True), repo.load(revision, fresh=True)
    assert stale_a is not None and stale_b is not None
    repo.commit(PartitionWrite(api, (RowChange({**second, "Changed": True}, stale_b),)))
    with pytest.raises(WriteConflict):
        repo.commit(PartitionWrite(api, (RowChange({**first, "V": 2}, stale_a), RowChange({**second, "V": 2}, stale_b))))
    (now_a, _), (now_b, _) = repo.load(api, fresh=True), repo.load(revision, fresh=True)
    assert now_a is not None and now_b is not None
    assert "V" not in now_a.entity and now_b.entity.get("Changed") is True and "V" not in now_b.entity
    (counts,) = count_rows(repo)
    assert counts["Live_api"] == 2  # the failed transaction moved nothing


def test_an_event_during_a_sync_wins_inside_transactions(arm_settings: Settings, clock: ManualClock, arm: ArmStandIn) -> None:
    batches: list[PartitionWrite] = []

    class Recording(InMemoryStore):
        def commit(self, write: PartitionWrite) -> list[StoredRow]:
            if len(write.rows) > 1:
                batches.append(write)
            return super().commit(write)

    arm.put_many((f"{SERVICE_ID}/users/u{n:04d}", user(n)) for n in range(1700))  # > 100 rows in some partitions
    repo = Recording()
    arm_settings = replace(arm_settings, enrich_from_arm=False)  # the sync alone: no event reads ARM
    services = bootstrap.wire(repo, arm_settings, LoggingAlertPublisher(), clock.now, bootstrap.arm_client(arm_settings))
    arm.page_size = 2000  # one page: over 100 rows of some partitions in it, so some transactions are full
    first = syncer(services).sync(SERVICE)
    assert first.counts["added"] == 1700 + sum(LISTED.values())
    assert all(len({c.entity["PartitionKey"] for c in b.rows}) == 1 and len(b.rows) + len(b.notes) < 100 for b in batches)
    assert max(len(b.rows) for b in batches) == 49 and all(len(b.notes) == len(b.rows) for b in batches)

    arm.put(f"{SERVICE_ID}/users/alice", user("alice", "alice@new.example"))
    clock.advance(minutes=5)
    updated = event("UserUpdated", "/users/alice", at=clock.now() + timedelta(seconds=1))
    report = _event_during_sync(services, clock, updated)
    assert report.by_kind["user"]["skipped"] == 1
    alice = row(services, "users/alice")
    # The event came after the listing began: the transaction holding alice failed on her ETag and
    # her row was read again; the sync's older view of her was not written over the event.
    assert alice["LastEventId"] == updated["id"] and alice["Email"] == "alice@contoso.example"


def test_a_row_created_by_an_event_during_the_sync_is_not_overwritten(arm_services: bootstrap.Services, clock: ManualClock) -> None:
    created = event("UserCreated", "/users/alice", at=clock.now() + timedelta(seconds=1))
    _event_during_sync(arm_services, clock, created)  # the sync's insert of alice meets the event's row: 409
    alice = row(arm_services, "users/alice")
    assert alice["LastEventId"] == created["id"] and not alice["IsDeleted"]
    assert row(arm_services, "users/bob")["LastEventType"] == "ApimInventory.Synced"


def test_reconcile_timer_syncs_the_configured_services(arm_settings: Settings, arm: ArmStandIn, clock: ManualClock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_SERVICES", f" {SERVICE_ID} ")
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    try:
        fire_timer("reconcile")
        assert row(bootstrap.services(), "subscriptions/sub1")["OwnerId"].endswith("/users/alice")
        first = clock.now()
        clock.advance(hours=6)
        arm.fail("/gateways", 503, times=10)
        with pytest.raises(Exception, match="not listed completely: gateway"):
            fire_timer("reconcile")
        # GET /api/health tells a sync that ran from one that listed everything.
        status, body = health()
        (contoso,) = [s for s in body["services"] if s["service"] == "contoso"]
        assert status == 200 and contoso["lastSyncAt"] == iso_z(clock.now()) and contoso["lastCompleteSyncAt"] == iso_z(first)
    finally:
        bootstrap.install(None)


def iso_z(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


@pytest.mark.unit
def test_bad_reconcile_services_are_refused_at_startup() -> None:
    with pytest.raises(InvalidSettings, match="RECONCILE_SERVICES"):
        Settings.from_env({"RECONCILE_SERVICES": "/subscriptions/x/resourceGroups/y"})


COMMAND = Path(sys.executable).parent / "apim-inventory"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "ARM_", "IDENTITY_", "ENRICH_"))}
    return subprocess.run([str(COMMAND), *args], capture_output=True, encoding="utf-8", env={**clean, **env},
                          timeout=120, check=False, cwd=Path(__file__).parent)


@pytest.mark.slow  # the console script, as a subprocess
def test_sync_command(arm_settings: Settings, arm: ArmStandIn, app_settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("INVENTORY_", "ARM_", "IDENTITY_"))}
    result = run_cli(env, "sync", "--service", SERVICE_ID, "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["counts"]["added"] == sum(LISTED.values()) and document["incomplete"] == {}
    assert document["byKind"]["user"] == {"added": 2}
    listing = run_cli(env, "list", "user").stdout.splitlines()
    assert listing[0].split()[:6] == ["Service", "Kind", "Path", "State", "Email", "UserState"]
    assert "alice@contoso.example" in listing[2] and listing[2].split()[3:6] == ["live", "alice@contoso.example", "active"]

    arm.fail(f"{SERVICE_ID}/subscriptions", 500, times=10)
    result = run_cli(env, "sync", "--service", SERVICE_ID)
    assert result.returncode == 1 and "no row of these was tombstoned (subscription: ARM 500 InternalServerError" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Kind", "Added", "Updated", "Tombstoned", "Unchanged", "Skipped", "Listed"]
    assert [line.split() for line in lines if line.startswith("subscription")] == [["subscription", "0", "0", "0", "0", "0", "no"]]
    assert lines[-1].split() == ["total", "0", "0", "0", str(sum(LISTED.values()) - LISTED["subscription"]), "0", "no"]  # sub1 kept, not "unchanged"

    no_token = run_cli({**env, "IDENTITY_HEADER": "wrong"}, "sync", "--service", SERVICE_ID)
    assert no_token.returncode == 1 and no_token.stdout == "" and len(no_token.stderr.splitlines()) == 1
    assert "managed identity" in no_token.stderr.lower() or "authentication" in no_token.stderr.lower(), no_token.stderr

    bad = run_cli(env, "sync", "--service", "/subscriptions/x")
    assert bad.returncode == 2 and "not an APIM service id" in bad.stderr


def test_a_sync_logs_one_structured_line(arm_services: bootstrap.Services, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="apim_inventory"):
        report = syncer(arm_services).sync(SERVICE)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("apim_inventory.sync ")]
    assert len(lines) == 1
    fields = json.loads(lines[0].split(" ", 1)[1])
    assert fields["service"] == "contoso" and fields["added"] == report.counts["added"] == sum(LISTED.values())
    assert fields["incomplete"] == [] and fields["listed"] == report.listed
