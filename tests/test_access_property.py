"""`access --api X` (and `--user U`) against a brute force over the rows of random inventories: subscriptions with
scopes in every spelling, products and their API links and groups, tombstones, scopes and owners that change after
their index entries were written, and index entries left by a crash before their row was written; APIs, products,
API links (`apiLinks` with LinkedApiId) and subscriptions of the service and of a workspace, under the same names."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.store_reads import inventory_rows
from shared.config import Settings
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import ResourceRef, parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.queries.access import api_access, user_access
from shared.store.access_index import AccessIndex
from shared.store.keys import with_keys
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity
from shared.store.writer import RowWriter
from tests.support import SERVICE_ID, T0, ManualClock

pytestmark = pytest.mark.unit
SERVICE = parse_service_id(SERVICE_ID)
APIS, PRODUCTS, USERS, GROUPS = ["a0", "a1", "Orders"], ["p0", "p1", "Gold"], ["u0", "u1"], ["developers", "guests"]
STATES = ["active", "suspended", "submitted", "cancelled", "expired", None]


WORKSPACES = [None, "w1"]  # the service, and a workspace holding APIs and products of the same names
Place = str | None


def _in(workspace: Place, path: str) -> str:
    return f"workspaces/{workspace}/{path}" if workspace else path


def _scope_text(target: tuple[str, str | None], spelling: int, workspace: Place = None) -> str:
    """A scope as ARM or older API versions may write it (a workspace's, in its workspace; the workspace's name in
    another case, too)."""
    kind, name = target
    tail = "apis" if kind == "all" else f"{'apis' if kind == 'api' else 'products'}/{name}"
    if kind == "api" and spelling == 2:
        tail += ";rev=3"
    tail = _in(workspace.upper() if workspace and spelling == 2 else workspace, tail)
    return [f"{SERVICE_ID}/{tail}", f"/{tail}", f"{SERVICE_ID.upper()}/{tail}", f"{SERVICE_ID}/{tail}/"][spelling]


places = st.sampled_from(WORKSPACES)
targets = st.one_of(st.just(("all", None)), st.tuples(st.just("api"), st.sampled_from(APIS)),
                    st.tuples(st.just("product"), st.sampled_from(PRODUCTS)), st.just(("other", "x")))
subscription = st.fixed_dictionaries({
    "target": targets, "spelling": st.integers(0, 3), "owner": st.sampled_from(USERS), "state": st.sampled_from(STATES),
    "deleted": st.booleans(), "moved": st.none() | targets, "new_owner": st.none() | st.sampled_from(USERS), "workspace": places})
inventories = st.fixed_dictionaries({
    "apis": st.dictionaries(st.tuples(places, st.sampled_from(APIS)), st.tuples(st.sampled_from([None, True, False]), st.booleans())),
    "products": st.dictionaries(st.tuples(places, st.sampled_from(PRODUCTS)),
                                st.tuples(st.sampled_from([None, True, False]), st.booleans())),
    "links": st.dictionaries(st.tuples(places, st.sampled_from(PRODUCTS), st.sampled_from(APIS)), st.booleans()),
    "groups": st.dictionaries(st.tuples(st.sampled_from(PRODUCTS), st.sampled_from(GROUPS)), st.booleans()),
    "subscriptions": st.lists(subscription, max_size=8),
    "crashed": st.lists(st.tuples(targets, st.sampled_from(USERS)), max_size=3),
})


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock()
        self.writer = RowWriter(self.store, AlertOutbox(self.store, LoggingAlertPublisher()), Settings().flag_policy, self.clock.now,
                                index=AccessIndex(self.store))
        self.n = 0

    def write(self, path: str, values: dict[str, Any], deleted: bool = False, op: Op = Op.CREATED) -> ResourceRef:
        ref = parse_path(SERVICE, path)
        self.n += 1
        stamp = Stamp(T0 + timedelta(seconds=self.n), f"e{self.n}")
        self.writer.apply(ref, [Change(ref, op, stamp, "t"), Change(ref, Op.DETAILS, stamp, "t", values)])
        if deleted:
            self.n += 1
            self.writer.apply(ref, [Change(ref, Op.DELETED, Stamp(T0 + timedelta(seconds=self.n), f"e{self.n}"), "t")])
        return ref


def build(inv: dict[str, Any]) -> World:
    world = World()
    for (workspace, name), (required, deleted) in inv["apis"].items():
        world.write(_in(workspace, f"apis/{name}"), {} if required is None else {"SubscriptionRequired": required}, deleted)
    for (workspace, name), (required, deleted) in inv["products"].items():
        world.write(_in(workspace, f"products/{name}"), {} if required is None else {"SubscriptionRequired": required}, deleted)
    for (workspace, product, api), deleted in inv["links"].items():
        if workspace is None:
            world.write(f"products/{product}/apis/{api}", {"DisplayName": api}, deleted, Op.OBSERVED)
        else:  # a workspace product's link: named apart from its API, which its LinkedApiId names (a revision's id too)
            linked = f"{SERVICE_ID}/workspaces/{workspace}/apis/{api}" + (";rev=2" if len(api) % 2 else "")
            world.write(_in(workspace, f"products/{product}/apiLinks/link-{api.lower()}"), {"LinkedApiId": linked}, deleted, Op.OBSERVED)
    for (product, group), deleted in inv["groups"].items():
        world.write(f"products/{product}/groups/{group}", {"DisplayName": group}, deleted, Op.OBSERVED)
    for n, sub in enumerate(inv["subscriptions"]):
        place = sub["workspace"]
        values = {"Scope": _scope_text(sub["target"], sub["spelling"], place), "OwnerId": f"{SERVICE_ID}/users/{sub['owner']}"}
        if sub["state"] is not None:
            values["SubscriptionState"] = sub["state"]
        world.write(_in(place, f"subscriptions/s{n}"), values, sub["deleted"] and sub["moved"] is None)
        if sub["moved"] is not None or sub["new_owner"] is not None:  # its old index entries are stale now
            moved = {**values, "Scope": _scope_text(sub["moved"] or sub["target"], 0, place),
                     "OwnerId": f"{SERVICE_ID}/users/{sub['new_owner'] or sub['owner']}"}
            world.write(_in(place, f"subscriptions/s{n}"), moved, sub["deleted"], Op.UPDATED)
    for n, (target, owner) in enumerate(inv["crashed"]):  # the entries were written, the row never was
        ref = parse_path(SERVICE, f"subscriptions/crashed{n}")
        phantom = with_keys(ref, {"Kind": Kind.SUBSCRIPTION.value, "Name": ref.name, "IsDeleted": False, "SubscriptionState": "active",
                                  "Scope": _scope_text(target, 0), "OwnerId": f"{SERVICE_ID}/users/{owner}"})
        AccessIndex(world.store)([(None, phantom)])
    return world


# -- the brute force: every row of the inventory table, nothing else -----------------------------------------------
def _rows(world: World) -> list[Entity]:
    return inventory_rows(world.store)


def _target(scope: str) -> tuple[str, str, str] | None:
    """(kind, name, workspace or "") a scope or a LinkedApiId names."""
    tail = re.sub(r"(?i)^.*/service/[^/]+", "", scope).strip("/").lower()
    place = re.match(r"workspaces/([^/]+)/", tail)
    workspace, tail = (place.group(1), tail[place.end():]) if place else ("", tail)
    if tail == "apis":
        return ("all", "", workspace)
    match = re.fullmatch(r"(apis|products)/([^/;]+)(;rev=\d+)?", tail)
    return (("api" if match.group(1) == "apis" else "product"), match.group(2), workspace) if match else None


def _workspace(row: Entity) -> str:
    return str(row.get("Workspace") or "").lower()


def _linked(row: Entity) -> str:
    """The API a product's API link row stands for: its name at the service, its LinkedApiId in a workspace."""
    if not _workspace(row):
        return str(row["Name"]).lower()
    target = _target(str(row.get("LinkedApiId", "")))
    return target[1] if target is not None else ""


