"""APIM resources as ARM serves them (api-version 2024-05-01), put into an ArmStandIn: a small
realistic service for tests and the demo, and a large one for the benchmark. Secrets are put where
ARM's shapes have them, so tests can check that none is stored."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from devtools.arm_standin import ArmStandIn
from devtools.store_reads import inventory_rows, processor_over
from shared.domain.errors import PermanentEventError
from shared.domain.resources import parse_service_id
from shared.integrations.trigger import decode_event
from shared.store.memory import InMemoryStore

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


def workspace(name: str) -> dict[str, Any]:
    return {"displayName": f"{name.title()} team", "description": f"The {name} team's APIs"}


def workspace_contents(service_id: str, name: str, api_name: str, owner: str = "users/alice", *,
                       extras: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """A workspace as ARM serves it (api-version 2024-05-01): an API, a product that links the API (`apiLinks`,
    properties.apiId the API's full ARM id) and a subscription to the product (scope a full ARM id, the owner a
    service-level user); with `extras`, also an older revision and a release of the API, a group link (`groupLinks`,
    properties.groupId) and a backend with a circuit-breaker rule. Names other than the API's are prefixed with the
    workspace's: APIM requires them unique across the service and its workspaces."""
    ws = f"{service_id}/workspaces/{name}"
    product_name = f"{name}-product"
    yield ws, workspace(name)
    yield f"{ws}/apis/{api_name}", api(api_name, 2 if extras else 1, True)
    yield f"{ws}/products/{product_name}", product(product_name, approval_required=False)
    yield f"{ws}/products/{product_name}/apiLinks/{api_name}-link", {"apiId": f"{ws}/apis/{api_name}"}
    yield f"{ws}/subscriptions/{name}-sub", subscription(f"{service_id}/{owner}", f"{ws}/products/{product_name}")
    if extras:
        yield f"{ws}/apis/{api_name};rev=1", api(api_name, 1, False)
        yield f"{ws}/apis/{api_name}/releases/{name}-r1", {"apiId": f"{ws}/apis/{api_name};rev=2", "notes": f"{api_name} v2",
                                                            "createdDateTime": "2026-03-01T12:00:00Z"}
        yield f"{ws}/products/{product_name}/groupLinks/{name}-developers-link", {"groupId": f"{ws}/groups/{name}-developers"}
        yield f"{ws}/backends/{name}-backend", backend(f"https://{name}.contoso.example")


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



def put_large_service(arm: ArmStandIn, service_id: str, users: int, apis: int, revisions: int, subscriptions: int) -> None:
    """`large_service` in the stand-in, its users and subscriptions generated when served (250,000 documents
    would take gigabytes): the same names and properties."""
    arm.put_many(item for item in large_service(service_id, 0, apis, revisions, 0))
    arm.generate(f"{service_id}/users", "user-", users, user)
    arm.generate(f"{service_id}/subscriptions", "sub-", subscriptions, lambda n: subscription(
        f"{service_id}/users/user-{n % max(users, 1):06d}", f"{service_id}/apis/api-{n % max(apis, 1):05d}"))


# -- the demo's management plane: what its event stream says APIM holds now ------------------------------------------

ADMINISTRATOR = "users/1"  # every APIM instance is created with its administrator, long before any event subscription
DEFAULT_PRODUCT = "products/unlimited"  # and, on most tiers, with the Starter and Unlimited products
LEAF_KINDS = ("subscription", "user", "product", "apiRelease")  # kinds whose absence from ARM tombstones no other row
DEMO_WORKSPACES = {"billing": "invoices", "shipping": "tracking"}  # each team's workspace and its API
LOCATIONS = (("Amsterdam DC", "Amsterdam", "Noord-Holland", "NL"), ("Dublin DC", "Dublin", "Leinster", "IE"))


