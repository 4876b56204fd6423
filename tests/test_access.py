"""Section "who can call what": product membership from the management plane (sync and enrichment), `access --api`,
`access --user` and the list filters, through the console script and the HTTP API, against Azurite and the ARM stand-in."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import pytest

from devtools.arm_standin import ArmStandIn
from devtools.management_plane import api, subscription
from devtools.worker import indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.entrypoints import columns
from shared.integrations.trigger import decode_event
from shared.management.sync import InventorySync
from shared.store.access_index import PREFIX
from shared.store.ports import Query, Store, StoredRow, Table
from tests.support import SERVICE_ID, ManualClock, dumps, event
from tests.test_sync import run_cli

SERVICE = parse_service_id(SERVICE_ID)


def with_access(arm: ArmStandIn) -> None:
    """The small service, plus: orders in products starter and open (no subscription needed), a group, a product of
    its own for payments; the built-in all-access subscription; one subscription per scope, in several states."""
    arm.put(f"{SERVICE_ID}/apis/payments", {**api("payments", 1, True), "subscriptionRequired": True})
    arm.put(f"{SERVICE_ID}/products/starter/apis/orders", api("orders", 2, True))
    arm.put(f"{SERVICE_ID}/products/starter/groups/developers", {"displayName": "Developers", "builtIn": True, "type": "system"})
    arm.put(f"{SERVICE_ID}/products/open", {"displayName": "Open", "subscriptionRequired": False, "approvalRequired": False,
                                           "state": "published"})
    arm.put(f"{SERVICE_ID}/products/open/apis/orders", api("orders", 2, True))
    arm.put(f"{SERVICE_ID}/products/billing", {"displayName": "Billing", "subscriptionRequired": True, "approvalRequired": False,
                                              "state": "notPublished"})
    arm.put(f"{SERVICE_ID}/products/billing/apis/payments", api("payments", 1, True))
    arm.put(f"{SERVICE_ID}/subscriptions/master", subscription(f"{SERVICE_ID}/users/1", f"{SERVICE_ID}/apis"))
    arm.put(f"{SERVICE_ID}/subscriptions/direct", subscription(f"{SERVICE_ID}/users/bob", f"{SERVICE_ID}/apis/orders;rev=1"))
    arm.put(f"{SERVICE_ID}/subscriptions/paused", subscription(f"{SERVICE_ID}/users/alice", f"{SERVICE_ID}/products/starter", "suspended"))
    arm.put(f"{SERVICE_ID}/subscriptions/bills", subscription(f"{SERVICE_ID}/users/alice", f"{SERVICE_ID}/products/billing"))


def syncer(services: bootstrap.Services) -> InventorySync:
    assert services.reconciler.syncer is not None
    return services.reconciler.syncer


def env_of() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("INVENTORY_", "ARM_", "IDENTITY_"))}


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


@pytest.fixture
def synced(arm_settings: Settings, arm: ArmStandIn, clock: ManualClock) -> Iterator[bootstrap.Services]:
    with_access(arm)
    services = bootstrap.build_services(clock=clock.now)
    report = syncer(services).sync(SERVICE)
    assert report.incomplete == {} and report.finished
    bootstrap.install(services)
    yield services
    bootstrap.install(None)


def grants(answer: dict[str, Any], part: str) -> set[tuple[str, str, str | None, str]]:
    return {(g["Subscription"], g["Via"], g["Product"], g["SubscriptionState"]) for g in answer[part]}


@pytest.mark.slow  # the console script, as a subprocess
def test_the_questions_of_access_through_the_console_script(synced: bootstrap.Services) -> None:
    env = env_of()
    argvs = [["access", "--api", "contoso/apis/orders", "-o", "json"], ["access", "--api", "contoso/apis/orders;rev=1", "-o", "json"],
             ["access", "--api", "contoso/apis/orders"], ["access", "--user", "contoso/users/alice", "-o", "json"],
             ["list", "subscription", "--owner", "contoso/users/alice", "-o", "json"],
             ["list", "subscription", "--scope", "contoso/products/starter", "-o", "json"],
             ["list", "subscription", "--scope", f"{SERVICE_ID}/apis", "-o", "json"],
             ["list", "subscription", "--state", "suspended", "-o", "json"],
             ["list", "subscription", "--owner", "contoso/users/alice", "--state", "active", "-o", "json"],
             ["list", "product", "--state", "published", "--approval-required", "false", "-o", "json"],
             ["show", "contoso/products/starter", "-o", "json"], ["access", "--api", "contoso/apis/payments", "-o", "json"],
             ["access", "--api", "contoso/apis/nope"], ["access", "--api", "contoso/users/alice"],
             ["list", "product", "--owner", "contoso/users/alice"], ["access", "--api", "contoso/apis/orders", "-o", "csv"],
             ["access", "--user", "contoso/users/alice", "-o", "csv"]]
    with ThreadPoolExecutor(4) as pool:
        (orders, revision, table, alice, owned, starter, everything, suspended, owned_active, products, show, payments, missing,
         wrong, misuse, orders_csv, alice_csv) = list(pool.map(lambda argv: run_cli(env, *argv), argvs))

    answer = json.loads(ok(orders))
    assert answer["openToAnyone"] == ["product open requires no subscription"]
    assert [p["Product"] for p in answer["products"]] == ["open", "starter"]
    assert grants(answer, "callers") == {("master", "all APIs", None, "active"), ("direct", "api", None, "active"),
                                         ("sub1", "product", "starter", "active")}
    assert grants(answer, "notCallable") == {("paused", "product", "starter", "suspended")}
    assert answer["membershipAsOf"] is not None
    assert json.loads(ok(revision)) == answer  # a revision names its API
    lines = ok(table).splitlines()
    assert lines[0] == "Open to anyone, no key needed: product open requires no subscription"
    assert "in products open, starter; product membership as of" in lines[1]
    assert any(line.startswith("Cannot call now") for line in lines) and any("paused" in line and "suspended" in line for line in lines)

    assert {(i["Subscription"], i["Api"], i["CanCall"]) for i in json.loads(ok(alice))["items"]} == {
        ("sub1", "orders", True), ("paused", "orders", False), ("bills", "payments", True)}
    # CSV: the documented columns only, whatever else the answer's rows hold (Path, ResourceId, ...)
    grant_rows = list(csv.DictReader(io.StringIO(ok(orders_csv))))
    assert ok(orders_csv).splitlines()[0] == ",".join(columns.GRANT_CSV_COLUMNS)
    assert {(r["Subscription"], r["Via"], r["SubscriptionState"], r["CanCall"]) for r in grant_rows} == {
        ("master", "all APIs", "active", "true"), ("direct", "api", "active", "true"), ("sub1", "product", "active", "true"),
        ("paused", "product", "suspended", "false")}
    assert ok(alice_csv).splitlines()[0] == ",".join(columns.USER_CSV_COLUMNS)
    assert {(r["Subscription"], r["Api"]) for r in csv.DictReader(io.StringIO(ok(alice_csv)))} == {
        ("sub1", "orders"), ("paused", "orders"), ("bills", "payments")}
    assert sorted(r["Name"] for r in json.loads(ok(owned))) == ["bills", "paused", "sub1"]
    assert sorted(r["Name"] for r in json.loads(ok(starter))) == ["paused", "sub1"]
    assert [r["Name"] for r in json.loads(ok(everything))] == ["master"]
    assert [r["Name"] for r in json.loads(ok(suspended))] == ["paused"]
    assert sorted(r["Name"] for r in json.loads(ok(owned_active))) == ["bills", "sub1"]
    assert [r["Name"] for r in json.loads(ok(products))] == ["open"]
    shown = json.loads(ok(show))
    assert (shown["Apis"], shown["Groups"]) == ("orders", "developers")
    paid = json.loads(ok(payments))
    assert paid["openToAnyone"] == [] and grants(paid, "callers") == {("master", "all APIs", None, "active"),
                                                                     ("bills", "product", "billing", "active")}
    assert missing.returncode == 1 and "no live API" in missing.stderr
    assert wrong.returncode == 2 and "must be an id such as SERVICE/apis/NAME; 'contoso/users/alice' names a user" in wrong.stderr
    assert misuse.returncode == 2 and "subscriptions only" in misuse.stderr


def test_a_sync_tombstones_a_link_arm_no_longer_has_and_a_deleted_api_drops_out(synced: bootstrap.Services, arm: ArmStandIn,
                                                                                 clock: ManualClock) -> None:
    queries = synced.queries
    assert {p["Product"] for p in queries.access_to_api("contoso/apis/orders")["products"]} == {"open", "starter"}
    arm.delete(f"{SERVICE_ID}/products/open/apis/orders")
    clock.advance(hours=1)
    report = syncer(synced).sync(SERVICE)
    assert report.by_kind["productApi"]["tombstoned"] == 1
    answer = queries.access_to_api("contoso/apis/orders")
    assert [p["Product"] for p in answer["products"]] == ["starter"] and answer["openToAnyone"] == []
    assert queries.resource("contoso/products/open/apis/orders")["IsDeleted"] is True

    synced.processor.handle(decode_event(dumps(event("APIDeleted", "/apis/orders", at=clock.now()))))
    with pytest.raises(LookupError):
        queries.access_to_api("contoso/apis/orders")
    # a product's deletion takes its links and groups with it
    synced.processor.handle(decode_event(dumps(event("ProductDeleted", "/products/starter", at=clock.now()))))
    assert queries.resource("contoso/products/starter/groups/developers")["IsDeleted"] is True
    assert [i["Api"] for i in queries.access_of_user("contoso/users/alice")["items"]] == ["payments"]


def test_enrichment_of_a_product_event_reads_its_membership_again(synced: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    arm.put(f"{SERVICE_ID}/products/starter/apis/payments", api("payments", 1, True))
    arm.delete(f"{SERVICE_ID}/products/starter/groups/developers")
    clock.advance(hours=1)
    synced.processor.handle(decode_event(dumps(event("ProductUpdated", "/products/starter", at=clock.now()))))
    queries = synced.queries
    payments = queries.access_to_api("contoso/apis/payments")
    assert {p["Product"] for p in payments["products"]} == {"billing", "starter"}
    assert {g["Subscription"] for g in payments["callers"]} == {"master", "bills", "sub1"}
    assert payments["membershipAsOf"] is not None
    shown = queries.resource("contoso/products/starter")
    assert (shown["Apis"], shown["Groups"]) == ("orders,payments", "")
    history = queries.history("contoso/products/starter", with_children=True)
    assert {(r["Path"], r["Change"]) for r in history if r["EventType"] == "ApimInventory.Enriched"} >= {
        ("products/starter/apis/payments", "observed"), ("products/starter/groups/developers", "deleted")}


def call(params: dict[str, str], name: str = "access", **route: str) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{name}", params=params, route_params=route, body=b"")
    response = indexed_function(name)(req)
    return response.status_code, json.loads(response.get_body())


def test_access_and_the_filters_in_the_http_api(synced: bootstrap.Services) -> None:
    status, body = call({"api": "contoso/apis/orders"})
    assert status == 200 and grants(body, "notCallable") == {("paused", "product", "starter", "suspended")}
    status, body = call({"user": "contoso/users/bob"})
    assert status == 200 and [(i["Subscription"], i["Api"]) for i in body["items"]] == [("direct", "orders")]
    assert call({"api": "contoso/apis/orders", "user": "contoso/users/bob"})[0] == 400
    assert call({})[0] == 400
    assert call({"api": "contoso/apis/nope"})[0] == 404
    status, body = call({"owner": "contoso/users/alice", "state": "suspended"}, "inventory", kind="subscription")
    assert status == 200 and [r["Name"] for r in body["items"]] == ["paused"]
    status, body = call({"approvalRequired": "true"}, "inventory", kind="product")
    assert status == 200 and [r["Name"] for r in body["items"]] == ["starter"]
    status, body = call({"scope": "contoso/apis/orders;rev=4"}, "inventory", kind="subscription")
    assert status == 200 and [r["Name"] for r in body["items"]] == ["direct"]
    # top pages the index's answer too, in key order; a service other than the owner's is refused
    status, first = call({"owner": "contoso/users/alice", "top": "2"}, "inventory", kind="subscription")
    assert status == 200 and [r["Name"] for r in first["items"]] == ["bills", "paused"] and first["continuationToken"]
    status, rest = call({"owner": "contoso/users/alice", "top": "2", "continuationToken": first["continuationToken"]},
                        "inventory", kind="subscription")
    assert status == 200 and [r["Name"] for r in rest["items"]] == ["sub1"] and rest["continuationToken"] is None
    assert call({"owner": "contoso/users/alice", "service": SERVICE_ID}, "inventory", kind="subscription")[0] == 200
    synced.status.ensure("fabrikam", "fabrikam")
    status, body = call({"scope": "contoso/products/starter", "service": "fabrikam"}, "inventory", kind="subscription")
    assert status == 400 and body["error"] == ("service 'fabrikam' is not the scope's service ('contoso'): leave the service out, "
                                               "or give a scope in 'fabrikam'")
    # a value with OData's quote in it is a parameter, never part of a filter
    status, body = call({"state": "active' or PartitionKey ne '"}, "inventory", kind="subscription")
    assert status == 200 and body["items"] == []


def index_entries(store: Store) -> list[StoredRow]:
    return [row for page in store.scan(Query(Table.STATUS)) for row in page if str(row.entity["PartitionKey"]).startswith(PREFIX)]


@pytest.mark.slow  # the console script, as a subprocess
def test_a_sync_indexes_subscriptions_written_before_the_index(synced: bootstrap.Services, clock: ManualClock) -> None:
    """A store whose rows have no index entries (written before the index existed): a sync that finds every row as
    it was writes no row, but upserts the entries of the rows it saw, and `access --api` finds the subscriptions."""
    store = synced.store
    entries = index_entries(store)
    assert {e.entity["TargetRow"] for e in entries} and store.delete_rows(Table.STATUS, entries) == len(entries)
    assert synced.queries.access_to_api("contoso/apis/orders")["callers"] == []
    clock.advance(hours=1)
    report = syncer(synced).sync(SERVICE)
    assert set(report.by_kind["subscription"]) == {"unchanged"} and set(report.by_kind["productApi"]) == {"unchanged"}
    assert sorted(key_of_entry(e) for e in index_entries(store)) == sorted(key_of_entry(e) for e in entries)
    answer = json.loads(ok(run_cli(env_of(), "access", "--api", "contoso/apis/orders", "-o", "json")))
    assert [p["Product"] for p in answer["products"]] == ["open", "starter"]
    assert grants(answer, "callers") == {("master", "all APIs", None, "active"), ("direct", "api", None, "active"),
                                         ("sub1", "product", "starter", "active")}


def key_of_entry(row: StoredRow) -> tuple[str, str]:
    return str(row.entity["PartitionKey"]), str(row.entity["RowKey"])


def test_a_purge_deletes_the_index_entries_of_the_tombstones_it_purges(synced: bootstrap.Services, arm: ArmStandIn,
                                                                        clock: ManualClock) -> None:
    store = synced.store
    before = index_entries(store)
    bills = [e for e in before if str(e.entity["TargetRow"]).endswith("|bills")]
    assert len(bills) == 2  # its scope's and its owner's
    arm.delete(f"{SERVICE_ID}/subscriptions/bills")
    arm.delete(f"{SERVICE_ID}/products/billing/apis/payments")
    clock.advance(hours=1)
    report = syncer(synced).sync(SERVICE)
    assert report.by_kind["subscription"]["tombstoned"] == 1 and report.by_kind["productApi"]["tombstoned"] == 1
    assert {key_of_entry(e) for e in index_entries(store)} == {key_of_entry(e) for e in before}  # tombstones keep theirs
    clock.advance(days=91)
    results = {r.what: r.deleted for r in synced.purger.run()}
    assert results["tombstones"] == 2
    gone = {key_of_entry(e) for e in before if str(e.entity["TargetRow"]).endswith(("|bills", "|payments"))}
    assert len(gone) == 3
    assert {key_of_entry(e) for e in index_entries(store)} == {key_of_entry(e) for e in before} - gone
    assert {g["Subscription"] for g in synced.queries.access_to_api("contoso/apis/payments")["callers"]} == {"master"}
