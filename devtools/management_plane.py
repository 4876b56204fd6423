"""APIM resources as ARM serves them (api-version 2024-05-01), put into an ArmStandIn: a small
realistic service for tests and the demo, and a large one for the benchmark. Secrets are put where
ARM's shapes have them, so tests can check that none is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SECRET = "SECRET-do-not-store-7f3a"


def user(n: int | str, email: str | None = None) -> dict[str, Any]:
    return {"firstName": f"First{n}", "lastName": f"Last{n}", "email": email or f"user{n}@contoso.example",
            "state": "active", "registrationDate": "2026-01-15T10:00:00Z", "identities": [{"provider": "Basic", "id": f"user{n}@contoso.example"}],
            "note": None}


def api(name: str, revision: int, current: bool, path: str | None = None) -> dict[str, Any]:
    return {"displayName": f"{name.title()} API", "path": path or name, "protocols": ["https"], "apiRevision": str(revision),
            "isCurrent": current, "isOnline": True, "serviceUrl": f"https://backend.contoso.example/{name}",
            "apiVersion": "v1", "apiVersionSetId": None, "type": "http", "subscriptionRequired": True}


def subscription(owner: str, scope: str, state: str = "active") -> dict[str, Any]:
    return {"displayName": "Starter key", "ownerId": owner, "scope": scope, "state": state, "allowTracing": False,
            "createdDate": "2026-02-01T08:00:00Z", "expirationDate": "2027-02-01T08:00:00Z",
            "primaryKey": SECRET, "secondaryKey": SECRET + "-2"}


def backend(url: str, trip: str = "00:01:00") -> dict[str, Any]:
    return {"url": url, "protocol": "http", "description": "payments backend",
            "credentials": {"header": {"x-api-key": [SECRET]}, "authorization": {"scheme": "Basic", "parameter": SECRET}},
            "proxy": {"url": "http://proxy.contoso.example", "username": "p", "password": SECRET},
            "circuitBreaker": {"rules": [{"name": "r5xx", "tripDuration": trip, "acceptRetryAfter": True,
                                          "failureCondition": {"count": 3, "interval": "00:01:00",
                                                               "statusCodeRanges": [{"min": 500, "max": 599}]}}]}}


def small_service(service_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """One of each kind the sync lists, with the names tests/support.py's events use."""
    yield service_id, {"publisherEmail": "apis@contoso.example", "publisherName": "Contoso"}
    yield f"{service_id}/users/alice", user("alice", "alice@contoso.example")
    yield f"{service_id}/users/bob", user("bob", "bob@contoso.example")
    yield f"{service_id}/apis/orders", api("orders", 2, True)
    yield f"{service_id}/apis/orders;rev=1", api("orders", 1, False)
    yield f"{service_id}/apis/orders/releases/r1", {"apiId": f"{service_id}/apis/orders;rev=2", "notes": "Orders v2",
                                                    "createdDateTime": "2026-03-01T12:00:00Z"}
    yield f"{service_id}/products/starter", {"displayName": "Starter", "description": "trial", "terms": "Be nice.",
                                             "subscriptionRequired": True, "approvalRequired": True,
                                             "subscriptionsLimit": 1, "state": "published"}
    yield f"{service_id}/subscriptions/sub1", subscription(f"{service_id}/users/alice", f"{service_id}/products/starter")
    yield f"{service_id}/gateways/edge", {"description": "edge gateway", "locationData": {
        "name": "Amsterdam DC", "city": "Amsterdam", "district": "Noord-Holland", "countryOrRegion": "NL"}}
    yield f"{service_id}/gateways/edge/apis/orders", api("orders", 2, True)
    yield f"{service_id}/gateways/edge/hostnameConfigurations/h1", {
        "hostname": "api.contoso.example", "certificateId": f"{service_id}/certificates/c1",
        "negotiateClientCertificate": False, "tls10Enabled": False, "tls11Enabled": False, "http2Enabled": True}
    yield f"{service_id}/gateways/edge/certificateAuthorities/ca1", {"isTrusted": True}
    yield f"{service_id}/backends/payments", backend("https://payments.contoso.example")


def large_service(service_id: str, users: int, apis: int, revisions: int, subscriptions: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """`apis` APIs of `revisions` revisions each (ARM lists the current one under the API's plain name)."""
    yield service_id, {"publisherEmail": "apis@contoso.example", "publisherName": "Contoso"}
    for n in range(users):
        yield f"{service_id}/users/user-{n:06d}", user(n)
    for a in range(apis):
        name = f"api-{a:05d}"
        yield f"{service_id}/apis/{name}", api(name, revisions, True)
        for rev in range(1, revisions):
            yield f"{service_id}/apis/{name};rev={rev}", api(name, rev, False)
    for n in range(subscriptions):
        yield f"{service_id}/subscriptions/sub-{n:06d}", subscription(
            f"{service_id}/users/user-{n % max(users, 1):06d}", f"{service_id}/apis/api-{n % max(apis, 1):05d}")
