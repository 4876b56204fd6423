"""Any permutation of a stream, with any event duplicated any number of times, leaves exactly the
inventory (and history) that applying it once in event-time order leaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest
from azure.core.exceptions import ServiceRequestError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import parse_path, parse_service_id, within
from shared.domain.times import parse_time
from shared.ingest.pipeline import EventProcessor
from shared.store.memory import InMemoryStore
from shared.store.ports import Store
from shared.store.workspace_cascade import cascade, unfinished
from tests.conftest import table_repo
from tests.support import (
    CLOCK,
    PREFIX,
    SERVICE_ID,
    T0,
    comparable_history,
    comparable_rows,
    event,
    history_records,
    inventory_rows,
    processor_over,
    rejected_records,
)
from tests.test_counts import Crashing

SERVICE = parse_service_id(SERVICE_ID)

# (type suffix, subject): parents and children, so that cascades and revivals are exercised.
TEMPLATES: list[tuple[str, str]] = [
    ("APICreated", "/apis/orders"), ("APIUpdated", "/apis/orders"), ("APIDeleted", "/apis/orders"),
    ("APICreated", "/apis/orders;rev=2"), ("APIUpdated", "/apis/Orders;Rev=2"), ("APIDeleted", "/apis/orders;rev=2"),
    ("APIReleaseCreated", "/apis/orders/releases/r1"), ("APIReleaseUpdated", "/apis/ORDERS/releases/r1"),
    ("GatewayCreated", "/gateways/edge"), ("GatewayUpdated", "/gateways/Edge"), ("GatewayDeleted", "/gateways/edge"),
    ("GatewayAPIAdded", "/gateways/edge/apis/orders"), ("GatewayAPIRemoved", "/gateways/edge/apis/orders"),
    ("GatewayHostnameConfigurationCreated", "/gateways/edge/hostnameConfigurations/h1"),
    ("GatewayCertificateAuthorityUpdated", "/gateways/edge/certificateAuthorities/ca1"),
    ("GatewayTokenNearExpiry", "/gateways/edge/pod-1"), ("GatewayTokenExpired", "/gateways/edge/pod-1"),
    ("UserCreated", "/users/alice"), ("UserDeleted", "/users/alice"), ("UserUpdated", "/users/Alice"),
    ("CircuitBreaker.Opened", "/backends/payments/circuit-breaker/rules/r1"),
    ("CircuitBreaker.Closed", "/backends/payments/circuit-breaker/rules/r1"),
]

streams = st.lists(
    st.tuples(st.integers(0, len(TEMPLATES) - 1), st.integers(0, 12), st.sampled_from(["cloud", "eventgrid"])),
    min_size=1, max_size=18,
)


def build(spec: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    events = []
    for n, (template, second, schema) in enumerate(spec):
        suffix, subject = TEMPLATES[template]
        events.append(event(suffix, subject, at=second, event_id=f"e{n:03d}", schema=schema))
    return events


def delivery(events: list[dict[str, Any]], data: st.DataObject) -> list[dict[str, Any]]:
    stream = data.draw(st.permutations(events))
    dups = data.draw(st.lists(st.sampled_from(events), max_size=6))
    for dup in dups:
        stream.insert(data.draw(st.integers(0, len(stream))), dup)
    return stream


def in_time_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["time"] if "time" in e else e["eventTime"], e["id"]))


def run(processor: EventProcessor, events: list[dict[str, Any]]) -> None:
    for payload in events:
        processor.handle(decode_event(payload))


@pytest.mark.unit
@pytest.mark.slow  # 500 examples
@settings(max_examples=500, deadline=None)
@given(spec=streams, data=st.data())
def test_converges_in_memory(spec: list[tuple[int, int, str]], data: st.DataObject) -> None:
    events = build(spec)
    expected, actual = InMemoryStore(), InMemoryStore()
    run(processor_over(expected, CLOCK.now), in_time_order(events))
    run(processor_over(actual, CLOCK.now), delivery(events, data))
    assert comparable_rows(inventory_rows(actual)) == comparable_rows(inventory_rows(expected))
    assert comparable_history(history_records(actual)) == comparable_history(history_records(expected))
    assert not rejected_records(actual)
    # Every live row, of every kind (a backend named only by its rules' breaker events too), says when it last changed.
    assert [r["Path"] for r in inventory_rows(actual) if not r["IsDeleted"] and "UpdatedAt" not in r] == []


@pytest.mark.slow  # 50 examples on Azurite
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=streams, data=st.data())
def test_converges_on_azurite(azurite: Azurite, spec: list[tuple[int, int, str]], data: st.DataObject) -> None:
    events = build(spec)
    expected = InMemoryStore()
    run(processor_over(expected, CLOCK.now), in_time_order(events))
    actual = table_repo(azurite)
    run(processor_over(actual, CLOCK.now), delivery(events, data))
    assert comparable_rows(inventory_rows(actual)) == comparable_rows(inventory_rows(expected))
    assert comparable_history(history_records(actual)) == comparable_history(history_records(expected))


@pytest.mark.unit
def test_cascade_scenario_by_hand(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    """The cases the issue names, spelled out: an old child event after its parent's deletion stays
    deleted, an Updated older than a Deleted leaves it deleted, a newer Created revives it."""
    late_child = event("APIReleaseUpdated", "/apis/orders/releases/r1", at=5)
    run(memory_processor, [
        event("APICreated", "/apis/orders", at=1),
        event("APIDeleted", "/apis/orders", at=10),
        late_child,
        event("APIUpdated", "/apis/orders", at=8),
        event("UserDeleted", "/users/bob", at=20),
        event("UserCreated", "/users/bob", at=30),
    ])
    rows = {r["Path"]: r for r in inventory_rows(memory_store)}
    assert rows["apis/orders"]["IsDeleted"] is True
    assert rows["apis/orders/releases/r1"]["IsDeleted"] is True
    assert rows["apis/orders/releases/r1"]["LastEventType"] == "Microsoft.ApiManagement.APIDeleted"
    assert rows["apis/orders/releases/r1"]["UpdatedAt"] < rows["apis/orders"]["DeletedAt"]
    assert rows["users/bob"]["IsDeleted"] is False and "DeletedAt" not in rows["users/bob"]


@pytest.mark.unit
def test_created_and_updated_times_by_hand(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    """UpdatedAt on every row seen live, whatever its kind; deletions leave it; CreatedAt only from a Created event."""
    run(memory_processor, [
        event("CircuitBreaker.Opened", "/backends/payments/circuit-breaker/rules/r1", at=3),
        event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=4),
        event("UserCreated", "/users/bob", at=1), event("UserDeleted", "/users/bob", at=5), event("UserUpdated", "/users/bob", at=2),
        event("UserDeleted", "/users/carol", at=6),
    ])
    rows = {r["Path"]: r for r in inventory_rows(memory_store)}
    at = {second: T0 + timedelta(seconds=second) for second in range(7)}
    for path, second in (("backends/payments", 3), ("backends/payments/circuit-breaker/rules/r1", 3), ("gateways/edge/instances/pod-1", 4)):
        assert rows[path]["UpdatedAt"] == at[second] and "CreatedAt" not in rows[path], path
    bob = rows["users/bob"]
    assert (bob["CreatedAt"], bob["UpdatedAt"], bob["DeletedAt"], bob["IsDeleted"]) == (at[1], at[2], at[5], True)
    assert "UpdatedAt" not in rows["users/carol"] and "CreatedAt" not in rows["users/carol"]  # never seen live


# -- workspaces -----------------------------------------------------------------------------------------------------
# Workspace resources beside the same names at the service level and in a second workspace, and the workspaces'
# rows as the sync writes them: listed (alive), or gone (deleted, then cascaded: shared.store.workspace_cascade).

WS_TEMPLATES: list[tuple[str, str]] = [
    ("APICreated", "/workspaces/w1/apis/orders"), ("APIUpdated", "/workspaces/W1/apis/orders;rev=2"),
    ("APIDeleted", "/workspaces/w1/apis/orders"), ("APIReleaseCreated", "/workspaces/w1/apis/orders/releases/r1"),
    ("ProductCreated", "/workspaces/w1/products/starter"), ("ProductDeleted", "/workspaces/w1/products/starter"),
    ("SubscriptionUpdated", "/workspaces/w1/subscriptions/s1"), ("SubscriptionDeleted", "/workspaces/w1/subscriptions/s1"),
    ("CircuitBreaker.Opened", "/workspaces/w1/backends/payments/circuit-breaker/rules/r1"),
    ("APICreated", "/workspaces/w2/apis/orders"), ("SubscriptionCreated", "/workspaces/w2/subscriptions/s1"),
    ("APICreated", "/apis/orders"), ("APIDeleted", "/apis/orders"), ("APIReleaseCreated", "/apis/orders/releases/r1"),
    ("ProductCreated", "/products/starter"), ("SubscriptionDeleted", "/subscriptions/s1"),
    ("CircuitBreaker.Closed", "/backends/payments/circuit-breaker/rules/r1"),
    ("listed", "w1"), ("gone", "w1"), ("gone", "w1"), ("listed", "w2"), ("gone", "w2"),
]

ws_streams = st.lists(
    st.tuples(st.integers(0, len(WS_TEMPLATES) - 1), st.integers(0, 12), st.sampled_from(["cloud", "eventgrid"])),
    min_size=1, max_size=22,
)


@dataclass(frozen=True)
class WorkspaceRow:
    """The sync's write of a workspace's row: listed (alive) or gone (deleted)."""

    name: str
    gone: bool
    stamp: Stamp


@dataclass(frozen=True)
class Cascade:
    """A cascade of a workspace's deletion; `cut_after` store calls into it the store goes away (None: it completes)."""

    name: str
    cut_after: int | None = None


