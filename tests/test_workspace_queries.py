"""Workspaces on the read side: `list`, `changes`, `summary`, `show`, `history` and `access` (the query layer, the HTTP
API and the console script) over an inventory whose workspaces hold APIs, products, API links and subscriptions under
the names of the service's own. Each answer is compared with a filter of every row (or every change); the service's
`apis/a` and a workspace's `apis/a` stay two rows in every one; a workspace's listing costs its key ranges, whatever
else the tables hold."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devtools.azurite import Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import ResourceRef, parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.migration.layout import Migration
from shared.queries.inventory import InventoryQueries, NotFound
from shared.store import keys
from shared.store.access_index import AccessIndex
from shared.store.counts import WORKSPACES
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import Store, Table
from shared.store.writer import RowWriter
from tests.conftest import fresh_settings, table_repo
from tests.support import SERVICE_ID, T0, count_rows, event, feed_entries, inventory_rows, processor_over
from tests.test_changes import CountingReader
from tests.test_counts import assert_counts_match_a_scan

SERVICE = parse_service_id(SERVICE_ID)
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")
NOW = T0 + timedelta(hours=2)
# The service's resources and two workspaces' under the same names (w1 spelled W1 once: APIM ignores the case), one
# deletion in a workspace, and the same workspace name in another service.
EVENTS = [
    ("APICreated", "/apis/a", SERVICE_ID), ("APICreated", "/workspaces/w1/apis/a", SERVICE_ID),
    ("APIUpdated", "/workspaces/w1/apis/a;rev=2", SERVICE_ID), ("APIReleaseCreated", "/workspaces/w1/apis/a/releases/r1", SERVICE_ID),
    ("APICreated", "/workspaces/W1/apis/b", SERVICE_ID), ("APICreated", "/workspaces/w2/apis/a", SERVICE_ID),
    ("ProductCreated", "/products/p", SERVICE_ID), ("ProductCreated", "/workspaces/w1/products/p", SERVICE_ID),
    ("SubscriptionCreated", "/subscriptions/s", SERVICE_ID), ("SubscriptionCreated", "/workspaces/w1/subscriptions/s1", SERVICE_ID),
    ("UserCreated", "/users/alice", SERVICE_ID), ("APIDeleted", "/workspaces/w1/apis/b", SERVICE_ID),
    ("APICreated", "/workspaces/w1/apis/a", FABRIKAM),
]
KINDS = (Kind.API, Kind.API_RELEASE, Kind.PRODUCT, Kind.PRODUCT_API, Kind.SUBSCRIPTION, Kind.WORKSPACE)


def write(store: Store, path: str, values: dict[str, Any], n: int, op: Op = Op.SYNCED) -> ResourceRef:
    """A row as a sync or an enrichment leaves it (what no event carries: a workspace, an API link, a subscription's
    scope and owner), through the writer and the access index."""
    writer = RowWriter(store, AlertOutbox(store, LoggingAlertPublisher()), Settings().flag_policy, lambda: NOW, index=AccessIndex(store))
    ref = parse_path(SERVICE, path)
    stamp = Stamp(T0 + timedelta(minutes=30, seconds=n), f"arm-{n}")
    writer.apply(ref, [Change(ref, op, stamp, "t"), Change(ref, Op.DETAILS, stamp, "t", values)])
    return ref


def seed(store: Store) -> None:
    processor = processor_over(store, lambda: T0 + timedelta(hours=1))
    for n, (kind, subject, service) in enumerate(EVENTS):
        processor.handle(decode_event(event(kind, subject, at=n, event_id=f"e{n}", service=service)))
    write(store, "workspaces/w1", {"DisplayName": "Team one"}, 1)
    write(store, "workspaces/W2", {"DisplayName": "Team two"}, 2)
    write(store, "workspaces/w1/products/p/apiLinks/link-a", {"LinkedApiId": f"{SERVICE_ID}/workspaces/w1/apis/a"}, 3, Op.OBSERVED)
    write(store, "products/p/apis/a", {"DisplayName": "a"}, 4, Op.OBSERVED)


@pytest.fixture
def store() -> InMemoryStore:
    memory = InMemoryStore()
    memory.create_tables()
    seed(memory)
    return memory


def queries_over(store: Any) -> tuple[InventoryQueries, CountingReader]:
    reader = CountingReader(store)
    return InventoryQueries(store, reader, lambda: NOW), reader


def brute(store: Store, kind: Kind, service: str | None, workspace: str | None, deleted: bool) -> list[tuple[str, str]]:
    """(Service, Path) of every row of the kind that the filter keeps, by the rows' own columns."""
    return sorted((str(r["Service"]), str(r["Path"])) for r in inventory_rows(store)
                  if r["Kind"] == kind and (deleted or not r["IsDeleted"]) and (service is None or r["Service"].lower() == service)
                  and (workspace is None or str(r.get("Workspace") or "").lower() == ("" if workspace == "-" else workspace.lower())))


