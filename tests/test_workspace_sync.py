"""The full sync of a service with workspaces: the real ARM client against the stand-in, reconciled into Azurite.
A workspace's collections are listed like the service's; its deletion on the management plane tombstones it and,
by its cascade across families, everything in it; a cascade cut short is finished by the next sync."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.management_plane import workspace_contents
from devtools.worker import deliver
from shared import bootstrap
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import parse_path
from shared.integrations.arm import ArmNotFound
from shared.management.checkpoint import Held, acquire
from shared.management.sync import SyncReport
from shared.store import workspace_cascade
from shared.store.table import TableStore
from tests.support import SERVICE_ID, ManualClock, event, history_records, inventory_rows
from tests.test_enrichment import row
from tests.test_sync import LISTED, SERVICE, by_kind, syncer

# What workspace_contents puts in one workspace, by kind (the API's current revision is also listed under its plain name).
IN_ONE = {"workspace": 1, "api": 3, "apiRelease": 1, "product": 1, "productApi": 1, "productGroup": 1, "subscription": 1,
          "backend": 1, "circuitBreakerRule": 1}
WORKSPACES = {"billing": "invoices", "shipping": "orders"}  # shipping's API has the name of a service-level API


@pytest.fixture
def workspaces(arm: ArmStandIn) -> ArmStandIn:
    for name, api in WORKSPACES.items():
        arm.put_many(workspace_contents(SERVICE_ID, name, api))
    return arm


def store_of(services: bootstrap.Services) -> TableStore:
    assert isinstance(services.store, TableStore)
    return services.store


def rows_by_path(services: bootstrap.Services) -> dict[str, dict[str, Any]]:
    return {str(r["Path"]): r for r in inventory_rows(store_of(services))}


def in_workspace(rows: dict[str, dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    return {path: r for path, r in rows.items() if path == f"workspaces/{name}" or path.startswith(f"workspaces/{name}/")}


def expected_added() -> dict[str, int]:
    added = Counter(LISTED)
    for _ in WORKSPACES:
        added.update(IN_ONE)
    return dict(added)


def test_a_sync_lists_every_workspace_and_its_collections(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                          clock: ManualClock) -> None:
    report = syncer(arm_services).sync(SERVICE)
    assert report.incomplete == {} and by_kind(report, "added") == expected_added()
    rows = rows_by_path(arm_services)
    for name, api in WORKSPACES.items():
        mine = in_workspace(rows, name)
        assert Counter(r["Kind"] for r in mine.values()) == IN_ONE and {r["Workspace"] for r in mine.values()} == {name}
        assert all(r["ResourceId"] == f"{SERVICE_ID}/{path}" and not r["IsDeleted"] for path, r in mine.items())
        ws = f"{SERVICE_ID}/workspaces/{name}"
        assert rows[f"workspaces/{name}"]["DisplayName"] == f"{name.title()} team"
        assert rows[f"workspaces/{name}/apis/{api};rev=2"]["IsCurrent"] is True
        link = rows[f"workspaces/{name}/products/{name}-product/apiLinks/{api}-link"]
        assert (link["Kind"], link["LinkedApiId"]) == ("productApi", f"{ws}/apis/{api}")
        group = rows[f"workspaces/{name}/products/{name}-product/groupLinks/{name}-developers-link"]
        assert (group["Kind"], group["LinkedGroupId"]) == ("productGroup", f"{ws}/groups/{name}-developers")
        sub = rows[f"workspaces/{name}/subscriptions/{name}-sub"]
        assert (sub["Scope"], sub["OwnerId"]) == (f"{ws}/products/{name}-product", f"{SERVICE_ID}/users/alice")
        rule = rows[f"workspaces/{name}/backends/{name}-backend/circuit-breaker/rules/r5xx"]
        assert rule["Workspace"] == name and rule["ConfiguredTripDuration"] == "00:01:00"
    assert all(r["Workspace"] == "" for path, r in rows.items() if not path.startswith("workspaces/") or (path.count("/") == 1
               and r["Kind"] != "workspace"))
    # The service's apis/orders and shipping's apis/orders: two rows, each of its own.
    assert rows["apis/orders"]["ResourceId"] == f"{SERVICE_ID}/apis/orders" and rows["apis/orders"]["Workspace"] == ""
    assert rows["workspaces/shipping/apis/orders"]["ResourceId"] == f"{SERVICE_ID}/workspaces/shipping/apis/orders"

    writes = len(history_records(store_of(arm_services)))
    clock.advance(hours=6)
    again = syncer(arm_services).sync(SERVICE)
    assert dict(again.counts) == {"unchanged": report.listed} and len(history_records(store_of(arm_services))) == writes
    assert rows_by_path(arm_services) == rows  # a second sync writes nothing


def test_a_workspace_deleted_on_the_management_plane_is_tombstoned_with_all_it_holds(
        arm_services: bootstrap.Services, workspaces: ArmStandIn, clock: ManualClock) -> None:
    syncer(arm_services).sync(SERVICE)
    before = rows_by_path(arm_services)
    workspaces.delete(f"{SERVICE_ID}/workspaces/billing")
    earlier = len(workspaces.hits("/workspaces/billing"))
    clock.advance(hours=6)
    report = syncer(arm_services).sync(SERVICE)
    assert report.incomplete == {} and by_kind(report, "tombstoned") == IN_ONE
    rows = rows_by_path(arm_services)
    gone = in_workspace(rows, "billing")
    assert len(gone) == sum(IN_ONE.values()) and all(r["IsDeleted"] for r in gone.values())
    assert {r["DeletedAt"] for r in gone.values()} == {report.started_at}  # the workspace's deletion, given to each
    assert rows["workspaces/billing"][workspace_cascade.CASCADED] == rows["workspaces/billing"]["LastDeleteEventKey"]
    kept = {p: r for p, r in rows.items() if p not in gone}
    assert kept == {p: r for p, r in before.items() if p not in gone}  # the other workspace and the service untouched
    # Only the workspace was asked about: its contents followed it, by the cascade, not by a GET each.
    asked = [r.path for r in workspaces.hits("/workspaces/billing")[earlier:]]
    assert asked == [f"{SERVICE_ID}/workspaces/billing"]

    clock.advance(hours=6)
    later = syncer(arm_services).sync(SERVICE)
    assert "tombstoned" not in later.counts and "added" not in later.counts and rows_by_path(arm_services) == rows


def test_a_cascade_cut_short_is_finished_by_the_next_sync(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                          clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    workspaces.delete(f"{SERVICE_ID}/workspaces/billing")
    clock.advance(hours=6)
    writer = sync._writer
    real = writer.apply_batch
    calls: list[int] = []

    def fail_after_one(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("the storage account went away mid-cascade")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "apply_batch", fail_after_one)
    with pytest.raises(OSError, match="mid-cascade"):
        sync.sync(SERVICE)
    monkeypatch.undo()
    cut = in_workspace(rows_by_path(arm_services), "billing")
    assert cut["workspaces/billing"]["IsDeleted"] and workspace_cascade.unfinished(cut["workspaces/billing"])
    assert 0 < sum(r["IsDeleted"] for r in cut.values()) < len(cut)  # some of its rows, not all

    clock.advance(minutes=3)  # the crashed invocation's lease expires
    report = sync.sync(SERVICE)
    assert report.finished and report.invocations == 2
    done = in_workspace(rows_by_path(arm_services), "billing")
    assert all(r["IsDeleted"] for r in done.values()) and not workspace_cascade.unfinished(done["workspaces/billing"])
    assert not any(r["IsDeleted"] for p, r in rows_by_path(arm_services).items() if p.startswith("workspaces/shipping"))


def crowd(arm: ArmStandIn, workspace: str, n: int) -> None:
    """`n` more subscriptions in a workspace: its rows then spread over most of the subscription family's partitions."""
    ws = f"{SERVICE_ID}/workspaces/{workspace}"
    arm.put_many((f"{ws}/subscriptions/{workspace}-many-{i:03}",
                  {"displayName": f"Many {i}", "scope": f"{ws}/products/{workspace}-product", "ownerId": f"{SERVICE_ID}/users/bob",
                   "state": "active"}) for i in range(n))
    arm.page_size = 100  # the first sync lists them in a few pages


