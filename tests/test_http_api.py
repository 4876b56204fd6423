"""The HTTP API, invoked through the indexed functions with func.HttpRequest, against Azurite."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.worker import decode_event, function_json, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.store.keys import LAYOUT_KEYS, with_keys
from tests.support import SERVICE_ID, T0, ManualClock, event, iso

HTTP_FUNCTIONS = {name: f"api/{route}" for name, route in {  # host.json's routePrefix is "": the JSON API's routes say api/
    "inventory": "inventory/{kind}", "resource": "resource", "access": "access", "history": "history", "changes": "changes", "flags": "flags",
    "summary": "summary", "expiring": "expiring", "alerts": "alerts", "usage": "usage", "unused": "unused"}.items()}
OTHER = SERVICE_ID.replace("contoso", "fabrikam")


def call(name: str, params: dict[str, str] | None = None, **route: str) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{name}", params=params or {}, route_params=route, body=b"")
    response = indexed_function(name)(req)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


@pytest.fixture(scope="module")
def seeded(azurite: Azurite) -> Iterator[bootstrap.Services]:
    """One inventory for the module: two services, tombstones, a revision, a token and a breaker."""
    from tests.conftest import fresh_settings

    settings = fresh_settings()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INVENTORY_STORAGE", azurite.connection_string)
        clock = ManualClock(T0 + timedelta(hours=2))
        services = bootstrap.build_services(settings, clock=clock.now)
        bootstrap.install(services)
        apim_events = indexed_function("apim_events")
        for payload in [
            event("UserCreated", "/users/alice", at=1), event("UserCreated", "/users/bob", at=2),
            event("UserDeleted", "/users/bob", at=600), event("UserCreated", "/users/carol", at=3, service=OTHER),
            event("APICreated", "/apis/orders", at=4), event("APIUpdated", "/apis/Orders;Rev=2", at=5),
            event("ProductCreated", "/products/gold", at=6), event("ProductDeleted", "/products/gold", at=3000),
            event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=7,
                  data={"gatewayInfo": {"gatewayId": "edge", "instanceId": "pod-1"}, "tokenInfo": {"expiresAtUtc": iso(T0 + timedelta(days=2))}}),
            event("CircuitBreaker.Opened", "/backends/payments/circuit-breaker/rules/r5xx", at=8),
            event("UserUpdated", "/users/alice", at=9, event_id="dup"), event("UserUpdated", "/users/alice", at=9, event_id="dup"),
            event("UserCreated", "/loggers/x", at=10),
        ]:
            apim_events(decode_event(payload))
        yield services
        bootstrap.install(None)


@pytest.mark.unit
def test_every_http_function_needs_a_function_key() -> None:
    for name, route in HTTP_FUNCTIONS.items():
        (trigger,) = [b for b in function_json(name)["bindings"] if b["type"] == "httpTrigger"]
        assert trigger["authLevel"] == "FUNCTION" and trigger["route"] == route and trigger["methods"] == ["GET"]


def test_list_one_kind(seeded: bootstrap.Services) -> None:
    status, body = call("inventory", kind="user")
    assert status == 200 and body["kind"] == "user" and body["continuationToken"] is None
    assert sorted(r["Path"] for r in body["items"]) == ["users/alice", "users/carol"]
    status, body = call("inventory", {"service": "Contoso", "includeDeleted": "true"}, kind="User")
    assert sorted(r["Path"] for r in body["items"]) == ["users/alice", "users/bob"]
    assert next(r for r in body["items"] if r["Path"] == "users/bob")["DeletedAt"].endswith("Z")
    # The host passes the function key on to the function as `code`: it is not an unknown parameter.
    status, body = call("inventory", {"code": "function-key"}, kind="user")
    assert status == 200 and sorted(r["Path"] for r in body["items"]) == ["users/alice", "users/carol"]


def test_the_service_parameter_takes_a_name_or_an_arm_id_and_refuses_an_unknown_one(seeded: bootstrap.Services) -> None:
    by_name = call("inventory", {"service": "contoso"}, kind="user")
    assert by_name[0] == 200 and [r["Path"] for r in by_name[1]["items"]] == ["users/alice"]
    assert call("inventory", {"service": SERVICE_ID}, kind="user") == by_name
    _, changes = call("changes", {"since": iso(T0), "service": SERVICE_ID, "kind": "User"})
    assert {r["Service"] for r in changes["items"]} == {"contoso"}
    for name in ("inventory", "changes"):
        status, body = call(name, {"service": "contoso2", "since": iso(T0)} if name == "changes" else {"service": "contoso2"}, kind="user")
        assert status == 404 and "never seen service 'contoso2': did you mean 'contoso'?" in body["error"], body
        assert "fabrikam" in body["error"].lower() and "\n" not in body["error"]


def test_deleted_and_changed_since(seeded: bootstrap.Services) -> None:
    since = iso(T0 + timedelta(seconds=1000))
    _, body = call("inventory", {"deletedSince": since}, kind="product")
    assert [r["Path"] for r in body["items"]] == ["products/gold"]
    _, body = call("inventory", {"deletedSince": since}, kind="user")
    assert body["items"] == []  # bob was deleted before that
    _, body = call("inventory", {"changedSince": iso(T0 + timedelta(seconds=5))}, kind="api")
    assert [r["Path"] for r in body["items"]] == ["apis/Orders;rev=2"]


def test_resource_by_arm_id_and_by_service_path(seeded: bootstrap.Services) -> None:
    status, row = call("resource", {"id": SERVICE_ID + "/apis/orders;rev=2"})
    assert status == 200 and row["Revision"] == "2" and row["Kind"] == "api"
    status, same = call("resource", {"id": "CONTOSO/apis/ORDERS;Rev=2"})
    assert same == row
    assert call("resource", {"id": "contoso/users/nobody"})[0] == 404
    assert call("resource", {"id": "contoso/users/bob"})[1]["IsDeleted"] is True


def test_history_newest_first(seeded: bootstrap.Services) -> None:
    status, body = call("history", {"id": "contoso/users/alice"})
    assert status == 200 and body["items"][0]["EventId"] == "dup"
    assert [h["Change"] for h in body["items"]] == ["updated", "created"]
    _, body = call("history", {"id": "contoso/users/alice", "since": iso(T0 + timedelta(seconds=5))})
    assert [h["EventId"] for h in body["items"]] == ["dup"]
    assert call("history", {"id": "contoso/users/nobody"})[0] == 404


def test_history_with_children(seeded: bootstrap.Services) -> None:
    _, own = call("history", {"id": "contoso/apis/orders"})
    _, all_of_it = call("history", {"id": "contoso/apis/orders", "withChildren": "true"})
    assert [(h["Path"], h["EventType"].rsplit(".", 1)[1]) for h in own["items"]] == [("apis/orders", "APICreated")]
    assert [(h["Path"], h["EventType"].rsplit(".", 1)[1]) for h in all_of_it["items"]] == [
        ("apis/Orders;rev=2", "APIUpdated"), ("apis/orders", "APICreated")]
    assert call("history", {"id": "contoso/apis/orders", "withChildren": "false"})[1] == own


def test_changes_across_services_newest_first_page_by_page(seeded: bootstrap.Services) -> None:
    status, everything = call("changes", {"since": iso(T0)})
    assert status == 200 and everything["by"] == "event" and everything["continuationToken"] is None
    items = everything["items"]
    assert len(items) == everything["count"] == 11  # 13 events: one redelivery, one rejected
    assert [i["EventTime"] for i in items] == sorted((i["EventTime"] for i in items), reverse=True)
    assert {i["Service"] for i in items} == {"contoso", "fabrikam"} and items[0]["Path"] == "products/gold"
    pages, token = [], None
    while True:
        _, page = call("changes", {"since": iso(T0), "top": "4", **({"continuationToken": token} if token else {})})
        pages.append(page["items"])
        token = page["continuationToken"]
        if token is None:
            break
    assert [len(p) for p in pages] == [4, 4, 3] and [i for p in pages for i in p] == items
    # The clock says T0 + 2h: every event happened more than an hour ago, and was recorded less than an hour ago.
    assert call("changes", {"since": "1h"})[1]["items"] == []
    assert len(call("changes", {"since": "1h", "by": "recorded"})[1]["items"]) == 11
    _, carol = call("changes", {"since": iso(T0), "service": "Fabrikam", "kind": "User"})
    assert [(i["Service"], i["Path"], i["ResourceKind"]) for i in carol["items"]] == [("fabrikam", "users/carol", "user")]
    _, early = call("changes", {"since": iso(T0), "until": iso(T0 + timedelta(seconds=4))})
    assert sorted(i["Path"] for i in early["items"]) == ["users/alice", "users/bob", "users/carol"]


def test_a_summary_of_layout_1_tables_says_to_migrate(seeded: bootstrap.Services, azurite: Azurite) -> None:
    status_table = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(seeded.settings.status_table)
    marker = status_table.get_entity(*LAYOUT_KEYS)
    status_table.delete_entity(*LAYOUT_KEYS)
    try:
        assert call("summary") == (503, {"error": "the inventory is in layout 1: run `apim-inventory migrate`"})
    finally:
        status_table.create_entity(marker)
    assert call("summary")[0] == 200


def test_flags_and_summary(seeded: bootstrap.Services) -> None:
    _, flags = call("flags")
    assert [r["Path"] for r in flags["tokens"]] == ["gateways/edge/instances/pod-1"]
    assert [r["Path"] for r in flags["breakers"]] == ["backends/payments/circuit-breaker/rules/r5xx"]
    _, summary = call("summary")
    resources = {(r["service"], r["kind"]): (r["live"], r["deleted"]) for r in summary["resources"]}
    assert resources[("contoso", "user")] == (1, 1) and resources[("fabrikam", "user")] == (1, 0)
    assert resources[("contoso", "product")] == (0, 1)
    day = summary["events"]["lastDay"]
    assert day["duplicate"] == 1 and day["rejected"] == 1 and day["applied"] + day["stale"] == 11


@pytest.mark.parametrize(("name", "params", "route"), [
    ("inventory", {}, {"kind": "widgets"}),
    ("inventory", {"top": "0"}, {"kind": "user"}),
    ("inventory", {"top": "1001"}, {"kind": "user"}),
    ("inventory", {"top": "ten"}, {"kind": "user"}),
    ("inventory", {"includeDeleted": "maybe"}, {"kind": "user"}),
    ("inventory", {"deletedSince": "last week"}, {"kind": "user"}),
    ("inventory", {"changedSince": "2026-13-01"}, {"kind": "user"}),
    ("inventory", {"continuationToken": "not-a-token"}, {"kind": "user"}),
    ("inventory", {"servce": "contoso"}, {"kind": "user"}),
    ("resource", {}, {}),
    ("resource", {"id": "just-a-name"}, {}),
    ("resource", {"id": "/subscriptions/x/resourceGroups/y"}, {}),
    ("history", {"id": "contoso/users/alice", "since": "soon"}, {}),
    ("history", {"id": "contoso/apis/orders", "withChildren": "maybe"}, {}),
    ("flags", {"x": "1"}, {}),
])
def test_bad_parameters_get_400_with_a_message(seeded: bootstrap.Services, name: str, params: dict[str, str],
                                              route: dict[str, str]) -> None:
    status, body = call(name, params, **route)
    assert status == 400 and body["error"]


@pytest.mark.parametrize(("params", "named"), [
    ({}, "since"), ({"since": "soon"}, "since"), ({"since": "24h", "until": "2026-13-01"}, "until"), ({"since": "1h", "until": "2h"}, "until"),
    ({"since": "24h", "by": "arrival"}, "by"), ({"since": "24h", "kind": "widgets"}, "kind"), ({"since": "24h", "top": "0"}, "top"),
    ({"since": "24h", "continuationToken": "not-a-token"}, "continuationToken"), ({"sinse": "24h"}, "sinse"),
])
def test_bad_change_feed_parameters_get_one_line_naming_the_parameter(seeded: bootstrap.Services, params: dict[str, str],
                                                                      named: str) -> None:
    status, body = call("changes", params)
    assert status == 400 and named in body["error"] and "\n" not in body["error"]


INJECTIONS = ["' or PartitionKey ne '", "'", '"', "%", "%27", "naïve-ユーザー", "a\tb", "x" * 5000, "/", "\\", "#", "?",
              "' or 1 eq 1 or '", "contoso' or Kind ne '"]


@pytest.mark.parametrize("attempt", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injection_attempts_get_an_error_or_exactly_the_right_rows(seeded: bootstrap.Services, attempt: str) -> None:
    status, body = call("inventory", {"service": attempt}, kind="user")
    assert status in (400, 404) and "items" not in body  # no service of that name: never an empty 200
    assert call("inventory", kind=attempt)[0] == 400
    for param in ("deletedSince", "changedSince"):
        assert call("inventory", {param: attempt}, kind="user")[0] == 400
    assert call("inventory", {"continuationToken": attempt}, kind="user")[0] == 400
    assert call("resource", {"id": attempt})[0] in (400, 404)
    assert call("resource", {"id": "contoso/users/" + attempt})[0] in (400, 404)
    assert call("history", {"id": "contoso/users/" + attempt})[0] in (400, 404)
    assert call("history", {"id": "contoso/users/alice", "since": attempt})[0] == 400
    for param in ("since", "until", "kind", "by", "continuationToken"):
        assert call("changes", {"since": "24h", param: attempt})[0] == 400
    status, body = call("changes", {"since": iso(T0), "service": attempt})
    assert status in (400, 404) and "items" not in body
    # and the real rows are still exactly there
    assert sorted(r["Path"] for r in call("inventory", kind="user")[1]["items"]) == ["users/alice", "users/carol"]


@pytest.mark.slow  # over a thousand rows
def test_paging_across_more_than_1000_rows(azurite: Azurite, app_settings: Settings, clock: ManualClock) -> None:
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    try:
        client = TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(app_settings.inventory_table)
        service = parse_service_id(SERVICE_ID)
        batches: dict[str, list[Any]] = defaultdict(list)
        for i in range(1250):
            ref = parse_path(service, f"users/u{i:05d}")
            row = with_keys(ref, merge(None, Change(ref, Op.CREATED, Stamp(T0, f"e{i}"), "x")))
            batches[row["PartitionKey"]].append(("upsert", row))
        for ops in batches.values():
            for at in range(0, len(ops), 100):
                client.submit_transaction(ops[at:at + 100])
        for top in ("1000", "300"):
            seen: list[str] = []
            token: str | None = None
            pages = 0
            while True:
                status, body = call("inventory", {"top": top, **({"continuationToken": token} if token else {})}, kind="user")
                assert status == 200 and len(body["items"]) <= int(top)
                seen += [r["Path"] for r in body["items"]]
                pages += 1
                token = body["continuationToken"]
                if not token:
                    break
            assert sorted(seen) == [f"users/u{i:05d}" for i in range(1250)] and len(seen) == len(set(seen))
            assert pages >= -(-1250 // int(top))
    finally:
        bootstrap.install(None)