def listed(found: InventoryQueries, kind: Kind, top: int | None = None, **filters: Any) -> list[tuple[str, str]]:
    rows, token = [], None
    while True:
        page = found.list_kind(kind, top=top, continuation=token, **filters)
        rows += page.rows
        token = page.continuation
        if token is None:
            return sorted((str(r["Service"]), str(r["Path"])) for r in rows)


# -- list -------------------------------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_list_by_workspace_equals_a_filter_of_every_row(store: InMemoryStore, kind: Kind) -> None:
    found, _ = queries_over(store)
    for workspace in (None, "w1", "W1", "w2", "-", "nowhere"):
        for service in (None, "contoso"):
            for deleted in (False, True):
                expected = brute(store, kind, service, workspace, deleted)
                assert listed(found, kind, service=service, workspace=workspace, include_deleted=deleted) == expected
                assert listed(found, kind, top=1, service=service, workspace=workspace, include_deleted=deleted) == expected  # paged
    apis = listed(found, Kind.API, service="contoso", include_deleted=True)
    assert ("contoso", "apis/a") in apis and ("contoso", "workspaces/w1/apis/a") in apis and ("contoso", "workspaces/w2/apis/a") in apis
    assert listed(found, Kind.API, service="contoso", workspace="w1") == [("contoso", "workspaces/w1/apis/a"),
                                                                          ("contoso", "workspaces/w1/apis/a;rev=2")]


@pytest.mark.unit
def test_a_workspace_listing_reads_its_key_ranges_whatever_else_the_tables_hold(store: InMemoryStore) -> None:
    """One range a partition of the family (16), each returning only the workspace's rows (one more, past a page); a
    workspace's own row is one key in one partition; across services, the status rows first."""
    found, reader = queries_over(store)

    def cost(**filters: Any) -> tuple[int, int, int]:
        before = (reader.requests, reader.returned)
        rows = found.list_kind(Kind.API, **filters).rows
        return reader.requests - before[0], reader.returned - before[1], len(rows)

    first = cost(service="contoso", workspace="w1", top=None)
    assert first == (keys.BUCKETS, 2, 2)
    processor = processor_over(store, lambda: T0 + timedelta(hours=1))
    for n in range(300):  # the service's own APIs and another workspace's: none of them is read
        processor.handle(decode_event(event("APICreated", f"/apis/x{n}" if n % 2 else f"/workspaces/w3/apis/x{n}", at=100 + n)))
    assert cost(service="contoso", workspace="w1", top=None) == first
    assert cost(service="contoso", workspace="w1", top=1) == (keys.bucket("a") + 1, 2, 1)  # stops at the page's end, a row past it
    assert cost(workspace="w1", top=None) == (1 + 2 * keys.BUCKETS, 2 + 3, 3)  # the status rows (2 services), then their ranges
    before = reader.requests
    assert [r["Path"] for r in found.list_kind(Kind.WORKSPACE, service="contoso", workspace="W1").rows] == ["workspaces/w1"]
    assert reader.requests - before == 1


