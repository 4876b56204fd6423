"""Enrichment on events: the real ARM client and managed-identity credential against the stand-in
management plane, the real function app indexed as the worker does, and Azurite."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.arm_standin import ArmStandIn
from devtools.management_plane import SECRET
from devtools.worker import deliver
from shared import bootstrap
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.store.table import TableStore
from tests.support import SERVICE_ID, T0, ManualClock, event, history_records, inventory_rows, pending_entities, rejected_records

SERVICE = parse_service_id(SERVICE_ID)


def row(services: bootstrap.Services, path: str) -> dict[str, Any]:
    found, _ = services.store.load(parse_path(SERVICE, path), fresh=True)
    assert found is not None, path
    return found.entity


def everything(services: bootstrap.Services) -> list[dict[str, Any]]:
    repo = services.store
    assert isinstance(repo, TableStore)
    pending = pending_entities(repo)
    return [*inventory_rows(repo), *history_records(repo), *rejected_records(repo), *pending]


def test_created_events_bring_the_documented_fields(arm_services: bootstrap.Services, arm: ArmStandIn) -> None:
    names = ["UserCreated", "APICreated", "APIReleaseCreated", "ProductCreated", "SubscriptionCreated", "GatewayCreated",
             "GatewayHostnameConfigurationCreated", "GatewayCertificateAuthorityCreated"]
    deliver([event(name, at=n) for n, name in enumerate(names)])
    deliver([event("APICreated", "/apis/orders;rev=1", at=20)])

    user = row(arm_services, "users/alice")
    assert (user["Email"], user["FirstName"], user["LastName"], user["UserState"]) == ("alice@contoso.example", "Firstalice", "Lastalice", "active")
    assert user["RegistrationDate"].isoformat() == "2026-01-15T10:00:00+00:00"
    current, old = row(arm_services, "apis/orders"), row(arm_services, "apis/orders;rev=1")
    assert (current["DisplayName"], current["ApiPath"], current["Protocols"], current["ApiRevision"], current["IsCurrent"]) == (
        "Orders API", "orders", "https", "2", True)
    assert (current["ApiVersion"], current["ServiceUrl"]) == ("v1", "https://backend.contoso.example/orders")
    assert (old["ApiRevision"], old["IsCurrent"]) == ("1", False)
    assert row(arm_services, "apis/orders/releases/r1")["Notes"] == "Orders v2"
    product = row(arm_services, "products/starter")
    assert (product["SubscriptionRequired"], product["ApprovalRequired"], product["Terms"], product["ProductState"]) == (True, True, "Be nice.", "published")
    sub = row(arm_services, "subscriptions/sub1")
    assert (sub["OwnerId"], sub["SubscriptionState"], sub["DisplayName"]) == (f"{SERVICE_ID}/users/alice", "active", "Starter key")
    assert sub["Scope"].endswith("/products/starter") and sub["ExpirationDate"].year == 2027
    assert row(arm_services, "gateways/edge")["LocationCity"] == "Amsterdam"
    assert row(arm_services, "gateways/edge/hostnameConfigurations/h1")["Hostname"] == "api.contoso.example"
    assert row(arm_services, "gateways/edge/certificateAuthorities/ca1")["IsTrusted"] is True
    assert all(not r.get("EnrichmentPending") for r in inventory_rows(arm_services.store))  # type: ignore[attr-defined]
    # The managed identity was asked for an ARM token, and every ARM call carried it.
    assert arm.token_resources and set(arm.token_resources) == {"https://management.azure.com"}
    assert all(r.headers.get("authorization") == f"Bearer {arm.token}" for r in arm.requests if "/msi/" not in r.path)


def test_no_secret_reaches_any_table(arm_services: bootstrap.Services) -> None:
    deliver([event("SubscriptionCreated", at=1), event("CircuitBreaker.Opened", at=2),
             event("UserCreated", at=3), event("ProductCreated", at=4)])
    assert row(arm_services, "subscriptions/sub1")["DisplayName"] == "Starter key"
    assert row(arm_services, "backends/payments")["Url"] == "https://payments.contoso.example"
    for entity in everything(arm_services):
        for column, value in entity.items():
            assert SECRET not in str(value), f"{column} holds a secret"
            assert "key" not in column.lower() or column in ("PartitionKey", "RowKey", "PathKey", "ServiceKey") or column.endswith("EventKey") or column in (
                "DetailsKey", "EnrichmentFailedKey"), column


def test_breaker_event_reads_the_rule_configuration(arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    opened = event("CircuitBreaker.Opened", at=0, data={"backendName": "payments", "circuitBreaker": {"rules": {"r5xx": {}}}})
    deliver([opened])
    rule = row(arm_services, "backends/payments/circuit-breaker/rules/r5xx")
    assert rule["ConfiguredTripDuration"] == "00:01:00" and "TripDuration" not in rule
    assert rule["ExpectedCloseAt"] == T0 + timedelta(minutes=1)  # from the configuration, since the event had none
    assert '"tripDuration": "00:01:00"' in row(arm_services, "backends/payments")["CircuitBreakerRules"]
    deliver([event("CircuitBreaker.Closed", at=30), event("CircuitBreaker.Opened", at=60)])
    assert len(arm.hits("/backends/payments")) == 1  # a backend's details are read once, not on every breaker event


def test_deleting_a_user_clears_personal_data_and_history_never_holds_it(arm_services: bootstrap.Services) -> None:
    deliver([event("UserCreated", at=0), event("UserUpdated", at=5)])
    assert row(arm_services, "users/alice")["Email"] == "alice@contoso.example"
    deliver([event("UserDeleted", at=10)])
    gone = row(arm_services, "users/alice")
    assert gone["IsDeleted"] and not {"Email", "FirstName", "LastName"} & set(gone)
    assert gone["UserState"] == "active"  # what is not personal stays
    repo = arm_services.store
    assert isinstance(repo, TableStore)
    assert all("alice@contoso.example" not in str(record) and "Firstalice" not in str(record) for record in history_records(repo))


@pytest.mark.unit
def test_personal_data_older_than_the_deletion_never_returns_in_any_order() -> None:
    ref = parse_path(SERVICE, "users/alice")
    at = [T0 + timedelta(seconds=s) for s in range(3)]
    changes = [Change(ref, Op.DETAILS, Stamp(at[0], "arm"), "x", {"Email": "a@x", "FirstName": "A", "UserState": "active"}),
               Change(ref, Op.DELETED, Stamp(at[1], "d"), "Microsoft.ApiManagement.UserDeleted"),
               Change(ref, Op.CREATED, Stamp(at[2], "c"), "Microsoft.ApiManagement.UserCreated")]
    results = []
    for order in itertools.permutations(changes):
        current: dict[str, Any] | None = None
        for change in order:
            current = merge(current, change)
        results.append(current)
    assert all(r == results[0] for r in results)
    assert results[0] is not None and not results[0]["IsDeleted"] and "Email" not in results[0] and results[0]["UserState"] == "active"


@pytest.mark.parametrize(("status", "error"), [(404, "404 ResourceNotFound"), (403, "403 AuthorizationFailed")])
def test_failed_enrichment_keeps_the_event_and_a_later_pass_retries(
        arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock, status: int, error: str) -> None:
    arm.fail("/products/starter", status)
    deliver([event("ProductCreated", at=0)])
    pending = row(arm_services, "products/starter")
    assert pending["LastEventType"].endswith("ProductCreated") and not pending["IsDeleted"]
    assert pending["EnrichmentPending"] is True and pending["EnrichmentError"] == error and "DisplayName" not in pending
    assert pending["EnrichmentRetryAt"] == clock.now() + timedelta(minutes=5)

    assert arm_services.reconciler.run() == []  # the retry time has not come: nothing asked
    assert len(arm.hits("/products/starter")) == 1
    clock.advance(minutes=6)
    arm_services.reconciler.run()
    done = row(arm_services, "products/starter")
    assert done["EnrichmentPending"] is False and done["DisplayName"] == "Starter"


def test_throttling_honours_retry_after(arm_services: bootstrap.Services, arm: ArmStandIn, clock: ManualClock) -> None:
    arm.fail("/users/alice", 429, retry_after="1")  # short: the client waits and asks again
    deliver([event("UserCreated", at=0)])
    first, second = arm.hits("/users/alice")
    assert second.at - first.at >= 0.9 and row(arm_services, "users/alice")["Email"] == "alice@contoso.example"

    arm.fail("/products/starter", 429, retry_after="3600")  # long: the row is marked, the event is not held
    arm.fail("/subscriptions/sub1", 500, times=10)
    deliver([event("ProductCreated", at=1), event("SubscriptionCreated", at=2)])
    product, sub = row(arm_services, "products/starter"), row(arm_services, "subscriptions/sub1")
    assert product["EnrichmentError"] == "429 TooManyRequests" and product["EnrichmentRetryAt"] == clock.now() + timedelta(hours=1)
    assert sub["EnrichmentPending"] and sub["EnrichmentError"].startswith("500")
    assert len(arm.hits("/products/starter")) == 1  # a long Retry-After is not slept through
    clock.advance(minutes=10)
    arm.requests.clear()
    arm_services.reconciler.run()
    assert arm.hits("/subscriptions/sub1") and not arm.hits("/products/starter")  # still inside its Retry-After
    clock.advance(hours=1)
    arm_services.reconciler.run()
    assert row(arm_services, "products/starter")["DisplayName"] == "Starter"


def test_a_resource_deleted_before_enrichment_is_not_pending_once_its_deletion_arrives(arm_services: bootstrap.Services, arm: ArmStandIn) -> None:
    arm.delete(f"{SERVICE_ID}/users/bob")
    deliver([event("UserCreated", "/users/bob", at=0)])
    assert row(arm_services, "users/bob")["EnrichmentPending"] is True
    deliver([event("UserDeleted", "/users/bob", at=1)])
    assert row(arm_services, "users/bob")["EnrichmentPending"] is False


def test_enrichment_off_asks_nothing(app_services: bootstrap.Services, arm: ArmStandIn) -> None:
    deliver([event("UserCreated", at=0), event("ProductCreated", at=1)])
    assert arm.requests == [] and "Email" not in row(app_services, "users/alice")


READS = st.lists(
    st.tuples(st.sampled_from([Op.CREATED, Op.UPDATED, Op.DELETED, Op.SYNCED, Op.DETAILS, Op.ENRICH_FAILED]),
              st.integers(0, 20), st.sampled_from(["a@x", "b@x"])),
    min_size=1, max_size=10, unique_by=lambda c: c[1],  # one change per instant: a stamp names one change
)


@pytest.mark.unit
@pytest.mark.slow  # 300 examples
@settings(max_examples=300, deadline=None)
@given(READS, st.randoms(use_true_random=False))
def test_details_pending_and_personal_data_are_the_same_in_any_order(spec: list[tuple[Op, int, str]], rnd: Any) -> None:
    """A read is applied right after the event that asked for it (enrichment) or the listing that saw the
    resource (a sync), so each read travels with an alive change of its own time; the units, and any
    change redelivered alone, come in any order."""
    ref = parse_path(SERVICE, "users/alice")

    def unit(op: Op, second: int, email: str) -> list[Change]:
        at = Stamp(T0 + timedelta(seconds=second), f"e{second}")
        if op not in (Op.DETAILS, Op.ENRICH_FAILED):
            return [Change(ref, op, at, op.value)]
        values: dict[str, Any] = (
            {"Email": email, "FirstName": email.upper(), "UserState": "active"} if op == Op.DETAILS
            else {"EnrichmentError": "429 TooManyRequests", "EnrichmentRetryAt": at.time + timedelta(seconds=60)})
        read_at = Stamp(at.time + timedelta(milliseconds=500), "arm")
        return [Change(ref, Op.UPDATED, at, "updated"), Change(ref, op, read_at, "read", values)]

    units = [unit(*c) for c in spec]
    every = [change for group in units for change in group]
    shuffled = [change for group in rnd.sample(units, len(units)) for change in group] + rnd.sample(every, len(every) // 2)

    def fold(items: list[Change]) -> dict[str, Any] | None:
        current: dict[str, Any] | None = None
        for item in items:
            current = merge(current, item)
        return current

    in_order, any_order = fold(sorted(every, key=lambda c: c.stamp)), fold(shuffled)
    assert in_order == any_order
    assert in_order is not None
    if in_order["IsDeleted"]:
        assert "Email" not in in_order and not in_order.get("EnrichmentPending")
