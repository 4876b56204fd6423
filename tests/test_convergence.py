"""Any permutation of a stream, with any event duplicated any number of times, leaves exactly the
inventory (and history) that applying it once in event-time order leaves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared.ingest.pipeline import EventProcessor
from shared.store.memory import InMemoryStore
from tests.conftest import table_repo
from tests.support import CLOCK, T0, comparable_history, comparable_rows, event, history_records, inventory_rows, processor_over, rejected_records

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