@pytest.mark.unit
def test_the_workspace_filter_goes_with_every_other_one(store: InMemoryStore) -> None:
    write(store, "workspaces/w1/subscriptions/s1", {"SubscriptionState": "active", "Scope": f"{SERVICE_ID}/workspaces/w1/products/p",
                                                    "OwnerId": f"{SERVICE_ID}/users/alice"}, 10)
    write(store, "workspaces/w1/subscriptions/s2", {"SubscriptionState": "suspended", "Scope": f"{SERVICE_ID}/workspaces/w1/products/p",
                                                    "OwnerId": f"{SERVICE_ID}/users/alice"}, 11)
    write(store, "subscriptions/s", {"SubscriptionState": "active", "Scope": f"{SERVICE_ID}/products/p", "OwnerId": f"{SERVICE_ID}/users/alice"}, 12)
    found, _ = queries_over(store)

    def paths(**filters: Any) -> list[str]:
        return sorted(r["Path"] for r in found.list_kind(Kind.SUBSCRIPTION, top=None, **filters).rows)

    assert paths(workspace="w1", state="active") == ["workspaces/w1/subscriptions/s1"]
    assert paths(workspace="-", state="active") == ["subscriptions/s"]
    assert paths(owner="contoso/users/alice", workspace="w1") == ["workspaces/w1/subscriptions/s1", "workspaces/w1/subscriptions/s2"]
    assert paths(owner="contoso/users/alice", workspace="-") == ["subscriptions/s"]
    # a scope names its workspace's product, never the service's of the same name
    assert paths(scope="contoso/workspaces/w1/products/p") == ["workspaces/w1/subscriptions/s1", "workspaces/w1/subscriptions/s2"]
    assert paths(scope=f"{SERVICE_ID}/workspaces/W1/products/p", state="suspended") == ["workspaces/w1/subscriptions/s2"]
    assert paths(scope="contoso/products/p") == ["subscriptions/s"]
    api_paths = sorted(r["Path"] for r in found.list_kind(Kind.API, top=None, workspace="w1", deleted_since=T0).rows)
    assert api_paths == ["workspaces/W1/apis/b"]
    cut = T0 + timedelta(seconds=2)
    assert sorted(r["Path"] for r in found.list_kind(Kind.API, top=None, workspace="w1", changed_since=cut).rows) == sorted(
        r["Path"] for r in inventory_rows(store) if r["Kind"] == Kind.API and r["Workspace"].lower() == "w1" and not r["IsDeleted"]
        and r["LastEventTime"] >= cut) != []
    assert len(found.list_kind(Kind.USER, top=None, workspace="-").rows) == 1  # every user is the service's
    for kind, workspace in ((Kind.USER, "w1"), (Kind.API, "w1/apis"), (Kind.API, " ")):
        with pytest.raises(InvalidQuery):
            found.list_kind(kind, workspace=workspace)


# -- changes ----------------------------------------------------------------------------------------------------------
def _changes(found: InventoryQueries, top: int, **filters: Any) -> list[tuple[str, str]]:
    items, token = [], None
    while True:
        page = found.changes(since=T0 - timedelta(days=1), top=top, continuation=token, **filters)
        items += page.items
        token = page.continuation
        if token is None:
            return [(str(i["EventId"]), str(i["Path"])) for i in items]


@pytest.mark.unit
@pytest.mark.parametrize("by", ["event", "recorded"])
def test_changes_of_a_workspace_are_the_window_filtered_by_workspace(store: InMemoryStore, by: str) -> None:
    found, reader = queries_over(store)
    every = _changes(found, 1000, by=by)
    assert len(every) == len(EVENTS)  # the rows written as a sync writes them have no records here

    def of(workspace: str) -> list[tuple[str, str]]:
        return [(e, p) for e, p in every if keys.workspace_of_path(p) == workspace]

    for workspace, wanted in (("w1", "w1"), ("W1", "w1"), ("w2", "w2"), ("-", ""), ("nowhere", "nowhere")):
        for top in (1, 2, 100):
            assert _changes(found, top, by=by, workspace=workspace) == of(wanted), (workspace, top)
    assert _changes(found, 100, by=by, workspace="w1", service="fabrikam") == [("e12", "workspaces/w1/apis/a")]
    assert _changes(found, 100, by=by, workspace="w1", kind=Kind.PRODUCT) == [("e7", "workspaces/w1/products/p")]
    before = reader.requests
    found.changes(since=T0 - timedelta(days=1), top=100, by=by, workspace="w2")
    assert reader.requests - before == 1 + 2 * 2  # the status rows; each service's two days, read in pages of 1000
    item = found.changes(since=T0 - timedelta(days=1), top=1, by=by, workspace="w2").items[0]
    assert item["Workspace"] == "w2" and item["Path"] == "workspaces/w2/apis/a"