def cascade_writes(writer: Any, monkeypatch: pytest.MonkeyPatch, after: Any) -> None:
    """`after(applied)` called after each of the cascade's transactions (`apply_batch`), with what it applied."""
    real = writer.apply_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        applied = real(*args, **kwargs)
        after(applied)
        return applied

    monkeypatch.setattr(writer, "apply_batch", watched)


def test_a_large_workspace_is_cascaded_over_invocations_that_each_stop_within_their_budget(
        arm_services: bootstrap.Services, workspaces: ArmStandIn, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invocation stops once its budget is spent, between two of the cascade's transactions (after one at least,
    so that each moves it on); the next goes on from the workspace's row, `unfinished`, and the last leaves every row
    in the workspace tombstoned, each counted once."""
    many = 48
    crowd(workspaces, "billing", many)
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    workspaces.delete(f"{SERVICE_ID}/workspaces/billing")
    clock.advance(hours=6)
    steps: list[SyncReport] = []
    written: Counter[int] = Counter()  # the cascade's transactions that wrote rows, by invocation
    cascade_writes(sync._writer, monkeypatch, lambda applied: written.update([len(steps)] if any(a.changed for a in applied) else []))
    cut_short = 0
    while not (steps and steps[-1].finished):
        steps.append(sync.step(SERVICE, budget=0))
        cut_short += written[len(steps) - 1] > 0 and workspace_cascade.unfinished(rows_by_path(arm_services)["workspaces/billing"])
        clock.advance(seconds=1)
        assert len(steps) < 300
    report = steps[-1]
    assert all(s.stopped == "budget" for s in steps[:-1]) and report.incomplete == {}
    assert len(written) > 5 and set(written.values()) == {1}  # one transaction of the cascade an invocation
    assert cut_short == len(written) - 1  # the cascade left unfinished by every invocation but its last
    rows = rows_by_path(arm_services)
    billing = in_workspace(rows, "billing")
    assert len(billing) == sum(IN_ONE.values()) + many and all(r["IsDeleted"] for r in billing.values())
    assert not workspace_cascade.unfinished(billing["workspaces/billing"])
    assert {r["DeletedAt"] for r in billing.values()} == {report.started_at}
    assert by_kind(report, "tombstoned") == {**IN_ONE, "subscription": IN_ONE["subscription"] + many}
    assert report.by_kind["workspace"]["unchanged"] == 1  # shipping's: billing's row, tombstoned, is not counted again
    assert not any(r["IsDeleted"] for r in in_workspace(rows, "shipping").values())


def test_a_lost_lease_stops_a_workspace_cascade_before_its_next_transaction(
        arm_services: bootstrap.Services, workspaces: ArmStandIn, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    crowd(workspaces, "billing", 48)
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    workspaces.delete(f"{SERVICE_ID}/workspaces/billing")
    clock.advance(hours=6)
    taken: list[Held] = []
    late: list[int] = []  # the cascade's transactions after the lease was taken over

    def take_over(applied: list[Any]) -> None:
        if taken:
            late.append(len(applied))
        elif any(a.changed for a in applied):
            clock.advance(minutes=3)  # the invocation's lease expires, and another invocation takes the sync over
            held = acquire(store_of(arm_services), SERVICE, clock.now())
            assert isinstance(held, Held)
            taken.append(held)

    cascade_writes(sync._writer, monkeypatch, take_over)
    report = sync.step(SERVICE)
    monkeypatch.undo()
    assert report.stopped == "lease-lost" and not report.finished
    assert taken and late == []
    cut = in_workspace(rows_by_path(arm_services), "billing")
    assert workspace_cascade.unfinished(cut["workspaces/billing"]) and 1 < sum(r["IsDeleted"] for r in cut.values()) < len(cut)

    taken[0].release(clock.now())  # the invocation that took it over ends; the next one finishes the cascade
    again = sync.sync(SERVICE)
    assert again.finished
    done = in_workspace(rows_by_path(arm_services), "billing")
    assert all(r["IsDeleted"] for r in done.values()) and not workspace_cascade.unfinished(done["workspaces/billing"])


def test_a_deleted_workspace_left_uncascaded_is_cascaded_by_a_sync(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                                   clock: ManualClock) -> None:
    """As the event path leaves it when it stops between the workspace's row and its cascade: the next sync finishes it,
    from the workspace family's rows alone (a few), not from a listing of the workspace."""
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    ref = parse_path(SERVICE, "workspaces/shipping")
    clock.advance(minutes=5)
    deleted_at = clock.now()
    sync._writer.apply(ref, [Change(ref, Op.DELETED, Stamp(deleted_at, "workspace-deleted"), "Microsoft.ApiManagement.WorkspaceDeleted")])
    workspaces.delete(f"{SERVICE_ID}/workspaces/shipping")
    left = in_workspace(rows_by_path(arm_services), "shipping")
    assert workspace_cascade.unfinished(left["workspaces/shipping"]) and sum(r["IsDeleted"] for r in left.values()) == 1

    clock.advance(hours=6)
    report = sync.sync(SERVICE)
    rows = rows_by_path(arm_services)
    done = in_workspace(rows, "shipping")
    assert all(r["IsDeleted"] and r["DeletedAt"] == deleted_at for r in done.values())  # the workspace's own deletion
    assert by_kind(report, "tombstoned") == {k: n for k, n in IN_ONE.items() if k != "workspace"}
    assert not rows["apis/orders"]["IsDeleted"] and not rows["apis/orders;rev=2"]["IsDeleted"]  # the service's own orders


