"""Builders for APIM event payloads in both schemas, and helpers to compare inventories."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

SERVICE_ID = (
    "/subscriptions/0b5d1a43-8c3e-4f61-9d2a-5f7e3c1b9a20/resourceGroups/rg-apis"
    "/providers/Microsoft.ApiManagement/service/contoso"
)
PREFIX = "Microsoft.ApiManagement."
T0 = datetime(2026, 11, 2, 9, 0, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)

# A subject for every canonical type (suffix after the prefix).
SUBJECTS: dict[str, str] = {
    "UserCreated": "/users/alice", "UserUpdated": "/users/alice", "UserDeleted": "/users/alice",
    "APICreated": "/apis/orders", "APIUpdated": "/apis/orders;Rev=2", "APIDeleted": "/apis/orders",
    "APIReleaseCreated": "/apis/orders/releases/r1", "APIReleaseUpdated": "/apis/orders/releases/r1",
    "APIReleaseDeleted": "/apis/orders/releases/r1",
    "ProductCreated": "/products/starter", "ProductUpdated": "/products/starter", "ProductDeleted": "/products/starter",
    "SubscriptionCreated": "/subscriptions/sub1", "SubscriptionUpdated": "/subscriptions/sub1",
    "SubscriptionDeleted": "/subscriptions/sub1",
    "GatewayCreated": "/gateways/edge", "GatewayUpdated": "/gateways/edge", "GatewayDeleted": "/gateways/edge",
    "GatewayAPIAdded": "/gateways/edge/apis/orders", "GatewayAPIRemoved": "/gateways/edge/apis/orders",
    "GatewayCertificateAuthorityCreated": "/gateways/edge/certificateAuthorities/ca1",
    "GatewayCertificateAuthorityUpdated": "/gateways/edge/certificateAuthorities/ca1",
    "GatewayCertificateAuthorityDeleted": "/gateways/edge/certificateAuthorities/ca1",
    "GatewayHostnameConfigurationCreated": "/gateways/edge/hostnameConfigurations/h1",
    "GatewayHostnameConfigurationUpdated": "/gateways/edge/hostnameConfigurations/h1",
    "GatewayHostnameConfigurationDeleted": "/gateways/edge/hostnameConfigurations/h1",
    "GatewayTokenNearExpiry": "/gateways/edge/pod-1", "GatewayTokenExpired": "/gateways/edge/pod-1",
    "CircuitBreaker.Opened": "/backends/payments/circuit-breaker/rules/r5xx",
    "CircuitBreaker.Closed": "/backends/payments/circuit-breaker/rules/r5xx",
}


def default_data(suffix: str, subject: str, service: str, time: datetime) -> dict[str, Any]:
    parts = subject.strip("/").split("/")
    if suffix.startswith("GatewayToken"):
        field = "expiredAtUtc" if suffix.endswith("Expired") else "expiresAtUtc"
        expiry = time + (timedelta(days=-1) if suffix.endswith("Expired") else timedelta(days=3))
        return {"gatewayInfo": {"gatewayId": f"{service}/gateways/{parts[1]}", "instanceId": parts[2]},
                "tokenInfo": {field: iso(expiry)}}
    if suffix.startswith("CircuitBreaker"):
        return {"backendName": parts[1], "circuitBreaker": {"rules": {parts[4]: {"tripDuration": "00:05:00"}}}}
    return {"resourceUri": service + subject}


def iso(moment: datetime) -> str:
    """Azure's format, with 7 fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def event(suffix: str, subject: str | None = None, *, at: datetime | float = 0, event_id: str | None = None,
          schema: str = "cloud", service: str = SERVICE_ID, data: dict[str, Any] | None = None,
          event_type: str | None = None) -> dict[str, Any]:
    """One APIM event as Event Grid delivers it. `at` is a datetime or seconds after T0."""
    moment = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    subject = subject if subject is not None else SUBJECTS[suffix]
    body = data if data is not None else default_data(suffix, subject, service, moment)
    full_type = event_type or PREFIX + suffix
    eid = event_id or f"evt-{next(_ids):06d}"
    if schema == "cloud":
        return {"specversion": "1.0", "id": eid, "source": service, "subject": subject, "type": full_type,
                "time": iso(moment), "data": body}
    return {"id": eid, "topic": service, "subject": subject, "eventType": full_type, "eventTime": iso(moment),
            "data": body, "dataVersion": "1", "metadataVersion": "1"}


class ManualClock:
    """The tests' clock: time moves only when a test moves it."""

    def __init__(self, start: datetime = T0 + timedelta(hours=1)) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


CLOCK = ManualClock()  # a fixed clock for tests that do not move time


def comparable_rows(rows: Any) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in rows), key=lambda r: (r["PartitionKey"], r["RowKey"]))


def comparable_history(records: Any) -> list[dict[str, Any]]:
    """History minus what depends on arrival: the Stale mark, when it was recorded, its redeliveries."""
    skip = {"Stale", "RecordedAt", "Duplicates", "LastDuplicateAt"}
    return sorted(({k: v for k, v in r.items() if k not in skip} for r in records), key=lambda r: (r["PartitionKey"], r["RowKey"]))


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


from devtools.store_reads import (  # noqa: E402  (the read helpers live with the dev tools, which use them too)
    count_rows,
    feed_entries,
    history_records,
    inventory_rows,
    pending_entities,
    processor_over,
    rejected_records,
    stored_row,
)

__all__ = ["count_rows", "feed_entries", "history_records", "inventory_rows", "pending_entities", "processor_over", "rejected_records", "stored_row"]


OTHER_IDENTITY_SETTINGS = ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_CLIENT_ID")


def use_standin_identity(arm: Any, monkeypatch: Any) -> None:
    """The managed identity the SDK finds in the environment is the ARM stand-in's, and only that one."""
    for name in OTHER_IDENTITY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in arm.identity_env().items():
        monkeypatch.setenv(name, value)