def brute_api(world: World, api: str, workspace: str = "") -> dict[str, Any] | None:
    rows = _rows(world)
    live = [r for r in rows if not r["IsDeleted"]]
    api_row = next((r for r in live if r["Kind"] == Kind.API and r["Name"].lower() == api.lower() and _workspace(r) == workspace), None)
    if api_row is None:
        return None
    products = {r["Name"].lower(): r for r in live if r["Kind"] == Kind.PRODUCT and _workspace(r) == workspace}
    containing = sorted(p for p in products if any(r["Kind"] == Kind.PRODUCT_API and r["Product"].lower() == p and _workspace(r) == workspace
                                                   and _linked(r) == api.lower() for r in live))
    grants = []
    for sub in (r for r in live if r["Kind"] == Kind.SUBSCRIPTION):
        target = _target(sub.get("Scope", ""))
        # the service's all-APIs scope is taken to reach the workspaces' APIs too (Microsoft says nothing: docs/design.md)
        if target in (("all", "", ""), ("all", "", workspace), ("api", api.lower(), workspace)) or (
                target is not None and target[0] == "product" and target[2] == workspace and target[1] in containing):
            grants.append((sub["Name"], sub.get("SubscriptionState") == "active"))
    anyone = [api_row.get("SubscriptionRequired") is False] + [products[p].get("SubscriptionRequired") is False for p in containing]
    return {"products": containing, "callers": sorted(n for n, ok in grants if ok), "apart": sorted(n for n, ok in grants if not ok),
            "anyone": sum(anyone)}