@pytest.mark.unit
def test_feed_entries_written_before_the_workspace_column_fall_back_on_their_path(store: InMemoryStore) -> None:
    entries = feed_entries(store)
    store.upsert(Table.HISTORY, [{k: v for k, v in e.items() if k != "Workspace"} for e in entries])  # as written before
    assert not any("Workspace" in e for e in feed_entries(store))
    found, _ = queries_over(store)
    items = [i for i in found.changes(since=T0 - timedelta(days=1), top=100, workspace="w1").items]
    assert sorted(i["Path"] for i in items) == sorted(
        p for _, p in _changes(found, 100) if p.lower().startswith("workspaces/w1/"))
    assert {i["Workspace"] for i in items} == {"w1"}


# -- summary ----------------------------------------------------------------------------------------------------------
def counted_rows(store: Store, workspace: str | None) -> dict[tuple[str, str], tuple[int, int]]:
    """(service, kind) -> (live, deleted) of the rows the filter keeps, from the rows."""
    counts: Counter[tuple[str, str, bool]] = Counter()
    for row in inventory_rows(store):
        mine = str(row.get("Workspace") or "").lower()
        if workspace is None or mine == workspace:
            counts[(str(row["Service"]), str(row["Kind"]), bool(row["IsDeleted"]))] += 1
    pairs = {(s, k) for s, k, _ in counts}
    return {pair: (counts[(*pair, False)], counts[(*pair, True)]) for pair in pairs}


@pytest.mark.unit
def test_summary_counts_each_workspace_from_the_count_rows(store: InMemoryStore) -> None:
    found, reader = queries_over(store)
    requests = []

    def summary(workspace: str | None = None) -> dict[str, Any]:
        before = reader.requests
        answer = found.summary(workspace)
        requests.append(reader.requests - before)
        return answer

    whole = summary()
    assert {(r["service"], r["kind"]): (r["live"], r["deleted"]) for r in whole["resources"]} == counted_rows(store, None)
    per_workspace = {(r["service"], r["workspace"], r["kind"]): (r["live"], r["deleted"]) for r in whole["workspaces"]}
    for workspace in ("w1", "w2"):
        assert {(s, k): n for (s, w, k), n in per_workspace.items() if w == workspace} == counted_rows(store, workspace)
    assert {w for _, w, _ in per_workspace} == {"w1", "w2"}
    assert per_workspace[("contoso", "w1", "api")] == (2, 1) and per_workspace[("fabrikam", "w1", "api")] == (1, 0)
    for asked, wanted in (("w1", "w1"), ("W1", "w1"), ("w2", "w2"), ("-", ""), ("nowhere", "nowhere")):
        answer = summary(asked)
        assert {(r["service"], r["kind"]): (r["live"], r["deleted"]) for r in answer["resources"]} == counted_rows(store, wanted)
        assert answer["workspace"] == ("-" if asked == "-" else wanted) and answer["events"] == whole["events"]
    assert len(set(requests)) == 1  # the count rows alone, whatever is asked


@pytest.mark.unit
def test_a_recount_and_a_purge_keep_the_workspace_counts_exact(store: InMemoryStore) -> None:
    for count in count_rows(store):  # every flag row's workspace counts made wrong: the recount sets them right
        if count["RowKey"] == keys.COUNT_ROW:
            store.put(Table.INVENTORY, {**count, WORKSPACES: json.dumps({"w9": {"Live_api": 5}})},
                      store.get(Table.INVENTORY, count["PartitionKey"], count["RowKey"]).etag)  # type: ignore[union-attr]
    Migration(store, lambda: NOW).recount()
    assert_counts_match_a_scan(store)
    found, _ = queries_over(store)
    assert {r["workspace"] for r in found.summary()["workspaces"]} == {"w1", "w2"}
    from shared.timers.retention import Purger
    Purger(store, store, Settings(), lambda: NOW + timedelta(days=400)).run()  # the tombstone in w1 goes, with its count
    assert_counts_match_a_scan(store)
    assert {(r["service"], r["workspace"], r["kind"]): (r["live"], r["deleted"]) for r in found.summary()["workspaces"]}[
        ("contoso", "w1", "api")] == (2, 0)
    assert counted_rows(store, "w1")[("contoso", "api")] == (2, 0)