Action = dict[str, Any] | WorkspaceRow | Cascade


def ws_build(spec: list[tuple[int, int, str]]) -> list[dict[str, Any] | WorkspaceRow]:
    actions: list[dict[str, Any] | WorkspaceRow] = []
    for n, (template, second, schema) in enumerate(spec):
        suffix, subject = WS_TEMPLATES[template]
        if suffix in ("listed", "gone"):
            actions.append(WorkspaceRow(subject, suffix == "gone", Stamp(T0 + timedelta(seconds=second), f"e{n:03d}")))
            continue
        data = None
        if suffix.startswith("CircuitBreaker"):
            parts = subject.strip("/").split("/")
            data = {"backendName": parts[-4], "circuitBreaker": {"rules": {parts[-1]: {"tripDuration": "00:05:00"}}}}
        actions.append(event(suffix, subject, at=second, event_id=f"e{n:03d}", schema=schema, data=data))
    return actions


def stamp_of(action: dict[str, Any] | WorkspaceRow) -> Stamp:
    if isinstance(action, WorkspaceRow):
        return action.stamp
    return Stamp(parse_time(action.get("time", action.get("eventTime")), "time"), action["id"])


def ws_delivery(actions: list[dict[str, Any] | WorkspaceRow], data: st.DataObject) -> list[Action]:
    """Any order, any duplicates; after each deletion of a workspace's row, its cascade somewhere later (as the sync
    runs it, or the next sync finishes it), perhaps first a cascade cut short."""
    stream: list[Action] = list(data.draw(st.permutations(actions)))
    for dup in data.draw(st.lists(st.sampled_from(actions), max_size=6)):
        stream.insert(data.draw(st.integers(0, len(stream))), dup)
    out = list(stream)
    for item in reversed(stream):
        if not (isinstance(item, WorkspaceRow) and item.gone):
            continue
        at = next(i for i in range(len(out) - 1, -1, -1) if out[i] is item) + 1  # after this occurrence of it
        full = data.draw(st.integers(at, len(out)))
        out.insert(full, Cascade(item.name))
        if data.draw(st.booleans()):
            out.insert(data.draw(st.integers(at, full)), Cascade(item.name, data.draw(st.integers(0, 6))))
    return out


