"""The inventory the scale benchmark measures: a realistic mix of resources (mostly users and subscriptions, some
APIs with revisions and releases, products, gateways with their children and instances, backends with rules, a
tenth deleted) and about ten events per resource, spread over a year, as APIM delivers them."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SERVICE = ("/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench"
           "/providers/Microsoft.ApiManagement/service/apim-scale")
PREFIX = "Microsoft.ApiManagement."
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SPAN = timedelta(days=365)
EVENTS_PER_RESOURCE = 10
FLAGGED_TOKENS, OPEN_BREAKERS = 6, 4  # the same in every size, so `flags` answers the same amount at any scale
EXPIRING_SOON = 20  # subscriptions that expire within 30 days, in every size: with the flagged tokens, what `expiring` answers


@dataclass(frozen=True)
class Resource:
    subject: str  # "/users/u-000001"
    created: str  # the event type suffix of its creation, updates and deletion
    updated: str
    deleted: str | None


def mix(rows: int) -> list[Resource]:
    """About `rows` resources: 50% users, 30% subscriptions, 9% APIs with their revisions and releases, 3% products,
    3% gateways with API links, hostname configurations and instances, 4% backends' circuit-breaker rules."""
    out: list[Resource] = []
    for i in range(round(rows * 0.50)):
        out.append(Resource(f"/users/u-{i:07d}", "UserCreated", "UserUpdated", "UserDeleted"))
    for i in range(round(rows * 0.30)):
        out.append(Resource(f"/subscriptions/s-{i:07d}", "SubscriptionCreated", "SubscriptionUpdated", "SubscriptionDeleted"))
    for i in range(max(1, round(rows * 0.03))):  # each API: itself, a second revision, a release
        out.append(Resource(f"/apis/api-{i:06d}", "APICreated", "APIUpdated", "APIDeleted"))
        out.append(Resource(f"/apis/api-{i:06d};rev=2", "APICreated", "APIUpdated", None))
        out.append(Resource(f"/apis/api-{i:06d}/releases/rel-1", "APIReleaseCreated", "APIReleaseUpdated", "APIReleaseDeleted"))
    for i in range(max(1, round(rows * 0.03))):
        out.append(Resource(f"/products/p-{i:06d}", "ProductCreated", "ProductUpdated", "ProductDeleted"))
    for i in range(max(1, round(rows * 0.005))):  # each gateway: itself, an API link, a hostname configuration, 3 instances
        gateway = f"/gateways/gw-{i:05d}"
        out.append(Resource(gateway, "GatewayCreated", "GatewayUpdated", "GatewayDeleted"))
        out.append(Resource(f"{gateway}/apis/api-{i % 100:06d}", "GatewayAPIAdded", "GatewayAPIAdded", "GatewayAPIRemoved"))
        out.append(Resource(f"{gateway}/hostnameConfigurations/h1", "GatewayHostnameConfigurationCreated",
                            "GatewayHostnameConfigurationUpdated", "GatewayHostnameConfigurationDeleted"))
        for pod in range(3):
            out.append(Resource(f"{gateway}/pod-{pod}", "GatewayTokenNearExpiry", "GatewayTokenNearExpiry", None))
    for i in range(max(1, round(rows * 0.04))):  # backends' circuit-breaker rules (backends have no events)
        out.append(Resource(f"/backends/b-{i:06d}/circuit-breaker/rules/r5xx", "CircuitBreaker.Opened", "CircuitBreaker.Closed", None))
    return out


def subscription_expiry(n: int) -> datetime | None:
    """The ExpirationDate a read of ARM gives subscription s-{n}: every tenth has one (none of them deleted by
    `events`), the first EXPIRING_SOON of those within 30 days, the others 60 days to two years ahead."""
    if n % 10 != 3:
        return None
    return NOW + (timedelta(days=1 + n // 10) if n // 10 < EXPIRING_SOON else timedelta(days=60 + n % 700))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _data(suffix: str, subject: str, flagged: bool) -> dict[str, object]:
    parts = subject.strip("/").split("/")
    if suffix.startswith("GatewayToken"):
        expiry = NOW + (timedelta(days=3) if flagged else timedelta(days=400))
        return {"gatewayInfo": {"gatewayId": f"{SERVICE}/gateways/{parts[1]}", "instanceId": parts[2]},
                "tokenInfo": {"expiresAtUtc": _iso(expiry)}}
    if suffix.startswith("CircuitBreaker"):
        return {"backendName": parts[1], "circuitBreaker": {"rules": {parts[4]: {"tripDuration": "00:05:00"}}}}
    return {"resourceUri": SERVICE + subject}


def events(resources: list[Resource], seed: int = 13) -> Iterator[str]:
    """About EVENTS_PER_RESOURCE events per resource over the year before NOW, oldest first per resource; a tenth of
    the resources (those with a deletion event) end deleted. Each is a CloudEvent as Event Grid delivers it."""
    rng = random.Random(seed)
    tokens = breakers = 0
    for n, resource in enumerate(resources):
        count = rng.randint(EVENTS_PER_RESOURCE // 2, EVENTS_PER_RESOURCE * 3 // 2)
        times = sorted(NOW - SPAN * rng.random() for _ in range(count))
        deleted = resource.deleted is not None and n % 10 == 0
        flagged = False
        if resource.created.startswith("GatewayToken"):
            flagged, tokens = tokens < FLAGGED_TOKENS, tokens + 1
        elif resource.created.startswith("CircuitBreaker"):  # opened and closed in turn; a few left open
            flagged, breakers = breakers < OPEN_BREAKERS, breakers + 1
            count = len(times) - (1 - len(times) % 2 if flagged else len(times) % 2)  # odd: ends opened
            times = times[:max(count, 1)]
        for k, moment in enumerate(times):
            if resource.created.startswith("CircuitBreaker"):
                suffix = resource.created if k % 2 == 0 else resource.updated
            else:
                suffix = resource.created if k == 0 else resource.deleted if deleted and k == len(times) - 1 and resource.deleted else resource.updated
            yield json.dumps({"specversion": "1.0", "id": f"e-{n}-{k}", "source": SERVICE, "subject": resource.subject,
                              "type": PREFIX + suffix, "time": _iso(moment), "data": _data(suffix, resource.subject, flagged)})