# -- show and history -------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_show_and_history_take_workspace_paths_and_arm_ids(store: InMemoryStore) -> None:
    found, _ = queries_over(store)
    for ident in ("contoso/workspaces/w1/apis/a", "contoso/Workspaces/W1/apis/A", f"{SERVICE_ID}/workspaces/w1/apis/a",
                  f"{SERVICE_ID.replace('/providers', '')}/workspaces/w1/apis/a"):
        row = found.resource(ident)
        assert (row["Path"], row["Workspace"]) == ("workspaces/w1/apis/a", "w1"), ident
    assert found.resource("contoso/apis/a")["Workspace"] == ""
    assert found.resource("contoso/workspaces/w1")["Kind"] == Kind.WORKSPACE
    assert found.resource("contoso/workspaces/w1/products/p")["Apis"] == "a"  # from the link's LinkedApiId
    assert found.resource("contoso/products/p")["Apis"] == "a"
    assert [r["EventId"] for r in found.history("contoso/apis/a")] == ["e0"]
    assert [r["EventId"] for r in found.history(f"{SERVICE_ID}/workspaces/w1/apis/a")] == ["e1"]
    assert sorted(r["EventId"] for r in found.history("contoso/workspaces/w1/apis/a", with_children=True)) == ["e1", "e2", "e3"]
    assert [r["EventId"] for r in found.history("fabrikam/workspaces/w1/apis/a")] == ["e12"]
    with pytest.raises(NotFound, match=r"in the inventory$"):
        found.resource("contoso/workspaces/w2/apis/b")  # a workspace it knows: no hint
    with pytest.raises(NotFound, match=r"has no workspace 'w11' in it; did you mean 'w1'\? its workspaces: w1, W2$"):
        found.history("contoso/workspaces/w11/apis/a")
    with pytest.raises(NotFound, match=r"has no workspace 'team' in it; its workspaces: w1, W2$"):
        found.resource(f"{SERVICE_ID}/workspaces/team/products/p")
    with pytest.raises(InvalidQuery):
        found.resource("contoso/workspaces/w1/users/alice")  # a workspace holds no users
    with pytest.raises(InvalidQuery):
        found.access_to_api("contoso/workspaces/w1/apis/a", "w2")  # the id names another workspace


# -- access -----------------------------------------------------------------------------------------------------------
def with_access(store: Store) -> None:
    """orders at the service and in w1, each in a product gold of its own place; subscriptions of every scope of both."""
    scopes = {"svc-gold": "products/gold", "svc-orders": "apis/orders;rev=1", "master": "apis",
              "workspaces/w1|ws-gold": "workspaces/w1/products/gold", "workspaces/w1|ws-orders": "workspaces/W1/apis/orders",
              "workspaces/w1|ws-all": "workspaces/w1/apis", "workspaces/w1|ws-paused": "workspaces/w1/products/gold"}
    for n, path in enumerate(("apis/orders", "workspaces/w1/apis/orders", "products/gold", "workspaces/w1/products/gold")):
        write(store, path, {"SubscriptionRequired": True}, 20 + n)
    write(store, "products/gold/apis/orders", {"DisplayName": "Orders"}, 30, Op.OBSERVED)
    write(store, "workspaces/w1/products/gold/apiLinks/0f3c", {"LinkedApiId": f"{SERVICE_ID}/workspaces/w1/apis/orders"}, 31, Op.OBSERVED)
    for n, (name, scope) in enumerate(scopes.items()):
        place, _, sid = name.rpartition("|")
        write(store, f"{place + '/' if place else ''}subscriptions/{sid}",
              {"Scope": f"{SERVICE_ID}/{scope}", "OwnerId": f"{SERVICE_ID}/users/alice",
               "SubscriptionState": "suspended" if sid.endswith("paused") else "active"}, 40 + n)


@pytest.fixture
def access_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        memory = InMemoryStore()
        memory.create_tables()
        yield memory
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        yield table_repo(azurite, fresh_settings())


@pytest.mark.parametrize("access_store", [pytest.param("memory", marks=pytest.mark.unit), pytest.param("azurite", marks=pytest.mark.azurite)],
                         indirect=True)
