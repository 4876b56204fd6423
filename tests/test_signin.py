"""Roles and personal data: the masking function, the principal header, FUNCTION_KEY_ROLE, and the page guard; then every
combination through the served app (keys checked as the host checks them), and masking walked over the OpenAPI
description's routes."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.http_host import FunctionsHost, local_principal
from devtools.worker import indexed_function
from shared.domain.personal import MASKED, PERSONAL_KEYS, Role, mask
from shared.entrypoints.openapi import ROUTES, document
from shared.entrypoints.signin import Refused, SettingRefused, key_role, parse_principal
from tests.served_support import PERSONAL_VALUES, Served, principal, served

__all__ = ["served"]  # the module's fixture
CUSTOM_ROLE_TYPE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"

# -- the masking function -------------------------------------------------------------------------------------------

KEYS = st.sampled_from([*sorted(PERSONAL_KEYS), "Path", "Name", "OwnerId", "callerObjectId", "items", "Values"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
DOCUMENTS = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
                         max_leaves=12)


def oracle(value: Any, under_personal: bool = False) -> Any:
    """Brute force: a personal key's whole value becomes MASKED unless null or empty; the rest walked as given."""
    if isinstance(value, dict):
        return {k: MASKED if k in PERSONAL_KEYS and v not in (None, "") else oracle(v) for k, v in value.items()}
    if isinstance(value, list):
        return [oracle(v) for v in value]
    return value


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_mask_agrees_with_the_oracle_and_never_changes_its_input(document: Any) -> None:
    before = json.dumps(document, sort_keys=True)
    if not (isinstance(document, str) and document.startswith("{")):  # JSON texts: the next test
        assert mask(document, Role.READ) == oracle(document)
    assert mask(document, Role.PERSONAL_DATA) is document
    assert json.dumps(document, sort_keys=True) == before


@pytest.mark.unit
def test_mask_reaches_into_a_history_records_values() -> None:
    values = json.dumps({"Email": "a@b.example", "FirstName": "Ada", "UserState": [None, "active"]}, sort_keys=True)
    masked = mask({"items": [{"Values": values, "Path": "users/ada"}]}, Role.READ)
    inner = json.loads(masked["items"][0]["Values"])
    assert inner == {"Email": MASKED, "FirstName": MASKED, "UserState": [None, "active"]} and masked["items"][0]["Path"] == "users/ada"
    assert mask({"Values": "{not json: Email"}, Role.READ) == {"Values": "{not json: Email"}  # kept as given, never a 500


# -- the principal header and FUNCTION_KEY_ROLE --------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize(("roles", "role_typ", "served_as"), [
    (["Inventory.Read"], None, Role.READ), (["Inventory.PersonalData.Read"], None, Role.PERSONAL_DATA),
    (["Inventory.Read", "Inventory.PersonalData.Read"], None, Role.PERSONAL_DATA), (["inventory.read"], None, Role.READ),
    (["Inventory.PersonalData.Read"], CUSTOM_ROLE_TYPE, Role.PERSONAL_DATA),
])
def test_the_role_comes_from_the_role_claims(roles: list[str], role_typ: str | None, served_as: Role) -> None:
    found = parse_principal(principal(*roles, role_typ=role_typ))
    assert found.role is served_as and found.name == "Ada" and list(found.roles) == roles