def brute_user(world: World, user: str) -> set[tuple[str, str, str]] | None:
    live = [r for r in _rows(world) if not r["IsDeleted"]]
    subs = [r for r in live if r["Kind"] == Kind.SUBSCRIPTION and r.get("OwnerId", "").lower().endswith(f"/users/{user.lower()}")]
    if not subs and not any(r["Kind"] == Kind.USER and r["Name"].lower() == user.lower() for r in live):
        return None
    products = {(_workspace(r), r["Name"].lower()) for r in live if r["Kind"] == Kind.PRODUCT}
    found = set()
    for sub in subs:
        target = _target(sub.get("Scope", ""))
        if target is not None and target[0] == "all":
            found.add((sub["Name"], "*", target[2]))
        elif target is not None and target[0] == "api":
            found.add((sub["Name"], target[1], target[2]))
        elif target is not None and (target[2], target[1]) in products:
            found |= {(sub["Name"], _linked(r), target[2]) for r in live
                      if r["Kind"] == Kind.PRODUCT_API and r["Product"].lower() == target[1] and _workspace(r) == target[2]}
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories)
def test_access_to_an_api_equals_the_brute_force(inv: dict[str, Any]) -> None:
    world = build(inv)
    for (workspace, api) in ((w, a) for w in WORKSPACES for a in APIS):
        for spelled in (_in(workspace, f"apis/{api}"), _in(workspace, f"apis/{api};rev=2")):  # any revision names the API
            found = api_access(world.store, parse_path(SERVICE, spelled))
            expected = brute_api(world, api, workspace or "")
            if expected is None:
                assert found is None
                continue
            assert found is not None
            assert [str(p["Product"]).lower() for p in found["products"]] == expected["products"]
            assert sorted(g["Subscription"] for g in found["callers"]) == expected["callers"]
            assert sorted(g["Subscription"] for g in found["notCallable"]) == expected["apart"]
            assert len(found["openToAnyone"]) == expected["anyone"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories)
def test_access_of_a_user_equals_the_brute_force(inv: dict[str, Any]) -> None:
    world = build(inv)
    for user in USERS:
        found = user_access(world.store, parse_path(SERVICE, f"users/{user}"))
        expected = brute_user(world, user)
        assert (found is None) == (expected is None)
        if found is not None:
            assert {(i["Subscription"], str(i["Api"]).lower(), i["Workspace"]) for i in found["items"]} == expected