def ws_in_time_order(actions: list[dict[str, Any] | WorkspaceRow]) -> list[Action]:
    """Once each, in event-time order, each workspace deletion cascaded at once."""
    out: list[Action] = []
    for action in sorted(actions, key=stamp_of):
        out.append(action)
        if isinstance(action, WorkspaceRow) and action.gone:
            out.append(Cascade(action.name))
    return out


def ws_run(store: Store, actions: list[Action]) -> None:
    processor = processor_over(store, CLOCK.now)
    for action in actions:
        if isinstance(action, WorkspaceRow):
            ref = parse_path(SERVICE, f"workspaces/{action.name}")
            op, kind = (Op.DELETED, "ApimInventory.SyncTombstoned") if action.gone else (Op.SYNCED, "ApimInventory.Synced")
            processor.writer.apply(ref, [Change(ref, op, action.stamp, kind)])
        elif isinstance(action, Cascade):
            target, writer = store, processor.writer
            if action.cut_after is not None:
                crashing = Crashing(store)
                crashing.countdown = action.cut_after
                target, writer = cast(Store, crashing), processor_over(cast(Store, crashing), CLOCK.now).writer
            try:
                cascade(target, target, writer, parse_path(SERVICE, f"workspaces/{action.name}"))
            except ServiceRequestError:
                assert action.cut_after is not None
        else:
            processor.handle(decode_event(action))


