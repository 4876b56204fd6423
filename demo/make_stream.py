"""Write demo/stream.json: Event Grid deliveries from two APIM services, deterministically.

contoso-apim's event subscription uses the Event Grid schema and fabrikam-apim's CloudEvents 1.0,
so every delivery (one HTTP POST, a JSON array) holds events of one schema. Run from anywhere:
`python demo/make_stream.py`. The output depends only on SEED and the story below.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261102
OUT = Path(__file__).resolve().parent / "stream.json"
SUB = "6f1c2a0e-1111-4a55-9c1e-0d3b5f1a2b3c"
SERVICES = {
    "c": f"/subscriptions/{SUB}/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim",
    "f": f"/subscriptions/{SUB}/resourceGroups/rg-fabrikam-integration/providers/Microsoft.ApiManagement/service/fabrikam-apim",
    "arm": f"/subscriptions/{SUB}",
}
EVENT_GRID_SCHEMA = {"c", "arm"}
START = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)
P = "Microsoft.ApiManagement."
LEGACY = P + "SelfHostedGateway."
CANONICAL = [P + name for name in (
    "UserCreated", "UserUpdated", "UserDeleted", "APICreated", "APIUpdated", "APIDeleted", "APIReleaseCreated",
    "APIReleaseUpdated", "APIReleaseDeleted", "ProductCreated", "ProductUpdated", "ProductDeleted",
    "SubscriptionCreated", "SubscriptionUpdated", "SubscriptionDeleted", "GatewayCreated", "GatewayUpdated",
    "GatewayDeleted", "GatewayAPIAdded", "GatewayAPIRemoved", "GatewayCertificateAuthorityCreated",
    "GatewayCertificateAuthorityUpdated", "GatewayCertificateAuthorityDeleted", "GatewayHostnameConfigurationCreated",
    "GatewayHostnameConfigurationUpdated", "GatewayHostnameConfigurationDeleted", "GatewayTokenNearExpiry",
    "GatewayTokenExpired", "CircuitBreaker.Opened", "CircuitBreaker.Closed",
)]

Data = Callable[[datetime], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    label: str
    svc: str
    type: str  # a suffix after "Microsoft.ApiManagement.", or a full name
    subject: str
    uri: str | None = None  # data.resourceUri's path when it differs from the subject
    data: Data | None = None  # replaces {"resourceUri": ...}
    before: str | None = None  # delivered just before this label instead of in time order
    after: str | None = None  # delivered just after this label
    dup_after: str | None = None  # delivered again (same id and payload) just after this label
    gap: float = 0.0  # extra seconds since the previous event
    not_before: datetime | None = None


def azure_time(moment: datetime, ticks: int) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ticks:07d}Z"


def token(gateway_id: str, instance: str, key: str, at: timedelta | datetime) -> Data:
    def build(moment: datetime) -> dict[str, Any]:
        when = at if isinstance(at, datetime) else (moment + at).replace(second=0, microsecond=0)
        return {"gatewayInfo": {"gatewayId": gateway_id, "instanceId": instance}, "tokenInfo": {key: azure_time(when, 0)}}

    return build


def breaker(backend: str, rule: str) -> Data:
    return lambda _: {"backendName": backend, "circuitBreaker": {"rules": {rule: {"tripDuration": "00:05:00"}}}}


def story() -> list[Step]:
    F_WAREHOUSE = SERVICES["f"] + "/gateways/gw-warehouse"
    f_expiry = START.replace(day=4, hour=16)
    arm_write: Data = lambda _: {  # noqa: E731
        "operationName": "Microsoft.Web/sites/write", "status": "Succeeded", "resourceProvider": "Microsoft.Web",
        "resourceUri": f"/subscriptions/{SUB}/resourceGroups/rg-apis/providers/Microsoft.Web/sites/apim-inventory-func",
    }
    return [
        Step("c-alice-created", "c", "UserCreated", "/users/alice-contoso-com", dup_after="c-onprem-hc-created"),
        Step("f-dana-created", "f", "UserCreated", "/users/dana-fabrikam-com"),
        Step("f-old-admin-created", "f", "UserCreated", "/users/old-admin"),
        Step("c-orders-created", "c", "APICreated", "/apis/orders"),
        Step("c-starter-created", "c", "Microsoft.APIManagement.ProductCreated", "/products/starter"),
        Step("f-inventory-created", "f", "APICreated", "/apis/inventory"),
        Step("f-scratch-created", "f", "APICreated", "/apis/scratch"),
        Step("c-alice-updated", "c", "UserUpdated", "/users/alice-contoso-com"),
        Step("f-partners-created", "f", "ProductCreated", "/products/partners"),
        Step("f-beta-created", "f", "ProductCreated", "/products/beta"),
        Step("c-alice-sub-created", "c", "SubscriptionCreated", "/subscriptions/alice-starter"),
        Step("c-orders-rev2-created", "c", "APICreated", "/apis/orders;Rev=2", uri="/apis/orders;rev=2"),
        Step("f-dana-updated", "f", "UserUpdated", "/users/dana-fabrikam-com"),
        Step("c-starter-updated", "c", "ProductUpdated", "/products/starter"),
        Step("f-inventory-rev2-created", "f", "APICreated", "/apis/inventory;Rev=2"),
        Step("c-orders-rev2-updated", "c", "APIUpdated", "/apis/orders;Rev=2", uri="/apis/orders;rev=2"),
        Step("c-orders-rel-old-created", "c", "APIReleaseCreated", "/apis/orders/releases/rel-2026-10"),
        Step("f-dana-sub-created", "f", "SubscriptionCreated", "/subscriptions/dana-partners"),
        Step("f-trial-sub-created", "f", "SubscriptionCreated", "/subscriptions/trial-0042"),
        Step("c-legacy-created", "c", "APICreated", "/apis/legacy"),
        Step("c-legacy-rev2-created", "c", "APICreated", "/apis/legacy;Rev=2"),
        Step("f-partners-updated", "f", "ProductUpdated", "/products/partners"),
        Step("c-legacy-rel-created", "c", "APIReleaseCreated", "/apis/legacy/releases/legacy-r1"),
        Step("c-onprem-created", "c", "GatewayCreated", "/gateways/gw-onprem"),
        Step("f-inventory-updated", "f", "APIUpdated", "/apis/inventory"),
        Step("f-inventory-rel-preview", "f", "APIReleaseCreated", "/apis/inventory/releases/preview"),
        Step("c-onprem-api-orders", "c", "GatewayAPIAdded", "/gateways/gw-onprem/apis/orders"),
        Step("c-onprem-api-legacy", "c", "GatewayAPIAdded", "/gateways/gw-onprem/apis/legacy"),
        Step("f-inventory-rel-created", "f", "APIReleaseCreated", "/apis/inventory/releases/go-live"),
        Step("c-onprem-hc-created", "c", "GatewayHostnameConfigurationCreated",
             "/gateways/gw-onprem/hostnameConfigurations/api-contoso-internal"),
        Step("c-onprem-hc-old-created", "c", "GatewayHostnameConfigurationCreated",
             "/gateways/gw-onprem/hostnameConfigurations/legacy-host"),
        Step("c-onprem-ca-created", "c", "GatewayCertificateAuthorityCreated",
             "/gateways/gw-onprem/certificateAuthorities/contoso-root-ca"),
        Step("c-onprem-ca-old-created", "c", "GatewayCertificateAuthorityCreated",
             "/gateways/gw-onprem/certificateAuthorities/old-root-ca"),
        Step("f-warehouse-created", "f", "GatewayCreated", "/gateways/gw-warehouse"),
        Step("c-onprem-updated", "c", "GatewayUpdated", "/gateways/gw-onprem"),
        Step("c-temp-created", "c", "UserCreated", "/users/temp-contractor"),
        Step("f-warehouse-api-inventory", "f", "GatewayAPIAdded", "/gateways/gw-warehouse/apis/inventory"),
        Step("f-warehouse-api-scratch", "f", LEGACY + "API.Added", "/gateways/gw-warehouse/apis/scratch"),
        Step("c-trial-created", "c", "ProductCreated", "/products/trial"),
        Step("c-temp-updated", "c", "UserUpdated", "/users/temp-contractor"),
        Step("f-warehouse-hc-created", "f", "GatewayHostnameConfigurationCreated",
             "/gateways/gw-warehouse/hostnameConfigurations/wh-api"),
        Step("f-warehouse-hc-old-created", "f", "GatewayHostnameConfigurationCreated",
             "/gateways/gw-warehouse/hostnameConfigurations/wh-old"),
        Step("c-lab-created", "c", "GatewayCreated", "/gateways/gw-lab"),
        Step("c-lab-api-orders", "c", "GatewayAPIAdded", "/gateways/gw-lab/apis/orders"),
        Step("f-warehouse-ca-created", "f", "GatewayCertificateAuthorityCreated",
             "/gateways/gw-warehouse/certificateAuthorities/fabrikam-issuing-ca"),
        Step("f-warehouse-ca-old-created", "f", LEGACY + "CertificateAuthority.Created",
             "/gateways/gw-warehouse/certificateAuthorities/fabrikam-old-ca"),
        Step("c-lab-hc-created", "c", "GatewayHostnameConfigurationCreated", "/gateways/gw-lab/hostnameConfigurations/lab-host"),
        Step("c-lab-ca-created", "c", "GatewayCertificateAuthorityCreated", "/gateways/gw-lab/certificateAuthorities/lab-ca"),
        Step("f-warehouse-updated", "f", "GatewayUpdated", "/gateways/gw-warehouse"),
        Step("c-trial-updated", "c", "ProductUpdated", "/products/trial", after="c-trial-deleted"),
        Step("c-temp-deleted", "c", "UserDeleted", "/users/temp-contractor", before="c-temp-created"),
        Step("f-warehouse-hc-updated", "f", LEGACY + "HostnameConfiguration.Updated",
             "/gateways/gw-warehouse/hostnameConfigurations/wh-api"),
        Step("f-warehouse-ca-updated", "f", "GatewayCertificateAuthorityUpdated",
             "/gateways/gw-warehouse/certificateAuthorities/fabrikam-issuing-ca"),
        Step("c-trial-deleted", "c", "ProductDeleted", "/products/trial"),
        Step("c-onprem-hc-updated", "c", "GatewayHostnameConfigurationUpdated",
             "/gateways/gw-onprem/hostnameConfigurations/api-contoso-internal"),
        Step("c-onprem-ca-updated", "c", "GatewayCertificateAuthorityUpdated",
             "/gateways/gw-onprem/certificateAuthorities/contoso-root-ca"),
        Step("f-warehouse-hc-updated2", "f", "GatewayHostnameConfigurationUpdated",
             "/gateways/gw-warehouse/hostnameConfigurations/wh-api"),
        Step("c-temp-sub-created", "c", "SubscriptionCreated", "/subscriptions/temp-trial"),
        Step("f-dana-sub-updated", "f", "SubscriptionUpdated", "/subscriptions/dana-partners"),
        Step("c-lab-hc-updated", "c", "GatewayHostnameConfigurationUpdated", "/gateways/gw-lab/hostnameConfigurations/lab-host",
             after="c-legacy-deleted"),
        Step("c-lab-api-legacy", "c", "GatewayAPIAdded", "/gateways/gw-lab/apis/legacy", after="c-temp-sub-deleted"),
        Step("c-lab-deleted", "c", "GatewayDeleted", "/gateways/gw-lab"),
        Step("f-popup-created", "f", LEGACY + "Created", "/gateways/gw-popup"),
        Step("c-onprem-api-legacy-removed", "c", "GatewayAPIRemoved", "/gateways/gw-onprem/apis/legacy"),
        Step("c-legacy-rel-updated", "c", "APIReleaseUpdated", "/apis/legacy/releases/legacy-r1", after="c-alice-sub-updated"),
        Step("c-legacy-deleted", "c", "APIDeleted", "/apis/legacy", dup_after="c-orders-rel-updated"),
        Step("c-bad-uri", "c", "APIReleaseCreated", "/apis/orders/releases/hotfix",
             data=lambda _: {"resourceUri": SERVICES["c"].replace("/service/", "/") + "/apis/orders/releases/hotfix"}),
        Step("f-popup-deleted", "f", "GatewayDeleted", "/gateways/gw-popup"),
        Step("c-temp-sub-deleted", "c", "SubscriptionDeleted", "/subscriptions/temp-trial"),
        Step("c-orders-rel-updated", "c", "APIReleaseUpdated", "/apis/orders/releases/rel-2026-10"),
        Step("f-old-admin-deleted", "f", "UserDeleted", "/users/old-admin"),
        Step("arm-not-apim", "arm", "Microsoft.Resources.ResourceWriteSuccess",
             f"/subscriptions/{SUB}/resourceGroups/rg-apis/providers/Microsoft.Web/sites/apim-inventory-func", data=arm_write),
        Step("c-alice-sub-updated", "c", "SubscriptionUpdated", "/subscriptions/alice-starter"),
        Step("f-beta-deleted", "f", "ProductDeleted", "/products/beta"),
        Step("c-orders-rel-created", "c", "APIReleaseCreated", "/apis/orders/releases/rel-2026-11"),
        Step("c-orders-rel-old-deleted", "c", "APIReleaseDeleted", "/apis/orders/releases/rel-2026-10"),
        Step("f-inventory-rel-deleted", "f", "APIReleaseDeleted", "/apis/inventory/releases/preview"),
        Step("f-doc-sample", "f", "ProductUpdated", "/products/partners"),
        Step("f-inventory-rel-updated", "f", "APIReleaseUpdated", "/apis/inventory/releases/go-live"),
        Step("c-temp-sub-revived", "c", "SubscriptionCreated", "/subscriptions/temp-trial", gap=600),
        Step("f-scratch-removed", "f", "GatewayAPIRemoved", "/gateways/gw-warehouse/apis/scratch"),
        Step("f-scratch-deleted", "f", "APIDeleted", "/apis/scratch"),
        Step("c-onprem-hc-old-deleted", "c", "GatewayHostnameConfigurationDeleted",
             "/gateways/gw-onprem/hostnameConfigurations/legacy-host"),
        Step("c-onprem-ca-old-deleted", "c", "GatewayCertificateAuthorityDeleted",
             "/gateways/gw-onprem/certificateAuthorities/old-root-ca"),
        Step("f-warehouse-hc-old-deleted", "f", "GatewayHostnameConfigurationDeleted",
             "/gateways/gw-warehouse/hostnameConfigurations/wh-old"),
        Step("f-warehouse-ca-old-deleted", "f", "GatewayCertificateAuthorityDeleted",
             "/gateways/gw-warehouse/certificateAuthorities/fabrikam-old-ca"),
        Step("f-trial-sub-deleted", "f", "SubscriptionDeleted", "/subscriptions/trial-0042"),
        Step("c-token-near", "c", "GatewayTokenNearExpiry", "/gateways/gw-onprem/gw-onprem-7d9f8b6c4-x2lqp",
             data=token("gw-onprem", "gw-onprem-7d9f8b6c4-x2lqp", "expiresAtUtc", timedelta(days=3, hours=2))),
        Step("c-token-expired", "c", "GatewayTokenExpired", "/gateways/gw-onprem/gw-onprem-7d9f8b6c4-m8zrt",
             data=token("gw-onprem", "gw-onprem-7d9f8b6c4-m8zrt", "expiredAtUtc", timedelta(minutes=-3))),
        Step("f-token-near", "f", "GatewayTokenNearExpiry", "/gateways/gw-warehouse/wh-node-01", after="f-token-expired",
             data=token(F_WAREHOUSE, "wh-node-01", "expiresAtUtc", f_expiry)),
        Step("c-cb-errors-open", "c", "CircuitBreaker.Opened", "/backends/orders-backend/circuit-breaker/rules/server-errors",
             data=breaker("orders-backend", "server-errors")),
        Step("f-cb-open", "f", "CircuitBreaker.Opened", "/backends/inventory-backend/circuit-breaker/rules/timeouts",
             data=breaker("inventory-backend", "timeouts"), dup_after="f-cb-closed"),
        Step("c-cb-throttle-open", "c", "CircuitBreaker.Opened", "/backends/orders-backend/circuit-breaker/rules/throttling",
             data=breaker("orders-backend", "throttling")),
        Step("c-cb-errors-closed", "c", "CircuitBreaker.Closed", "/backends/orders-backend/circuit-breaker/rules/server-errors",
             data=breaker("orders-backend", "server-errors"), gap=300),
        Step("f-cb-closed", "f", "CircuitBreaker.Closed", "/backends/inventory-backend/circuit-breaker/rules/timeouts",
             data=breaker("inventory-backend", "timeouts")),
        Step("f-token-expired", "f", "GatewayTokenExpired", "/gateways/gw-warehouse/wh-node-01", not_before=f_expiry,
             data=token(F_WAREHOUSE, "wh-node-01", "expiredAtUtc", f_expiry)),
    ]


def envelope(step: Step, event_id: str, moment: datetime, ticks: int) -> dict[str, Any]:
    source = SERVICES[step.svc]
    event_type = step.type if step.type.startswith("Microsoft.") else P + step.type
    data = step.data(moment) if step.data else {"resourceUri": source + (step.uri or step.subject)}
    when = azure_time(moment, ticks)
    if step.label == "f-doc-sample":  # pasted from a docs sample: camelCase specVersion, capitalised Type and Time
        return {"id": event_id, "source": source, "subject": step.subject, "data": data,
                "Type": event_type, "Time": when, "specVersion": "1.0"}
    if step.svc in EVENT_GRID_SCHEMA:
        return {"id": event_id, "topic": source, "subject": step.subject, "eventType": event_type, "eventTime": when,
                "data": data, "dataVersion": "1", "metadataVersion": "1"}
    return {"specversion": "1.0", "id": event_id, "source": source, "subject": step.subject, "type": event_type,
            "time": when, "data": data}


def build(rng: random.Random) -> list[list[dict[str, Any]]]:
    steps = story()
    events: dict[str, dict[str, Any]] = {}
    moment = START
    for step in steps:
        moment = max(moment, step.not_before or moment) + timedelta(seconds=rng.randint(15, 170) + step.gap)
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        events[step.label] = envelope(step, event_id, moment, rng.randrange(10**7))

    order = [s.label for s in steps]
    for step in steps:
        target = step.before or step.after
        if target:
            order.remove(step.label)
            order.insert(order.index(target) + (1 if step.after else 0), step.label)
    for step in steps:
        if step.dup_after:
            order.insert(order.index(step.dup_after) + 1, step.label + "#dup")
    alone = {s.label for s in steps if s.before or s.after} | {s.label + "#dup" for s in steps if s.dup_after}

    svc = {s.label: s.svc for s in steps}
    batches: list[list[str]] = []
    size = 0
    for label in order:
        base = label.split("#")[0]
        current = batches[-1] if batches else []
        same = bool(current) and svc[current[0].split("#")[0]] == svc[base]
        if not same or len(current) >= size or label in alone or current[-1] in alone:
            batches.append([])
            size = rng.randint(1, 5)
        batches[-1].append(label)

    retried = next(i for i, b in enumerate(batches) if "c-onprem-api-orders" in b)  # one failed call: the whole POST again
    batches.insert(retried + 3, list(batches[retried]))
    return [[events[label.split("#")[0]] for label in batch] for batch in batches]


def check(deliveries: list[list[dict[str, Any]]]) -> None:
    seen: dict[str, set[str]] = {"eventGrid": set(), "cloudEvents": set()}
    for batch in deliveries:
        assert len({"specversion" in map(str.lower, e) for e in batch}) == 1, "one schema per delivery"
        for event in batch:
            schema = "cloudEvents" if "specversion" in event else "eventGrid"
            seen[schema].add(event.get("type") or event.get("eventType") or "")
    for schema, types in seen.items():
        missing = set(CANONICAL) - types
        assert not missing, f"{schema} lacks {sorted(missing)}"
    assert any(t.startswith(LEGACY) for t in seen["cloudEvents"]), "a legacy SelfHostedGateway name"
    assert "Microsoft.APIManagement.ProductCreated" in seen["eventGrid"], "the portal's casing"


def main() -> None:
    deliveries = build(random.Random(SEED))
    check(deliveries)
    OUT.write_text(json.dumps(deliveries, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(deliveries)} deliveries, {sum(map(len, deliveries))} events")


if __name__ == "__main__":
    main()