def person(name: str, registered: str) -> dict[str, Any]:
    """A user named the way the demo stream names them: `alice-contoso-com` is Alice, alice@contoso.com."""
    local, _, domain = name.partition("-")
    email = f"{local}@{domain.replace('-', '.')}" if domain else f"{name}@contoso.example"
    return {**user(name, email), "firstName": local.title(), "lastName": (domain.split("-")[0] or "Example").title(),
            "registrationDate": registered, "identities": [{"provider": "Basic", "id": email}]}


def product(name: str, approval_required: bool, limit: int | None = 1) -> dict[str, Any]:
    return {"displayName": name.title(), "description": f"{name.title()} access to the APIs", "terms": "Fair use only.",
            "subscriptionRequired": True, "approvalRequired": approval_required, "subscriptionsLimit": limit, "state": "published"}


def gateway(description: str, location: tuple[str, str, str, str]) -> dict[str, Any]:
    name, city, district, country = location
    return {"description": description, "locationData": {"name": name, "city": city, "district": district, "countryOrRegion": country}}


def hostname_configuration(hostname: str, certificate_id: str) -> dict[str, Any]:
    return {"hostname": hostname, "certificateId": certificate_id, "negotiateClientCertificate": False,
            "tls10Enabled": False, "tls11Enabled": False, "http2Enabled": True}


def breaker_backend(url: str, rules: dict[str, str]) -> dict[str, Any]:
    """`backend` (credentials and all) with these circuit-breaker rules, name -> trip duration, each tripping on 5xx."""
    shape = backend(url)
    template = shape["circuitBreaker"]["rules"][0]
    rule_list = [{**template, "name": name, "tripDuration": trip} for name, trip in sorted(rules.items())]
    return {**shape, "description": f"{url.split('//')[-1].split('.')[0]} backend", "circuitBreaker": {"rules": rule_list}}


@dataclass(frozen=True)
class DemoPlane:
    """One service's management plane for the demo: its resources as ARM serves them, and where they differ from the events."""

    service_id: str
    resources: list[tuple[str, dict[str, Any]]]
    pre_existing: tuple[str, ...]  # paths no event names: they predate the event subscription
    lost_deletion: str  # a path the events leave live that ARM no longer has: its deletion event never arrived
    workspaces: tuple[str, ...] = ()  # workspaces no event names (APIM documents no workspace events); the last is deleted part-way


def replayed(payloads: Iterable[str]) -> list[dict[str, Any]]:
    """The rows the events leave, replayed in memory through the app's own pipeline (any order, duplicates, cascades)."""
    repo = InMemoryStore()
    processor = processor_over(repo, lambda: datetime(2000, 1, 1, tzinfo=timezone.utc))
    for payload in payloads:
        processor.handle(decode_event(payload))
    return list(inventory_rows(repo))


def busiest_service(payloads: Iterable[str]) -> str:
    """The ARM id of the APIM service most events come from."""
    counts: Counter[str] = Counter()
    for payload in payloads:
        event = json.loads(payload)
        try:
            counts[parse_service_id(event.get("source") or event.get("topic")).resource_id] += 1
        except PermanentEventError:
            continue
    if not counts:
        raise ValueError("no event names an APIM service")
    return counts.most_common(1)[0][0]