def oracle_deleted(actions: list[dict[str, Any] | WorkspaceRow]) -> dict[str, bool]:
    """By brute force: each row named, deleted iff the newest change among its own, its parent's deletions and its
    workspace's deletions is a deletion."""
    changes: dict[str, list[tuple[Stamp, bool]]] = {}  # row key -> (stamp, is a deletion) of its own changes
    for action in actions:
        stamp = stamp_of(action)
        if isinstance(action, WorkspaceRow):
            changes.setdefault(f"workspaces/{action.name}", []).append((stamp, action.gone))
            continue
        ref = parse_path(SERVICE, action["subject"])
        suffix = action.get("type", action.get("eventType", "")).removeprefix(PREFIX)
        changes.setdefault(ref.key, []).append((stamp, suffix.endswith("Deleted")))
        if ref.kind is Kind.CIRCUIT_BREAKER_RULE:  # the event names the backend too: it exists
            changes.setdefault(parse_path(SERVICE, within(ref.workspace, f"backends/{ref.segments[1]}")).key, []).append((stamp, False))
    verdict: dict[str, bool] = {}
    for key, own in changes.items():
        ref = parse_path(SERVICE, key)
        inherited = [c for c in changes.get(ref.parent.key, []) if c[1]] if ref.parent is not None else []
        if ref.workspace_ref is not None:
            inherited += [c for c in changes.get(ref.workspace_ref.key, []) if c[1]]
        verdict[key] = max(own + inherited)[1]
    return verdict


def check_workspace_convergence(actual: Store, actions: list[dict[str, Any] | WorkspaceRow]) -> None:
    expected = InMemoryStore()
    ws_run(expected, ws_in_time_order(actions))
    assert comparable_rows(inventory_rows(actual)) == comparable_rows(inventory_rows(expected))
    assert comparable_history(history_records(actual)) == comparable_history(history_records(expected))
    assert not rejected_records(actual)
    rows = {r["Path"].lower(): r for r in inventory_rows(actual)}
    assert {key: row["IsDeleted"] for key, row in rows.items()} == oracle_deleted(actions)
    assert [k for k, r in rows.items() if r["Kind"] == "workspace" and unfinished(r)] == []


@pytest.mark.unit
@pytest.mark.slow  # 300 examples
@settings(max_examples=300, deadline=None)
@given(spec=ws_streams, data=st.data())
def test_workspaces_converge_in_memory(spec: list[tuple[int, int, str]], data: st.DataObject) -> None:
    actions = ws_build(spec)
    actual = InMemoryStore()
    ws_run(actual, ws_delivery(actions, data))
    check_workspace_convergence(actual, actions)


@pytest.mark.slow  # 30 examples on Azurite
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=ws_streams, data=st.data())
def test_workspaces_converge_on_azurite(azurite: Azurite, spec: list[tuple[int, int, str]], data: st.DataObject) -> None:
    actions = ws_build(spec)
    actual = table_repo(azurite)
    ws_run(actual, ws_delivery(actions, data))
    check_workspace_convergence(actual, actions)