@pytest.mark.unit
@pytest.mark.parametrize(("header", "says"), [
    ("not base64!", "not base64-encoded JSON"), (base64.b64encode(b"{nope").decode(), "not base64-encoded JSON"),
    (base64.b64encode(b"[1, 2]").decode(), "no `claims` list"), (base64.b64encode(b'{"claims": {"typ": "roles"}}').decode(), "no `claims` list"),
    (base64.b64encode(b'{"claims": [{"typ": "roles", "val": 7}]}').decode(), "no `claims` list"),
    ("A" * 20_000, "longer than"), (principal("Other.Role"), "neither app role"), (principal(), "neither app role"),
])
def test_a_malformed_or_roleless_principal_is_refused_in_one_line(header: str, says: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_principal(header)
    assert says in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.unit
def test_function_key_role_defaults_to_read_and_refuses_other_words() -> None:
    assert key_role({}) is Role.READ and key_role({"FUNCTION_KEY_ROLE": ""}) is Role.READ
    assert key_role({"FUNCTION_KEY_ROLE": " inventory.personaldata.read "}) is Role.PERSONAL_DATA
    with pytest.raises(SettingRefused, match=r"FUNCTION_KEY_ROLE is .Admin.; it takes Inventory\.Read or Inventory\.PersonalData\.Read"):
        key_role({"FUNCTION_KEY_ROLE": "Admin"})


def _whoami(headers: dict[str, str]) -> func.HttpResponse:
    response: func.HttpResponse = indexed_function("ui_whoami")(func.HttpRequest("GET", "http://localhost/ui/whoami", headers=headers, body=b""))
    return response


@pytest.mark.unit
@pytest.mark.parametrize(("auth", "header", "status", "says"), [
    (None, principal("Inventory.Read"), 401, "sign-in is off"), ("false", principal("Inventory.Read"), 401, "header sent is ignored"),
    ("true", None, 401, "not signed in"), ("true", "%%%", 401, "malformed X-MS-CLIENT-PRINCIPAL header"),
    ("true", principal("Someone.Else"), 401, "neither app role"),
    ("true", principal("Inventory.Read"), 200, "<strong>Inventory.Read</strong>"),
    ("True", principal("Inventory.PersonalData.Read", role_typ=CUSTOM_ROLE_TYPE), 200, "<strong>Inventory.PersonalData.Read</strong>"),
])
def test_the_page_guard(auth: str | None, header: str | None, status: int, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if auth is None:
        monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    else:
        monkeypatch.setenv("WEBSITE_AUTH_ENABLED", auth)
    response = _whoami({"X-MS-CLIENT-PRINCIPAL": header} if header else {})
    body = response.get_body().decode()
    assert response.status_code == status and says in body
    if status == 401:
        assert response.mimetype == "text/plain" and body.count("\n") == 1 and "Traceback" not in body
    else:
        assert response.headers["X-Inventory-Role"] in says and "default-src 'self'" in response.headers["Content-Security-Policy"]


# -- through the served app ------------------------------------------------------------------------------------------

def test_keys_are_checked_as_the_host_checks_them(served: Served) -> None:
    keys = served.host.keys
    assert served.get("/api/summary", key=False)[::2] == (401, b"")
    assert served.get("/api/summary", {"x-functions-key": "wrong"}, key=False)[0] == 401
    assert served.get(f"/api/summary?code={keys.default}", key=False)[0] == 200
    assert served.get(f"/api/summary?code={keys.master}", key=False)[0] == 200  # the master key is above the function level
    assert served.get("/api/summary?code=wrong", key=True)[0] == 200  # the header wins over `code`
    assert served.get(f"/api/summary?code={keys.default}", {"x-functions-key": "wrong"}, key=False)[0] == 401
    assert served.get("/API/Summary")[0] == 200 and served.get("/api/nothing")[0] == 404  # routes match case-insensitively
    assert served.get("/ui/whoami", key=False)[0] == 401  # anonymous at the host, refused by the app (sign-in is off)


@pytest.mark.parametrize("setting", [None, "Inventory.Read", "Inventory.PersonalData.Read"])
def test_a_function_key_caller_sees_what_function_key_role_says(setting: str | None, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    if setting is None:
        monkeypatch.delenv("FUNCTION_KEY_ROLE", raising=False)
    else:
        monkeypatch.setenv("FUNCTION_KEY_ROLE", setting)
    status, role, body = served.json("/api/inventory/user")
    alice = next(r for r in body["items"] if r["Path"] == "users/alice")
    assert status == 200 and role == (setting or "Inventory.Read")
    if role == Role.READ:
        assert (alice["Email"], alice["FirstName"], alice["LastName"]) == (MASKED,) * 3
    else:
        assert alice["Email"] == PERSONAL_VALUES[0] and alice["FirstName"] == PERSONAL_VALUES[1]


def test_a_bad_function_key_role_is_a_503_that_says_so(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_KEY_ROLE", "Everything")
    status, _, body = served.json("/api/inventory/user")
    assert status == 503 and "FUNCTION_KEY_ROLE is 'Everything'" in body["error"]
    assert served.json("/api/health")[0] == 200  # the health report still answers


@pytest.mark.parametrize(("auth", "roles", "status", "role"), [
    ("true", ("Inventory.Read",), 200, "Inventory.Read"), ("true", ("Inventory.PersonalData.Read",), 200, "Inventory.PersonalData.Read"),
    (None, ("Inventory.PersonalData.Read",), 401, None), ("true", ("Nope",), 401, None),
])
def test_a_principal_through_the_served_app(auth: str | None, roles: tuple[str, ...], status: int, role: str | None, served: Served,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if auth is None:
        monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    else:
        monkeypatch.setenv("WEBSITE_AUTH_ENABLED", auth)
    got, headers, _body = served.get("/ui/whoami", {"X-MS-CLIENT-PRINCIPAL": principal(*roles)}, key=False)
    assert got == status and headers.get("X-Inventory-Role") == role
    assert served.get("/ui/whoami", {"X-MS-CLIENT-PRINCIPAL": "%%%"}, key=False)[2].count(b"\n") == 1  # malformed: one line


def test_local_sign_in_replaces_any_principal_sent(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    with FunctionsHost(sign_in_as=Role.READ) as host:
        local = Served(host, served.services)
        status, headers, body = local.get("/ui/whoami", {"X-MS-CLIENT-PRINCIPAL": principal("Inventory.PersonalData.Read")}, key=False)
    assert status == 200 and headers["X-Inventory-Role"] == "Inventory.Read" and b"local user" in body
    assert parse_principal(local_principal(Role.PERSONAL_DATA)).role is Role.PERSONAL_DATA


# -- masking in every route the description has ---------------------------------------------------------------------

QUERIES = {  # each route asked so that it answers 200 from the module's data, the personal routes about user alice
    "inventory": ("/api/inventory/user", {}), "resource": ("/api/resource", {"id": "contoso/users/alice"}),
    "history": ("/api/history", {"id": "contoso/users/alice"}), "changes": ("/api/changes", {"since": "30d"}),
    "access": ("/api/access", {"user": "contoso/users/alice"}), "flags": ("/api/flags", {}), "summary": ("/api/summary", {}),
    "expiring": ("/api/expiring", {}), "alerts": ("/api/alerts", {}), "usage": ("/api/usage", {"since": "30d"}),
    "unused": ("/api/unused", {"kind": "user"}), "health": ("/api/health", {}), "openapi": ("/api/openapi.json", {}),
    "keys": ("/api/keys", {"olderThan": "1d"}), "requests": ("/api/requests", {"service": "contoso"}),
}


def test_every_route_of_the_description_masks_personal_data(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    operations = {op["operationId"]: (path, op) for path, item in document()["paths"].items() for op in item.values()}
    assert set(operations) == set(QUERIES), "a route of the description has no query here: add one"
    problems = []
    for name, (path, query) in QUERIES.items():
        personal = "x-personal-data" in operations[name][1]
        assert personal == ROUTES[name].personal and operations[name][0] == "/" + ROUTES[name].path
        for role in Role:
            monkeypatch.setenv("FUNCTION_KEY_ROLE", role.value)
            status, headers, body = served.get(path + ("?" + urlencode(query) if query else ""))
            shown = [v for v in PERSONAL_VALUES if v.encode() in body]
            if status != 200 or headers.get("X-Inventory-Role") != role.value:
                problems.append(f"{name} as {role}: {status} {headers.get('X-Inventory-Role')} {body[:200]!r}")
            elif role is Role.READ and shown:
                problems.append(f"{name} shows {shown} to {role}")
            elif role is Role.PERSONAL_DATA and personal and not shown:
                problems.append(f"{name} is marked x-personal-data but shows none of {PERSONAL_VALUES} to {role}")
    assert problems == []


@pytest.mark.unit
@pytest.mark.parametrize(("role", "email"), [("Inventory.Read", MASKED), ("Inventory.PersonalData.Read", "ada@example.org")])
def test_a_pages_json_is_masked_for_its_principal(role: str, email: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.entrypoints.http_pages import page_json

    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    monkeypatch.setenv("FUNCTION_KEY_ROLE", "Inventory.PersonalData.Read")  # a page's JSON never takes the key's role
    request = func.HttpRequest("GET", "http://localhost/ui/data", headers={"X-MS-CLIENT-PRINCIPAL": principal(role)}, body=b"")
    response = page_json(request, lambda p: {"items": [{"Email": "ada@example.org", "Path": "users/ada"}], "servedFor": p.name})
    assert response.status_code == 200 and response.headers["X-Inventory-Role"] == role
    assert json.loads(response.get_body()) == {"items": [{"Email": email, "Path": "users/ada"}], "servedFor": "Ada"}
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
    assert page_json(request, lambda p: {}).status_code == 401


def _levels_app() -> func.FunctionApp:
    """A small app with a route of each auth level, a POST-only one and an optional route parameter."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    def echo(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps({"route": dict(req.route_params), "params": dict(req.params), "method": req.method}),
                                 mimetype="application/json")

    app.route(route="things/{id}/{part?}", methods=["GET"])(app.function_name("things")(echo))
    app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)(app.function_name("admin_only")(echo))
    app.route(route="open", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)(app.function_name("open")(echo))
    return app


@pytest.mark.standin
def test_the_host_checks_each_auth_level_and_routes_by_template() -> None:
    with FunctionsHost(app=_levels_app(), prefix="api") as host:
        served = Served(host, None)  # type: ignore[arg-type]
        assert served.get("/api/admin-only")[0] == 401  # a function key is below the admin level
        assert served.get("/api/admin-only", {"x-functions-key": host.keys.master}, key=False)[0] == 200
        assert served.get("/api/things/7", key=False)[0] == 401
        status, _, body = served.get("/api/things/7/a%20b?x=1&x=2")
        assert status == 200 and json.loads(body) == {"route": {"id": "7", "part": "a b"}, "params": {"x": "1"}, "method": "GET"}
        assert json.loads(served.get("/api/things/7")[2])["route"] == {"id": "7"}
        assert served.get("/api/open", key=False)[0] == 404  # GET on a POST-only route: no route matches
        request = urllib.request.Request(host.url + "/api/open", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # anonymous: no key needed
            assert response.status == 200 and json.loads(response.read())["method"] == "POST"
        assert served.get("/things/7")[0] == 404  # the prefix is part of every route