def test_access_to_a_workspace_api_goes_through_its_workspace_products_never_the_services(access_store: Store) -> None:
    with_access(access_store)
    found = InventoryQueries(access_store, access_store, lambda: NOW)

    def callers(answer: dict[str, Any], part: str = "callers") -> set[tuple[str, str, str | None, str]]:
        return {(g["Subscription"], g["Via"], g["Product"], g["Workspace"]) for g in answer[part]}

    inside = found.access_to_api("contoso/workspaces/w1/apis/orders")
    assert callers(inside) == {("ws-gold", "product", "gold", "w1"), ("ws-orders", "api", None, "w1"),
                               ("ws-all", "all APIs", None, "w1"), ("master", "all APIs", None, "")}
    assert callers(inside, "notCallable") == {("ws-paused", "product", "gold", "w1")}
    assert [(p["Product"], p["Workspace"]) for p in inside["products"]] == [("gold", "w1")] and inside["workspace"] == "w1"
    assert found.access_to_api(f"{SERVICE_ID}/workspaces/w1/apis/orders;rev=3") == inside  # any revision, by ARM id
    assert found.access_to_api("contoso/apis/orders", workspace="W1") == inside
    outside = found.access_to_api("contoso/apis/orders")
    assert callers(outside) == {("svc-gold", "product", "gold", ""), ("svc-orders", "api", None, ""), ("master", "all APIs", None, "")}
    assert outside["notCallable"] == [] and [(p["Product"], p["Workspace"]) for p in outside["products"]] == [("gold", "")]
    assert found.access_to_api("contoso/apis/orders", workspace="-") == outside
    items = {(i["Subscription"], i["Api"], i["Workspace"]) for i in found.access_of_user("contoso/users/alice")["items"]}
    assert items == {("svc-gold", "orders", ""), ("svc-orders", "orders", ""), ("master", "*", ""), ("ws-gold", "orders", "w1"),
                     ("ws-orders", "orders", "w1"), ("ws-all", "*", "w1"), ("ws-paused", "orders", "w1")}
    assert {i["Subscription"] for i in found.access_of_user("contoso/users/alice", "w1")["items"]} == {"ws-gold", "ws-orders", "ws-all", "ws-paused"}
    assert {i["Subscription"] for i in found.access_of_user("contoso/users/alice", "-")["items"]} == {"svc-gold", "svc-orders", "master"}
    scoped = sorted(r["Name"] for r in found.list_kind(Kind.SUBSCRIPTION, scope="contoso/workspaces/w1/apis").rows)
    assert scoped == ["ws-all"]
    assert sorted(r["Name"] for r in found.list_kind(Kind.SUBSCRIPTION, scope="contoso/apis").rows) == ["master"]


# -- the HTTP API -----------------------------------------------------------------------------------------------------
def call(name: str, params: dict[str, str], **route: str) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{name}", params=params, route_params=route, body=b"")
    response = indexed_function(name)(req)
    return response.status_code, json.loads(response.get_body())


@pytest.mark.unit
def test_the_http_api_takes_a_workspace_parameter(store: InMemoryStore) -> None:
    with_access(store)
    bootstrap.install(bootstrap.in_memory(clock=lambda: NOW, store=store))
    try:
        status, body = call("inventory", {"service": "contoso", "workspace": "w1", "top": "1"}, kind="api")
        assert status == 200 and len(body["items"]) == 1 and body["continuationToken"]
        status, more = call("inventory", {"service": "contoso", "workspace": "w1", "top": "5", "continuationToken": body["continuationToken"]},
                            kind="api")
        assert status == 200 and more["continuationToken"] is None
        assert sorted(r["Path"] for r in body["items"] + more["items"]) == [
            "workspaces/w1/apis/a", "workspaces/w1/apis/a;rev=2", "workspaces/w1/apis/orders"]
        status, body = call("inventory", {"workspace": "-", "service": "contoso"}, kind="api")
        assert sorted(r["Path"] for r in body["items"]) == ["apis/a", "apis/orders"]
        status, body = call("changes", {"since": "7d", "workspace": "w2"})
        assert status == 200 and [i["Path"] for i in body["items"]] == ["workspaces/w2/apis/a"]
        status, body = call("summary", {"workspace": "w2"})
        assert status == 200 and body["workspace"] == "w2" and {(r["kind"], r["live"]) for r in body["resources"]} == {("api", 1), ("workspace", 1)}
        status, body = call("access", {"api": "contoso/apis/orders", "workspace": "w1"})
        assert status == 200 and {g["Subscription"] for g in body["callers"]} == {"ws-gold", "ws-orders", "ws-all", "master"}
        for name, params, route in (("inventory", {"workspace": "a/b"}, {"kind": "api"}), ("inventory", {"workspace": "w1"}, {"kind": "user"}),
                                    ("changes", {"since": "1d", "workspace": "x/y"}, {}), ("summary", {"workspace": "a/b"}, {})):
            status, body = call(name, params, **route)
            assert status == 400 and "workspace" in body["error"], (name, body)
    finally:
        bootstrap.install(None)