def demo_plane(service_id: str, rows: list[dict[str, Any]]) -> DemoPlane:
    """What APIM holds now, given the rows the events leave: every live row in its ARM shape, less the leaf resource
    with the newest event (deleted since; Event Grid gave up on that event), plus the administrator and the Unlimited
    product, which no event ever named."""
    prefix = service_id.lower() + "/"
    live = sorted((r for r in rows if str(r["ResourceId"]).lower().startswith(prefix) and not r.get("IsDeleted")),
                  key=lambda r: str(r["Path"]).lower())
    lost = str(max((r for r in live if r["Kind"] in LEAF_KINDS), key=lambda r: (r["LastEventTime"], r["Path"]))["Path"])
    kept = [r for r in live if r["Path"] != lost]
    domain = service_id.rsplit("/", 1)[-1].split("-")[0] + ".example"
    resources = [(service_id, {"publisherEmail": f"apis@{domain}", "publisherName": domain.split(".")[0].title()}),
                 (f"{service_id}/{ADMINISTRATOR}", {**user("1", f"apis@{domain}"), "firstName": "Administrator", "lastName": "",
                                                     "registrationDate": "2026-03-02T08:00:00Z", "identities": []}),
                 (f"{service_id}/{DEFAULT_PRODUCT}", product("unlimited", approval_required=True, limit=None))]
    context = _Context(service_id, domain, kept)
    resources += [(f"{service_id}/{r['Path']}", shape) for r in kept if (shape := context.shape(r)) is not None]
    for name, api_name in DEMO_WORKSPACES.items():
        resources += workspace_contents(service_id, name, api_name, ADMINISTRATOR, extras=False)
    return DemoPlane(service_id, resources, (ADMINISTRATOR, DEFAULT_PRODUCT), lost, tuple(DEMO_WORKSPACES))


class _Context:
    """What the ARM shape of one row depends on: the service, and the other live rows (current API revisions,
    the users and products a subscription belongs to, a backend's breaker rules)."""

    def __init__(self, service_id: str, domain: str, rows: list[dict[str, Any]]) -> None:
        self.service_id, self.domain, self.rows = service_id, domain, rows
        self.current: dict[str, int] = {}
        for r in rows:
            if r["Kind"] == "api":
                self.current[str(r["Api"])] = max(self.current.get(str(r["Api"]), 1), int(r.get("Revision") or 1))
        self.gateways = [str(r["Name"]) for r in rows if r["Kind"] == "gateway"]

    def named(self, kind: str, hint: str) -> str | None:
        return next((str(r["Name"]) for r in self.rows if r["Kind"] == kind and str(r["Name"]).split("-")[0] == hint), None)

    def shape(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """None for gateway instances (they exist only in events) and breaker rules (their backend's configuration)."""
        kind, name, sid = str(row["Kind"]), str(row["Name"]), self.service_id
        created = _iso(row.get("CreatedAt") or row.get("LastEventTime"))
        if kind == "user":
            return person(name, created)
        if kind == "api":
            revision = int(row.get("Revision") or self.current[str(row["Api"])])
            return api(str(row["Api"]), revision, revision == self.current[str(row["Api"])])
        if kind == "apiRelease":
            return {"apiId": f"{sid}/apis/{row['Api']};rev={self.current[str(row['Api'])]}", "notes": f"Release {name}", "createdDateTime": created}
        if kind == "product":
            return product(name, approval_required=False)
        if kind == "subscription":
            owner, scope = self.named("user", name.split("-")[0]) or "1", self.named("product", name.split("-")[-1])
            return {**subscription(f"{sid}/users/{owner}", f"{sid}/products/{scope}" if scope else f"{sid}/apis"), "displayName": name,
                    "createdDate": created, "expirationDate": _iso(row.get("CreatedAt"), timedelta(days=365))}
        if kind == "gateway":
            return gateway(f"self-hosted gateway {name}", LOCATIONS[self.gateways.index(name) % len(LOCATIONS)])
        if kind == "gatewayApi":
            return api(name, self.current.get(name, 1), True)
        if kind == "gatewayHostnameConfiguration":
            return hostname_configuration(name.replace("-", "."), f"{sid}/certificates/{name}")
        if kind == "gatewayCertificateAuthority":
            return {"isTrusted": True}
        if kind == "backend":
            rules = {str(r["Rule"]): str(r.get("TripDuration") or "00:01:00") for r in self.rows
                     if r["Kind"] == "circuitBreakerRule" and r.get("Backend") == name}
            return breaker_backend(f"https://{name.removesuffix('-backend')}.{self.domain}", rules)
        return None


def _iso(value: object, later: timedelta = timedelta(0)) -> str:
    moment = value if isinstance(value, datetime) else datetime(2026, 1, 1, tzinfo=timezone.utc)
    return (moment + later).strftime("%Y-%m-%dT%H:%M:%SZ")