def test_the_service_and_a_workspace_api_of_one_name_stay_two_rows(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                                    clock: ManualClock) -> None:
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    for path in ("apis/orders", "apis/orders;rev=1", "apis/orders/releases/r1"):
        workspaces.delete(f"{SERVICE_ID}/{path}")
    clock.advance(hours=1)
    first = sync.sync(SERVICE)
    assert by_kind(first, "tombstoned") == {"api": 3, "apiRelease": 1}
    rows = rows_by_path(arm_services)
    assert rows["apis/orders"]["IsDeleted"] and rows["apis/orders;rev=2"]["IsDeleted"]
    assert not any(r["IsDeleted"] for p, r in rows.items() if p.startswith("workspaces/shipping/apis/orders"))

    workspaces.put_many(item for item in [(f"{SERVICE_ID}/apis/orders", {"displayName": "Orders API", "path": "orders"})])
    for path in ("apis/orders;rev=1", "apis/orders/releases/shipping-r1", "apis/orders"):
        workspaces.delete(f"{SERVICE_ID}/workspaces/shipping/{path}")
    clock.advance(hours=1)
    second = sync.sync(SERVICE)
    assert by_kind(second, "tombstoned") == {"api": 3, "apiRelease": 1} and by_kind(second, "added") == {"api": 1}
    rows = rows_by_path(arm_services)
    assert not rows["apis/orders"]["IsDeleted"] and rows["workspaces/shipping/apis/orders"]["IsDeleted"]
    assert rows["workspaces/shipping/apis/orders;rev=2"]["IsDeleted"] and not rows["workspaces/shipping"]["IsDeleted"]


