"""Workspace-scoped events, in the form designed for them (Microsoft documents none: docs/design.md, "A workspace
event's path"): the service's source/topic, a subject `/workspaces/{w}/apis/{a}` and so on, and a `resourceUri` of
`{service id}/workspaces/{w}/…`. They land on the workspace's rows through the same handler table, in both schemas,
decoded by the Functions library's converter, on the in-memory store and on Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.worker import decode_event
from shared.domain.outcomes import Outcome
from shared.ingest.pipeline import EventProcessor, Result
from shared.queries.inventory import InventoryQueries
from shared.store.memory import InMemoryStore
from shared.store.ports import Store
from tests.conftest import table_repo
from tests.support import CLOCK, PREFIX, SERVICE_ID, event, history_records, inventory_rows, processor_over, rejected_records

WS = "/workspaces/wks1"
OTHER_SERVICE = SERVICE_ID.replace("/service/contoso", "/service/fabrikam")

# Every event type whose resource a workspace can hold, with a workspace subject, and the row's kind.
WORKSPACE_SUBJECTS: dict[str, tuple[str, str]] = {
    "APICreated": (f"{WS}/apis/orders", "api"), "APIUpdated": (f"{WS}/apis/orders;Rev=2", "api"),
    "APIDeleted": (f"{WS}/apis/orders", "api"),
    "APIReleaseCreated": (f"{WS}/apis/orders/releases/r1", "apiRelease"),
    "APIReleaseUpdated": (f"{WS}/apis/orders/releases/r1", "apiRelease"),
    "APIReleaseDeleted": (f"{WS}/apis/orders/releases/r1", "apiRelease"),
    "ProductCreated": (f"{WS}/products/starter", "product"), "ProductUpdated": (f"{WS}/products/starter", "product"),
    "ProductDeleted": (f"{WS}/products/starter", "product"),
    "SubscriptionCreated": (f"{WS}/subscriptions/sub1", "subscription"),
    "SubscriptionUpdated": (f"{WS}/subscriptions/sub1", "subscription"),
    "SubscriptionDeleted": (f"{WS}/subscriptions/sub1", "subscription"),
    "CircuitBreaker.Opened": (f"{WS}/backends/payments/circuit-breaker/rules/r5xx", "circuitBreakerRule"),
    "CircuitBreaker.Closed": (f"{WS}/backends/payments/circuit-breaker/rules/r5xx", "circuitBreakerRule"),
}


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("azurite", marks=pytest.mark.azurite)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore()
    else:
        yield table_repo(request.getfixturevalue("azurite"))


@pytest.fixture
def processor(store: Store) -> EventProcessor:
    return processor_over(store, CLOCK.now)


def breaker_data(backend: str, rules: dict[str, Any]) -> dict[str, Any]:
    return {"backendName": backend, "circuitBreaker": {"rules": rules}}


def send(processor: EventProcessor, *payloads: dict[str, Any]) -> list[Result]:
    return [processor.handle(decode_event(payload)) for payload in payloads]


def rows_by_path(store: Store) -> dict[str, dict[str, Any]]:
    return {r["Path"]: r for r in inventory_rows(store)}


@pytest.mark.parametrize("schema", ["cloud", "eventgrid"])
@pytest.mark.parametrize("suffix", sorted(WORKSPACE_SUBJECTS))
def test_each_workspace_event_lands_on_the_workspaces_row(store: Store, processor: EventProcessor, suffix: str, schema: str) -> None:
    subject, kind = WORKSPACE_SUBJECTS[suffix]
    data = breaker_data("payments", {"r5xx": {"tripDuration": "00:05:00"}}) if suffix.startswith("CircuitBreaker") else None
    payload = event(suffix, subject, schema=schema, data=data)
    (result,) = send(processor, payload)
    assert result.outcome is Outcome.APPLIED, result
    rows = inventory_rows(store)
    (row,) = [r for r in rows if r["Kind"] == kind]
    path = subject.strip("/").replace(";Rev=", ";rev=")  # a revision's suffix is written one way
    assert row["Path"] == path
    assert row["Workspace"] == "wks1" and row["Service"] == "contoso"
    assert row["ResourceId"] == f"{SERVICE_ID}/{path}"
    assert row["RowKey"].startswith("workspaces|wks1|")
    assert row["LastEventId"] == payload["id"] and row["LastEventType"] == PREFIX + suffix
    assert row["IsDeleted"] is suffix.endswith("Deleted")
    assert all(r["Workspace"] == "wks1" for r in rows)  # nothing at the service level
    (record,) = history_records(store)
    assert record["EventId"] == payload["id"] and record["ResourceKind"] == kind and record["RowKey"].startswith("~h|workspaces|wks1|")


@pytest.mark.parametrize("schema", ["cloud", "eventgrid"])
@pytest.mark.parametrize(("subject", "uri", "reason"), [
    (f"{WS}/apis/orders", f"{SERVICE_ID}/apis/orders", "subject-mismatch"),  # a workspace subject, a service-level id
    ("/apis/orders", f"{SERVICE_ID}{WS}/apis/orders", "subject-mismatch"),  # and the other way round
    (f"{WS}/apis/orders", f"{SERVICE_ID}/workspaces/wks2/apis/orders", "subject-mismatch"),  # another workspace
    (f"{WS}/apis/orders", f"{OTHER_SERVICE}{WS}/apis/orders", "service-mismatch"),
])
def test_subject_and_resource_uri_must_name_the_same_workspace_resource(store: Store, processor: EventProcessor, schema: str,
                                                                         subject: str, uri: str, reason: str) -> None:
    (result,) = send(processor, event("APICreated", subject, schema=schema, data={"resourceUri": uri}))
    assert (result.outcome, result.reason) == (Outcome.REJECTED, reason)
    assert inventory_rows(store) == []
    (rejected,) = rejected_records(store)
    assert rejected["Reason"] == reason and rejected["Subject"] == subject


@pytest.mark.parametrize(("suffix", "subject"), [
    ("UserCreated", f"{WS}/users/alice"), ("GatewayCreated", f"{WS}/gateways/edge"),
    ("GatewayAPIAdded", f"{WS}/gateways/edge/apis/orders"),
])
def test_kinds_a_workspace_cannot_hold_are_rejected_with_the_reason(store: Store, processor: EventProcessor, suffix: str,
                                                                   subject: str) -> None:
    (result,) = send(processor, event(suffix, subject))
    assert (result.outcome, result.reason) == (Outcome.REJECTED, "bad-subject")
    assert result.message is not None and "workspace 'wks1'" in result.message and subject in result.message
    assert inventory_rows(store) == []
    assert [r["Reason"] for r in rejected_records(store)] == ["bad-subject"]


@pytest.mark.parametrize("schema", ["cloud", "eventgrid"])
def test_circuit_breaker_events_of_a_workspace_backend_land_on_its_backend_and_rules(store: Store, processor: EventProcessor,
                                                                                    schema: str) -> None:
    rules = {"r5xx": {"tripDuration": "00:05:00"}, "Timeouts": {"tripDuration": "00:01:00"}}
    send(processor,
         event("CircuitBreaker.Opened", f"{WS}/backends/payments/circuit-breaker/rules/r5xx", at=1, schema=schema,
               data=breaker_data("payments", rules)),
         event("CircuitBreaker.Closed", f"{WS}/backends/payments/circuit-breaker/rules/r5xx", at=2, schema=schema,
               data=breaker_data("payments", {"r5xx": {"tripDuration": "00:05:00"}})))
    rows = rows_by_path(store)
    assert set(rows) == {f"workspaces/wks1/backends/payments{rule}" for rule in
                         ("", "/circuit-breaker/rules/r5xx", "/circuit-breaker/rules/Timeouts")}
    backend = rows["workspaces/wks1/backends/payments"]
    assert (backend["Kind"], backend["Workspace"], backend["IsDeleted"]) == ("backend", "wks1", False)
    assert rows["workspaces/wks1/backends/payments/circuit-breaker/rules/r5xx"]["BreakerState"] == "closed"
    timeouts = rows["workspaces/wks1/backends/payments/circuit-breaker/rules/Timeouts"]
    assert (timeouts["BreakerState"], timeouts["TripDuration"], timeouts["Backend"], timeouts["Workspace"]) == ("open", "00:01:00", "payments", "wks1")
    # A breaker event naming another backend in its data than its subject's is refused, as at the service.
    (result,) = send(processor, event("CircuitBreaker.Opened", f"{WS}/backends/payments/circuit-breaker/rules/r5xx", at=3,
                                      data=breaker_data("billing", {})))
    assert (result.outcome, result.reason) == (Outcome.REJECTED, "subject-mismatch")


def test_deleting_a_workspace_api_cascades_to_its_revisions_and_releases_only(store: Store, processor: EventProcessor) -> None:
    created = [(f"{where}/apis/orders{rest}", suffix) for where in (WS, "")
               for rest, suffix in (("", "APICreated"), (";rev=2", "APICreated"), ("/releases/r1", "APIReleaseCreated"))]
    send(processor, *(event(suffix, subject, at=1) for subject, suffix in created))
    send(processor, event("APIDeleted", f"{WS}/apis/orders", at=5),
         event("APIReleaseUpdated", f"{WS}/apis/orders/releases/r1", at=3))  # late: older than the deletion
    rows = rows_by_path(store)
    assert len(rows) == 6
    for path, row in rows.items():
        in_workspace = path.startswith("workspaces/wks1/")
        assert row["IsDeleted"] is in_workspace, path
        assert row["Workspace"] == ("wks1" if in_workspace else "")
    assert rows["workspaces/wks1/apis/orders/releases/r1"]["LastEventType"] == PREFIX + "APIDeleted"
    assert rows["workspaces/wks1/apis/orders;rev=2"]["LastEventType"] == PREFIX + "APIDeleted"


@pytest.mark.parametrize("schema", ["cloud", "eventgrid"])
def test_a_service_api_and_a_workspace_api_of_one_name_stay_two_rows(store: Store, processor: EventProcessor, schema: str) -> None:
    service_level, in_workspace = "/apis/orders", f"{WS}/apis/orders"
    send(processor, event("APICreated", service_level, at=1, schema=schema), event("APICreated", in_workspace, at=2, schema=schema))
    rows = rows_by_path(store)
    assert set(rows) == {"apis/orders", "workspaces/wks1/apis/orders"}
    assert rows["apis/orders"]["PartitionKey"] == rows["workspaces/wks1/apis/orders"]["PartitionKey"]  # one bucket, two rows
    assert rows["apis/orders"]["RowKey"] != rows["workspaces/wks1/apis/orders"]["RowKey"]

    send(processor, event("APIDeleted", in_workspace, at=3, schema=schema))  # deleting one leaves the other
    rows = rows_by_path(store)
    assert (rows["apis/orders"]["IsDeleted"], rows["workspaces/wks1/apis/orders"]["IsDeleted"]) == (False, True)
    send(processor, event("APIUpdated", service_level, at=4, schema=schema), event("APIDeleted", service_level, at=5, schema=schema),
         event("APICreated", in_workspace, at=6, schema=schema))  # and the other way round
    rows = rows_by_path(store)
    assert (rows["apis/orders"]["IsDeleted"], rows["workspaces/wks1/apis/orders"]["IsDeleted"]) == (True, False)
    assert rows["apis/orders"]["LastEventType"] == PREFIX + "APIDeleted"
    assert rows["workspaces/wks1/apis/orders"]["LastEventType"] == PREFIX + "APICreated"

    queries = InventoryQueries(store, store, CLOCK.now)
    service_history = [r["EventType"] for r in queries.history("contoso/apis/orders")]
    workspace_history = [r["EventType"] for r in queries.history(f"{SERVICE_ID}{in_workspace}")]
    assert service_history == [PREFIX + t for t in ("APIDeleted", "APIUpdated", "APICreated")]
    assert workspace_history == [PREFIX + t for t in ("APICreated", "APIDeleted", "APICreated")]
    assert [r["Workspace"] for r in (queries.resource("contoso/apis/orders"), queries.resource("contoso/workspaces/wks1/apis/orders"))] == ["", "wks1"]