# -- the console script -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_command_takes_workspace_and_shows_the_workspace_column(azurite: Azurite, tmp_path: Path) -> None:
    from tests.test_cli import Cli, as_csv, as_json, as_table, ok, store_env

    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    now = datetime.now(T0.tzinfo)
    payloads = [event(kind, subject, at=now - timedelta(minutes=30 - n), event_id=f"e{n}", service=service)
                for n, (kind, subject, service) in enumerate(EVENTS)]
    ok(run("replay", "-", stdin=json.dumps(payloads)))
    listing, table, plain, changes, summary, show, history, wrong = run.many(
        ["list", "api", "--service", "contoso", "--workspace", "W1", "--include-deleted", "-o", "csv"],
        ["list", "api", "--workspace", "w1"], ["list", "user"], ["changes", "--since", "1h", "--workspace", "-", "-o", "json"],
        ["summary", "--workspace", "w1", "-o", "json"], ["show", f"{SERVICE_ID}/workspaces/w1/apis/a", "-o", "json"],
        ["history", "contoso/workspaces/w1/apis/a", "--with-children", "-o", "json"], ["list", "user", "--workspace", "w1"])
    rows = as_csv(listing)
    assert sorted((r["Path"], r["Workspace"]) for r in rows) == [("workspaces/W1/apis/b", "W1"), ("workspaces/w1/apis/a", "w1"),
                                                                 ("workspaces/w1/apis/a;rev=2", "w1")]
    assert list(rows[0])[-1] == "Workspace"  # last in the CSV: columns are only appended
    header = list(as_table(table)[0])
    assert header[:2] == ["Service", "Workspace"] and "Workspace" not in list(as_table(plain)[0])
    assert {i["Path"] for i in as_json(changes)["items"]} == {"apis/a", "products/p", "subscriptions/s", "users/alice"}
    answer = as_json(summary)
    assert answer["workspace"] == "w1" and {(r["service"], r["kind"], r["live"], r["deleted"]) for r in answer["resources"]} == {
        ("contoso", "api", 2, 1), ("contoso", "apiRelease", 1, 0), ("contoso", "product", 1, 0), ("contoso", "subscription", 1, 0),
        ("fabrikam", "api", 1, 0)}
    assert as_json(show)["Path"] == "workspaces/w1/apis/a"
    assert sorted(r["EventId"] for r in as_json(history)) == ["e1", "e2", "e3"]
    assert wrong.returncode == 2 and "a workspace holds no user" in wrong.stderr


@pytest.mark.unit
def test_workspace_counts_past_32k_characters_go_on_in_more_columns() -> None:
    """1500 workspaces with rows in one partition: the JSON spans several columns within Table Storage's limits, reads
    back whole, and is gone once every count is back at zero."""
    from shared.store import counts

    moves = {f"team-{n:04d}-{'x' * 40}": Counter({"Live_api": n + 1, "Deleted_api": n % 3}) for n in range(1500)}
    total = Counter({"Live_api": sum(c["Live_api"] for c in moves.values()), "Deleted_api": sum(c["Deleted_api"] for c in moves.values())})
    where = ("api|contoso|00", "~c0")
    header = {"Service": "contoso", "ServiceKey": "contoso"}
    row = counts.counted(None, where, header, Kind.API, total, None, None, workspaces=moves)
    assert row is not None
    parts = [column for column in row if column.startswith(WORKSPACES)]
    assert len(parts) > 2 and all(keys.utf16_units(row[column]) <= keys.MAX_STRING_CHARS for column in parts)
    keys.check_entity(row)
    assert {w: +c for w, c in counts.workspace_counts(row).items()} == {w: +c for w, c in moves.items()}
    undone = {w: Counter({column: -n for column, n in c.items()}) for w, c in moves.items()}
    back = counts.counted(row, where, header, Kind.API, Counter({column: -n for column, n in total.items()}), None, None, workspaces=undone)
    assert back is not None and not any(column.startswith(WORKSPACES) for column in back) and back["Live_api"] == 0


