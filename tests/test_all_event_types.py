"""Every one of the 30 APIM event types, in both schemas, through the indexed function into Azurite."""

from __future__ import annotations

import pytest
from azure.eventgrid import SystemEventNames

from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.domain.event_types import ALIASES, CANONICAL_TYPES, canonical_type
from shared.domain.outcomes import Outcome
from shared.ingest.handlers import HANDLERS
from shared.ingest.pipeline import EventProcessor
from shared.store.memory import InMemoryStore
from tests.support import PREFIX, SUBJECTS, event, history_records, inventory_rows

KIND_BY_TYPE = {
    "User": "user", "APIRelease": "apiRelease", "API": "api", "Product": "product", "Subscription": "subscription",
    "GatewayAPI": "gatewayApi", "GatewayCertificateAuthority": "gatewayCertificateAuthority",
    "GatewayHostnameConfiguration": "gatewayHostnameConfiguration", "GatewayToken": "gatewayInstance",
    "Gateway": "gateway", "CircuitBreaker": "circuitBreakerRule",
}


def expected_kind(suffix: str) -> str:
    return next(kind for prefix, kind in KIND_BY_TYPE.items() if suffix.startswith(prefix))


@pytest.mark.unit
def test_router_covers_exactly_the_30_canonical_types() -> None:
    assert len(CANONICAL_TYPES) == 30
    assert set(HANDLERS) == set(CANONICAL_TYPES)
    assert {PREFIX + s for s in SUBJECTS} == set(CANONICAL_TYPES)
    assert all(canonical_type(alias) == target for alias, target in ALIASES.items())


@pytest.mark.unit
def test_the_type_names_written_in_the_domain_are_azure_eventgrids() -> None:
    """The domain spells the 30 names out (it imports no Azure package); the SDK's list is the reference."""
    published = [name.value for name in SystemEventNames if name.name.startswith("ApiManagement")]
    assert sorted(CANONICAL_TYPES) == sorted(published) and len(published) == 30
    assert set(ALIASES.values()) <= set(published)


@pytest.mark.parametrize("schema", ["cloud", "eventgrid"])
@pytest.mark.parametrize("suffix", sorted(SUBJECTS))
def test_each_type_lands_as_a_row(app_processor: EventProcessor, suffix: str, schema: str) -> None:
    apim_events = indexed_function("apim_events")
    payload = event(suffix, schema=schema)
    apim_events(decode_event(payload))
    rows = list(inventory_rows(bootstrap.services().store))
    kind = expected_kind(suffix)
    mine = [r for r in rows if r["Kind"] == kind]
    assert len(mine) == 1, rows
    row = mine[0]
    assert row["LastEventId"] == payload["id"]
    assert row["LastEventType"] == PREFIX + suffix
    deleted = suffix.endswith(("Deleted", "Removed"))
    assert row["IsDeleted"] is deleted
    assert row["Service"] == "contoso"
    assert row["SchemaVersion"] == 1
    assert row["Path"].lower() == SUBJECTS[suffix].strip("/").lower().replace("/pod-1", "/instances/pod-1")
    if suffix.startswith("GatewayToken"):
        assert row["TokenStatus"] == ("expired" if suffix.endswith("Expired") else "nearExpiry")
        assert row["Gateway"] == "edge" and row["Instance"] == "pod-1"
    if suffix.startswith("CircuitBreaker"):
        assert row["BreakerState"] == ("open" if suffix.endswith("Opened") else "closed")
        assert row["TripDuration"] == "00:05:00"
        backends = [r for r in rows if r["Kind"] == "backend"]
        assert [b["Name"] for b in backends] == ["payments"]
    (record,) = history_records(bootstrap.services().store)
    assert record["EventId"] == payload["id"] and record["ResourceKind"] == kind


@pytest.mark.unit
@pytest.mark.parametrize("spelling", [
    "Microsoft.APIManagement.UserCreated", "microsoft.apimanagement.usercreated", "MICROSOFT.APIMANAGEMENT.USERCREATED",
])
def test_event_types_match_case_insensitively(memory_processor: EventProcessor, memory_store: InMemoryStore, spelling: str) -> None:
    result = memory_processor.handle(decode_event(event("UserCreated", event_type=spelling)))
    assert result.outcome is Outcome.APPLIED
    (row,) = inventory_rows(memory_store)
    assert row["LastEventType"] == "Microsoft.ApiManagement.UserCreated"


@pytest.mark.unit
@pytest.mark.parametrize("legacy", sorted(a for a in ALIASES if "SelfHostedGateway" in a))
def test_legacy_self_hosted_gateway_names_route_like_their_twins(memory_processor: EventProcessor, memory_store: InMemoryStore, legacy: str) -> None:
    twin = ALIASES[legacy].removeprefix(PREFIX)
    result = memory_processor.handle(decode_event(event(twin, event_type=legacy, schema="eventgrid")))
    assert result.outcome is Outcome.APPLIED
    (row,) = [r for r in inventory_rows(memory_store) if r["Kind"] == expected_kind(twin)]
    assert row["LastEventType"] == ALIASES[legacy]