def test_a_sync_with_workspaces_resumes_from_its_checkpoint(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                            clock: ManualClock) -> None:
    sync = syncer(arm_services)
    steps: list[SyncReport] = []
    while not (steps and steps[-1].finished):
        steps.append(sync.step(SERVICE, budget=0))  # one page (one item) an invocation
        clock.advance(seconds=1)
        assert len(steps) < 500
    report = steps[-1]
    assert all(s.stopped == "budget" for s in steps[:-1]) and report.invocations == len(steps) > sum(expected_added().values())
    assert by_kind(report, "added") == expected_added() and report.incomplete == {}
    # Each collection was listed once: a workspace's listing was not started again by a later invocation.
    for name in WORKSPACES:
        firsts = [r for r in workspaces.hits(f"/workspaces/{name}/apis") if not any(k.lower() == "$skiptoken" for k in r.query)]
        assert len(firsts) == 1 + 1  # the workspace's apis, and the current API's releases

    workspaces.delete(f"{SERVICE_ID}/workspaces/shipping")
    clock.advance(hours=6)
    steps = []
    while not (steps and steps[-1].finished):
        steps.append(sync.step(SERVICE, budget=0))
        clock.advance(seconds=1)
        assert len(steps) < 500
    assert by_kind(steps[-1], "tombstoned") == IN_ONE and len(steps) > 1
    rows = rows_by_path(arm_services)
    assert all(r["IsDeleted"] for r in in_workspace(rows, "shipping").values())
    assert not any(r["IsDeleted"] for r in in_workspace(rows, "billing").values())