def test_after_a_sync_of_workspaces_each_question_keeps_the_workspace_apart(arm_services: bootstrap.Services, arm: Any,
                                                                           clock: Any) -> None:
    """A full sync against the stand-in (api-version 2024-05-01 shapes: `apiLinks` with `properties.apiId`, scopes as
    full ARM ids): workspace shipping's API `orders` beside the service's `orders`, each in a product of its own place
    with a subscription of alice's. Every answer keeps them apart; the summary of a workspace is what it holds."""
    from devtools.management_plane import api, workspace_contents
    from tests.test_sync import syncer
    from tests.test_workspace_sync import IN_ONE

    arm.put(f"{SERVICE_ID}/products/starter/apis/orders", api("orders", 2, True))
    for name, api_name in (("billing", "invoices"), ("shipping", "orders")):
        arm.put_many(workspace_contents(SERVICE_ID, name, api_name))
    report = syncer(arm_services).sync(SERVICE)
    assert report.incomplete == {} and report.finished
    found = arm_services.queries

    def callers(answer: dict[str, Any]) -> set[tuple[str, str, str | None, str]]:
        return {(g["Subscription"], g["Via"], g["Product"], g["Workspace"]) for g in answer["callers"] + answer["notCallable"]}

    inside = found.access_to_api(f"{SERVICE_ID}/workspaces/shipping/apis/orders")
    assert callers(inside) == {("shipping-sub", "product", "shipping-product", "shipping")}
    assert [(p["Product"], p["Workspace"]) for p in inside["products"]] == [("shipping-product", "shipping")]
    assert inside["membershipAsOf"] is not None
    assert callers(found.access_to_api("contoso/apis/orders")) == {("sub1", "product", "starter", "")}
    items = {(i["Subscription"], i["Api"], i["Workspace"]) for i in found.access_of_user("contoso/users/alice")["items"]}
    assert items == {("sub1", "orders", ""), ("shipping-sub", "orders", "shipping"), ("billing-sub", "invoices", "billing")}
    assert found.resource("contoso/workspaces/shipping/products/shipping-product")["Apis"] == "orders"
    for workspace in ("billing", "shipping"):
        answer = found.summary(workspace)
        assert {r["kind"]: r["live"] for r in answer["resources"]} == IN_ONE and all(r["deleted"] == 0 for r in answer["resources"])
        assert len(found.list_kind(Kind.API, service="contoso", workspace=workspace, top=None).rows) == IN_ONE["api"]
    service_level = {r["kind"]: r["live"] for r in found.summary("-")["resources"]}
    whole = {r["kind"]: r["live"] for r in found.summary()["resources"]}
    assert all(whole[k] == service_level.get(k, 0) + sum(IN_ONE.get(k, 0) for _ in range(2)) for k in whole)
    assert sorted(r["Path"] for r in found.list_kind(Kind.SUBSCRIPTION, scope="contoso/workspaces/shipping/products/shipping-product").rows) \
        == ["workspaces/shipping/subscriptions/shipping-sub"]
    clock.advance(hours=1)
    before = found.summary()
    assert syncer(arm_services).sync(SERVICE).finished
    assert found.summary()["workspaces"] == before["workspaces"]  # a second sync changes no count


@pytest.mark.unit
def test_the_documented_list_columns_are_the_commands() -> None:
    """docs/schema.md's `list KIND` table names every kind's columns as `columns.LIST_COLUMNS` has them (Workspace last)."""
    import re

    from shared.entrypoints import columns

    text = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text(encoding="utf-8")
    table = text[text.index("| `list KIND` | columns |"):].split("\n\n", 1)[0]
    documented = {m.group(1): tuple(re.findall(r"`([A-Za-z]+)`", m.group(2)))
                  for m in re.finditer(r"^\| `(\w+)` \| (.*) \|$", table, re.M)}
    assert documented == {kind.value: header for kind, header in columns.LIST_COLUMNS.items()}