def test_events_on_workspace_resources_are_enriched_from_the_workspace(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                                        clock: ManualClock) -> None:
    """Enrichment reads the resource the event names, under its workspace: a product's API links from `apiLinks`,
    a backend's rules into the workspace's rows."""
    ws = f"{SERVICE_ID}/workspaces/billing"
    deliver([event("ProductUpdated", "/workspaces/billing/products/billing-product", at=clock.now()),
             event("CircuitBreaker.Opened", "/workspaces/billing/backends/billing-backend/circuit-breaker/rules/r5xx", at=clock.now(),
                   data={"backendName": "billing-backend", "circuitBreaker": {"rules": {"r5xx": {"tripDuration": "00:05:00"}}}}),
             event("APIUpdated", "/workspaces/billing/apis/invoices", at=clock.now())])
    product = row(arm_services, "workspaces/billing/products/billing-product")
    assert product["DisplayName"] == "Billing-Product" and product["Workspace"] == "billing"
    link = row(arm_services, "workspaces/billing/products/billing-product/apiLinks/invoices-link")
    assert link["LinkedApiId"] == f"{ws}/apis/invoices" and not link["IsDeleted"]
    rule = row(arm_services, "workspaces/billing/backends/billing-backend/circuit-breaker/rules/r5xx")
    assert (rule["Workspace"], rule["BreakerState"], rule["ConfiguredTripDuration"]) == ("billing", "open", "00:01:00")  # event, then ARM
    assert row(arm_services, "workspaces/billing/backends/billing-backend")["Url"] == "https://billing.contoso.example"
    assert row(arm_services, "workspaces/billing/apis/invoices")["ServiceUrl"] == "https://backend.contoso.example/invoices"
    assert not any(str(r["Path"]).startswith(("backends/billing", "products/billing")) for r in inventory_rows(store_of(arm_services)))


def test_the_stand_in_serves_workspaces_in_the_documented_shapes(arm_services: bootstrap.Services, workspaces: ArmStandIn) -> None:
    client = syncer(arm_services).arm
    listed = list(client.list(f"{SERVICE_ID}/workspaces"))  # one a page: the second through nextLink
    assert [w["name"] for w in listed] == ["billing", "shipping"] and any(r.query for r in workspaces.hits("/workspaces")
                                                                           if "$skiptoken" in {k.lower() for k in r.query})
    assert {w["type"] for w in listed} == {"Microsoft.ApiManagement/service/workspaces"}
    ws = f"{SERVICE_ID}/workspaces/billing"
    (link,) = list(client.list(f"{ws}/products/billing-product/apiLinks"))
    assert link["type"] == "Microsoft.ApiManagement/service/workspaces/products/apiLinks"
    assert link["properties"]["apiId"] == f"{ws}/apis/invoices" and link["id"] == f"{ws}/products/billing-product/apiLinks/invoices-link"
    assert client.get(f"{ws}/subscriptions/billing-sub")["properties"]["scope"] == f"{ws}/products/billing-product"
    assert [r["name"] for r in client.get(f"{ws}/backends/billing-backend")["properties"]["circuitBreaker"]["rules"]] == ["r5xx"]

    workspaces.delete(ws)  # with everything in it, as ARM deletes a workspace
    for gone in (ws, f"{ws}/apis/invoices", f"{ws}/apis", f"{ws}/products/billing-product/apiLinks"):
        with pytest.raises(ArmNotFound):
            client.get(gone) if not gone.endswith(("/apis", "/apiLinks")) else list(client.list(gone))
    assert [w["name"] for w in client.list(f"{SERVICE_ID}/workspaces")] == ["shipping"]
    assert client.get(f"{SERVICE_ID}/workspaces/shipping/apis/orders")["name"] == "orders"


def test_throttling_inside_a_workspace_stops_the_invocation_at_its_page_and_the_next_resumes(
        arm_services: bootstrap.Services, workspaces: ArmStandIn, clock: ManualClock) -> None:
    sync = syncer(arm_services)
    workspaces.fail("/workspaces/shipping/products", 429, times=1, retry_after="120")
    first = sync.step(SERVICE)
    assert first.stopped == "throttled" and first.retry_after == 120 and first.incomplete == {}
    assert not any(p.startswith("workspaces/shipping/products") for p in rows_by_path(arm_services))
    clock.advance(minutes=2)
    report = sync.sync(SERVICE)
    assert report.finished and report.invocations == 2 and by_kind(report, "added") == expected_added()
    served = [r for r in workspaces.hits("/workspaces/billing/apis") if not r.path.endswith("/releases")]
    assert len([r for r in served if "$skiptoken" not in {k.lower() for k in r.query}]) == 1  # not listed again


def test_a_workspace_page_that_shifts_keeps_the_skipped_subscription_after_a_get(
        arm_services: bootstrap.Services, workspaces: ArmStandIn, clock: ManualClock) -> None:
    ws = f"{SERVICE_ID}/workspaces/billing"
    for name in ("billing-aaa-sub", "billing-zzz-sub"):
        workspaces.put(f"{ws}/subscriptions/{name}", {"displayName": name, "scope": f"{ws}/products/billing-product",
                                                      "ownerId": f"{SERVICE_ID}/users/bob", "state": "active"})
    sync = syncer(arm_services)
    sync.sync(SERVICE)

    def delete_between_pages(path: str, offset: int) -> None:
        if path.endswith("/workspaces/billing/subscriptions") and offset == 1:
            workspaces.delete(f"{ws}/subscriptions/billing-aaa-sub")  # billing-zzz-sub moves to offset 1, which was served

    workspaces.after_page = delete_between_pages
    clock.advance(hours=6)
    report = sync.sync(SERVICE)
    assert report.kept == 1 and "tombstoned" not in report.counts
    assert [r.path for r in workspaces.hits("/subscriptions/billing-zzz-sub")][-1] == f"{ws}/subscriptions/billing-zzz-sub"
    assert not row(arm_services, "workspaces/billing/subscriptions/billing-zzz-sub")["IsDeleted"]
    workspaces.after_page = None
    clock.advance(hours=6)
    again = sync.sync(SERVICE)
    assert by_kind(again, "tombstoned") == {"subscription": 1} and again.kept == 0
    assert row(arm_services, "workspaces/billing/subscriptions/billing-aaa-sub")["IsDeleted"]


def test_workspaces_not_listed_completely_leave_every_workspace_row_alone(arm_services: bootstrap.Services, workspaces: ArmStandIn,
                                                                           clock: ManualClock) -> None:
    sync = syncer(arm_services)
    sync.sync(SERVICE)
    before = rows_by_path(arm_services)
    workspaces.delete(f"{SERVICE_ID}/workspaces/billing")
    workspaces.delete(f"{SERVICE_ID}/users/bob")
    workspaces.fail(f"{SERVICE_ID}/workspaces", 500, times=20)  # the workspaces' listing, and anything under them
    clock.advance(hours=6)
    report = sync.sync(SERVICE)
    assert set(report.incomplete) == {"workspace"} and by_kind(report, "tombstoned") == {"user": 1}
    rows = rows_by_path(arm_services)
    assert {p: r for p, r in rows.items() if p.startswith("workspaces/")} == {p: r for p, r in before.items() if p.startswith("workspaces/")}
