"""Every example filter that README.md and docs/schema.md give, run against Azurite through azure-data-tables,
over an inventory the app itself built (events through the indexed function, enrichment and two full syncs
against the ARM stand-in, alerts through a stand-in topic), and checked against what the doc says it returns.

The docs give filters in two forms, and the parser finds both: `az storage entity query --table-name T --filter "F"`
in a fenced code block, under a `#` comment saying what it returns; and a filter in running text, as a code span
that starts with a column and an operator (`PartitionKey ge '…'`). EXPECTED holds what each returns over the data
below, keyed by the filter's text, so a new or changed example fails here until its expectation is written."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import api, breaker_backend, product, small_service, subscription, user
from devtools.worker import deliver
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from tests.conftest import APP_SETTING_PREFIXES, fresh_settings
from tests.support import T0, ManualClock, event, iso
from tests.topic_receiver import KEY, TopicReceiver

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/schema.md")
MIN_EXAMPLES = 29  # what the docs give today: a parser that finds fewer has broken, not the docs
# The docs' own placeholder ids, so that a filter naming an ARM id (OwnerId) runs as written.
CONTOSO = "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/contoso"
FABRIKAM = "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/fabrikam"
OCT_20 = datetime(2026, 10, 20, 8, 0, tzinfo=timezone.utc)
OCT_25 = datetime(2026, 10, 25, 12, 0, tzinfo=timezone.utc)


# -- the examples, as the docs give them ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    table: str  # as the doc names it (the default table names)
    filter: str
    comment: str  # what the doc says it returns; "" for a filter in running text

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


_FENCE = re.compile(r"^( *)```[a-z]*\n(.*?)^\1```", re.M | re.S)
_SPAN = re.compile(r"`([A-Z][A-Za-z]* (?:eq|ne|ge|gt|le|lt) [^`]+)`")


def examples(doc: str) -> list[Example]:
    text = (ROOT / doc).read_text(encoding="utf-8")
    found: list[Example] = []
    for block in _FENCE.finditer(text):
        first_line = text.count("\n", 0, block.start(2)) + 1
        found.extend(_commands(doc, block.group(2), first_line))
    prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # running text only, line numbers kept
    for span in _SPAN.finditer(prose):
        found.append(Example(doc, prose.count("\n", 0, span.start()) + 1, "", span.group(1), ""))
    return found


def _commands(doc: str, body: str, first_line: int) -> Iterator[Example]:
    comment: list[str] = []
    lines = body.split("\n")
    at = 0
    while at < len(lines):
        start = at
        logical = lines[at].strip()
        while logical.endswith("\\") and at + 1 < len(lines):
            at += 1
            logical = logical[:-1] + " " + lines[at].strip()
        at += 1
        if logical.startswith("#"):
            comment.append(logical.lstrip("# "))
            continue
        if "az storage entity query" in logical:
            args = shlex.split(logical, comments=True)
            assert "--table-name" in args and "--filter" in args, f"{doc}:{first_line + start}: {logical}"
            yield Example(doc, first_line + start, args[args.index("--table-name") + 1], args[args.index("--filter") + 1],
                          " ".join(comment))
        comment = []


EXAMPLES = [e for doc in DOCS for e in examples(doc)]


# -- what each returns ----------------------------------------------------------------------------------------------

Entity = dict[str, Any]


@dataclass(frozen=True)
class Expect:
    table: str
    returns: frozenset[str] | Callable[[Entity], bool]  # labels (below), or what the doc's words mean, row by row


def rows(*labels: str) -> frozenset[str]:
    return frozenset(labels)


GATEWAY_FAMILY = frozenset({"gateway", "gatewayApi", "gatewayHostnameConfiguration", "gatewayCertificateAuthority", "gatewayInstance"})
ALL_CONTOSO_APIS = ("contoso/apis/orders", "contoso/apis/orders;rev=1", "contoso/apis/orders;rev=2")
WORKSPACE_APIS = ("contoso/workspaces/w1/apis/billing", "contoso/workspaces/w2/apis/search")  # in the API partitions too
WORKSPACE_TOMBSTONE = "contoso/workspaces/w1/apis/old"
STUCK = ("contoso/backends/payments/circuit-breaker/rules/r5xx", "fabrikam/backends/orders/circuit-breaker/rules/r5xx")
STARTER_HISTORY = rows("starter-created", "starter-updated")
INV, HIST, REJ, ALERTS, STATUS = "ApimInventory", "ApimInventoryHistory", "ApimInventoryRejected", "ApimInventoryAlerts", "ApimInventoryStatus"

EXPECTED: dict[str, Expect] = {
    # in running text (docs/schema.md, Keys and Retention; README, Straight from the tables)
    "PartitionKey ge 'api|contoso|00' and PartitionKey le 'api|contoso|15' and RowKey lt '~'": Expect(INV, rows(
        *ALL_CONTOSO_APIS, "contoso/apis/orders/releases/r1", "contoso/apis/legacy", "contoso/apis/legacy;rev=1", *WORKSPACE_APIS,
        WORKSPACE_TOMBSTONE)),
    "PartitionKey ge 'gateway|' and PartitionKey lt 'gateway}' and RowKey lt '~'": Expect(INV, lambda r: r.get("Kind") in GATEWAY_FAMILY),
    "PartitionKey ge '~feed|contoso|' and PartitionKey lt '~feed|contoso}'": Expect(HIST, lambda r: r["Service"] == "contoso"),
    "PartitionKey eq '~feed|contoso|20261102'": Expect(HIST, lambda r: r["Service"] == "contoso" and r["RowKey"].startswith(("e|", "r|"))
                                                        and r[{"e": "EventTime", "r": "RecordedAt"}[r["RowKey"][0]]].date() == T0.date()),
    "IsDeleted eq true": Expect(INV, lambda r: r.get("IsDeleted") is True),
    "IsDeleted eq false": Expect(INV, lambda r: r.get("IsDeleted") is False),
    # README
    "Kind eq 'product' and Name eq 'inventory-check' and IsDeleted eq false": Expect(INV, rows("contoso/products/inventory-check")),
    "PartitionKey ge 'api|contoso|00' and PartitionKey le 'api|contoso|15' and Kind eq 'api' and IsDeleted eq false":
        Expect(INV, rows(*ALL_CONTOSO_APIS, *WORKSPACE_APIS)),
    "PartitionKey ge 'gateway|' and PartitionKey lt 'gateway}' and Kind eq 'gatewayInstance' and TokenStatus ne 'valid' and IsDeleted eq false":
        Expect(INV, rows("contoso/gateways/edge/instances/pod-1", "contoso/gateways/edge/instances/pod-2",
                         "fabrikam/gateways/hub/instances/pod-a", "fabrikam/gateways/hub/instances/pod-b")),
    "PartitionKey ge 'backend|' and PartitionKey lt 'backend}' and Kind eq 'circuitBreakerRule' and StuckOpen eq true and IsDeleted eq false":
        Expect(INV, rows(*STUCK)),
    "PartitionKey ge 'user|contoso|00' and PartitionKey le 'user|contoso|15' and DeletedAt ge datetime'2026-11-01T00:00:00Z'":
        Expect(INV, rows("contoso/users/bob")),
    "PartitionKey eq 'product|contoso|11' and RowKey ge '~h|products|starter|||' and RowKey lt '~h|products|starter||}'":
        Expect(INV, lambda r: r.get("PathKey") == "products/starter" and (r["EventId"] in STARTER_HISTORY or r["EventId"].startswith("sync:"))),
    "PartitionKey eq '~feed|contoso|20261102' and RowKey ge 'r|' and RowKey lt 'r}'":
        Expect(HIST, lambda r: r["Service"] == "contoso" and r["RowKey"].startswith("r|") and r["RecordedAt"].date() == T0.date()),
    "PartitionKey eq '20261102' and RowKey lt '~'": Expect(REJ, rows("rejected-nov")),
    # docs/schema.md
    "PartitionKey ge 'api|contoso|00' and PartitionKey le 'api|contoso|15' and Kind eq 'api'":
        Expect(INV, rows(*ALL_CONTOSO_APIS, "contoso/apis/legacy", "contoso/apis/legacy;rev=1", *WORKSPACE_APIS,
                         WORKSPACE_TOMBSTONE)),
    "PartitionKey ge 'api|contoso|00' and PartitionKey le 'api|contoso|15' and RowKey ge 'workspaces|w1|' and RowKey lt 'workspaces|w1}' "
    "and Kind eq 'api' and IsDeleted eq false": Expect(INV, rows("contoso/workspaces/w1/apis/billing")),
    "PartitionKey ge 'api|contoso|00' and PartitionKey le 'api|contoso|15' and RowKey lt 'workspaces|' and Kind eq 'api' "
    "and IsDeleted eq false": Expect(INV, rows(*ALL_CONTOSO_APIS)),
    "PartitionKey ge 'gateway|' and PartitionKey lt 'gateway}' and Kind eq 'gatewayInstance' and TokenStatus eq 'expired' and IsDeleted eq false":
        Expect(INV, rows("contoso/gateways/edge/instances/pod-1", "fabrikam/gateways/hub/instances/pod-b")),
    "PartitionKey ge 'backend|' and PartitionKey lt 'backend}' and UpdatedAt ge datetime'2026-11-01T00:00:00Z' and IsDeleted eq false":
        Expect(INV, rows("contoso/backends/payments", "contoso/backends/payments/circuit-breaker/rules/r5xx",
                         "contoso/backends/payments/circuit-breaker/rules/r429",
                         "contoso/backends/billing", "contoso/backends/billing/circuit-breaker/rules/r5xx",  # a sync added them
                         "fabrikam/backends/orders", "fabrikam/backends/orders/circuit-breaker/rules/r5xx")),
    "PartitionKey ge 'user|contoso|00' and PartitionKey le 'user|contoso|15' and LastEventTime ge datetime'2026-11-01T00:00:00Z'":
        Expect(INV, rows("contoso/users/bob", "contoso/users/carol")),
    "PartitionKey ge 'product|contoso|' and PartitionKey lt 'product|contoso}' and ApprovalRequired eq true and IsDeleted eq false":
        Expect(INV, rows("contoso/products/starter")),
    "PartitionKey ge 'subscription|contoso|' and PartitionKey lt 'subscription|contoso}' and OwnerId eq "
    f"'{CONTOSO}/users/alice' and IsDeleted eq false": Expect(INV, rows("contoso/subscriptions/sub1")),
    "EnrichmentPending eq true": Expect(INV, rows("contoso/users/carol")),
    "PartitionKey eq 'pending'": Expect(ALERTS, rows("fabrikam/gateways/hub/instances/pod-a GatewayTokenNearExpiry")),
    "PartitionKey eq 'sent|20261102'": Expect(ALERTS, rows(
        "contoso/gateways/edge/instances/pod-1 GatewayTokenExpired", "contoso/gateways/edge/instances/pod-2 GatewayTokenNearExpiry",
        "contoso/gateways/old/instances/pod-9 GatewayTokenExpired",
        "contoso/backends/payments/circuit-breaker/rules/r5xx CircuitBreakerOpened",
        "contoso/backends/payments/circuit-breaker/rules/r5xx CircuitBreakerStuckOpen",
        "contoso/backends/payments/circuit-breaker/rules/r429 CircuitBreakerOpened",
        "contoso/backends/retired/circuit-breaker/rules/r5xx CircuitBreakerOpened",
        "contoso/backends/retired/circuit-breaker/rules/r5xx CircuitBreakerStuckOpen",
        "fabrikam/backends/orders/circuit-breaker/rules/r5xx CircuitBreakerOpened",
        "fabrikam/backends/orders/circuit-breaker/rules/r5xx CircuitBreakerStuckOpen",
        "fabrikam/gateways/hub/instances/pod-b GatewayTokenExpired")),
}


def label(table: str, entity: Entity) -> str:
    if table == INV and "Kind" in entity:  # a row (history records and count rows beside it have no Kind)
        return f"{entity['Service']}/{entity['Path']}"
    if table == ALERTS:
        return f"{entity['Source'].rsplit('/', 1)[-1]}/{entity['Subject']} {entity['AlertType'].removeprefix('ApimInventory.')}"
    return str(entity.get("EventId", entity["RowKey"]))  # a counter row has no EventId


# -- the data: built by the app, in the order a deployment would see it ----------------------------------------------

@dataclass(frozen=True)
class Tables:
    client: TableServiceClient
    names: dict[str, str]  # the docs' table names -> this run's

    def query(self, table: str, query_filter: str) -> list[Entity]:
        return list(self.client.get_table_client(self.names[table]).query_entities(query_filter))

    def everything(self, table: str) -> list[Entity]:
        return list(self.client.get_table_client(self.names[table]).list_entities())


def _token(suffix: str, service: str, gateway: str, instance: str, at: datetime, expires: datetime, event_id: str) -> dict[str, Any]:
    field = "expiredAtUtc" if suffix.endswith("Expired") else "expiresAtUtc"
    return event(suffix, f"/gateways/{gateway}/{instance}", at=at, service=service, event_id=event_id,
                 data={"gatewayInfo": {"gatewayId": f"{service}/gateways/{gateway}", "instanceId": instance},
                       "tokenInfo": {field: iso(expires)}})


def _opened(service: str, backend: str, rule: str, at: datetime, event_id: str, trip: str = "00:05:00") -> dict[str, Any]:
    return event("CircuitBreaker.Opened", f"/backends/{backend}/circuit-breaker/rules/{rule}", at=at, service=service,
                 event_id=event_id, data={"backendName": backend, "circuitBreaker": {"rules": {rule: {"tripDuration": trip}}}})


def _not_apim(at: datetime, event_id: str) -> dict[str, Any]:
    return event("UserCreated", "/blobServices/default/containers/x", at=at, event_id=event_id, event_type="Microsoft.Storage.BlobCreated",
                 data={"url": "https://x.blob.core.windows.net/x"})


def _build(arm: ArmStandIn, clock: ManualClock, topic: TopicReceiver, services: bootstrap.Services) -> None:
    contoso = parse_service_id(CONTOSO)
    syncer = services.reconciler.syncer
    assert syncer is not None

    # 20 Oct: the first full sync finds what existed before the event subscription.
    syncer.sync(contoso)

    # 25 Oct: a user is deleted; an event from another service's topic is rejected.
    clock.moment = OCT_25
    arm.delete(f"{CONTOSO}/users/dave")
    deliver([event("UserDeleted", "/users/dave", at=OCT_25 - timedelta(hours=1), service=CONTOSO, event_id="dave-deleted"),
             _not_apim(OCT_25, "rejected-oct")])

    # 2 Nov: events, each through the indexed function; the ones that name a resource ARM has are enriched.
    clock.moment = T0 + timedelta(minutes=20)
    arm.put(f"{CONTOSO}/products/inventory-check", product("inventory-check", approval_required=False))
    for gone in ("products/legacy", "subscriptions/sub2", "users/bob", "apis/legacy"):
        arm.delete(f"{CONTOSO}/{gone}")
    now = clock.now()
    deliver([
        event("ProductCreated", "/products/starter", at=1, service=CONTOSO, event_id="starter-created"),
        event("ProductUpdated", "/products/starter", at=2, service=CONTOSO, event_id="starter-updated"),
        event("ProductCreated", "/products/inventory-check", at=3, service=CONTOSO),
        event("ProductDeleted", "/products/legacy", at=4, service=CONTOSO),
        event("SubscriptionDeleted", "/subscriptions/sub2", at=5, service=CONTOSO),
        event("UserDeleted", "/users/bob", at=6, service=CONTOSO),
        event("APIDeleted", "/apis/legacy", at=7, service=CONTOSO),  # and its revision, by cascade
        _token("GatewayTokenExpired", CONTOSO, "edge", "pod-1", T0 + timedelta(seconds=8), T0, "pod-1-expired"),
        _token("GatewayTokenNearExpiry", CONTOSO, "edge", "pod-2", T0 + timedelta(seconds=9), now + timedelta(days=3), "pod-2-near"),
        _token("GatewayTokenNearExpiry", CONTOSO, "edge", "pod-3", T0 + timedelta(seconds=10), now + timedelta(days=30), "pod-3-valid"),
        _token("GatewayTokenExpired", CONTOSO, "old", "pod-9", T0 + timedelta(seconds=11), T0, "pod-9-expired"),
        event("GatewayDeleted", "/gateways/old", at=12, service=CONTOSO),  # its instance becomes a tombstone
        _opened(CONTOSO, "payments", "r5xx", T0 + timedelta(seconds=13), "payments-r5xx-opened"),  # open past its trip: stuck
        _opened(CONTOSO, "payments", "r429", now - timedelta(minutes=1), "payments-r429-opened", "00:30:00"),  # open, not stuck
        _opened(CONTOSO, "retired", "r5xx", T0 + timedelta(seconds=14), "retired-r5xx-opened"),
        _opened(FABRIKAM, "orders", "r5xx", T0 + timedelta(seconds=15), "fabrikam-r5xx-opened"),
        _token("GatewayTokenExpired", FABRIKAM, "hub", "pod-b", T0 + timedelta(seconds=16), T0, "pod-b-expired"),
        event("ProductDeleted", "/products/inventory-check", at=17, service=FABRIKAM),
        event("APICreated", "/workspaces/w1/apis/billing", at=18, service=CONTOSO),  # a workspace's APIs
        event("APICreated", "/workspaces/w2/apis/search", at=19, service=CONTOSO),
        event("APIDeleted", "/workspaces/w1/apis/old", at=20, service=CONTOSO),  # a tombstone in w1's range
        _not_apim(now, "rejected-nov"),
    ])

    # 09:30: a backend is added in APIM and one removed, with no event for either; the next sync finds both.
    clock.moment = T0 + timedelta(minutes=30)
    arm.delete(f"{CONTOSO}/backends/retired")
    arm.put(f"{CONTOSO}/backends/billing", breaker_backend("https://billing.contoso.example", {"r5xx": "00:01:00"}))
    report = syncer.sync(contoso)
    assert report.by_kind["backend"]["added"] == 1 and report.by_kind["backend"]["tombstoned"] == 1 and not report.incomplete

    # 09:45: a user ARM cannot find yet (its details stay pending); then the alerts topic refuses an alert.
    clock.moment = T0 + timedelta(minutes=45)
    deliver([event("UserCreated", "/users/carol", at=clock.now(), service=CONTOSO)])
    topic.statuses = [401]
    deliver([_token("GatewayTokenNearExpiry", FABRIKAM, "hub", "pod-a", clock.now(), clock.now() + timedelta(days=2), "pod-a-near")])


def _management_plane(arm: ArmStandIn) -> None:
    arm.put_many(small_service(CONTOSO))
    arm.put_many([
        (f"{CONTOSO}/users/dave", user("dave")),
        (f"{CONTOSO}/apis/legacy", api("legacy", 1, True)),
        (f"{CONTOSO}/workspaces/w1/apis/billing", api("billing", 1, True)),
        (f"{CONTOSO}/workspaces/w2/apis/search", api("search", 1, True)),
        (f"{CONTOSO}/products/free", product("free", approval_required=False)),
        (f"{CONTOSO}/products/legacy", product("legacy", approval_required=True)),
        (f"{CONTOSO}/subscriptions/sub2", subscription(f"{CONTOSO}/users/alice", f"{CONTOSO}/products/legacy")),
        (f"{CONTOSO}/subscriptions/sub3", subscription(f"{CONTOSO}/users/bob", f"{CONTOSO}/products/starter")),
        (f"{CONTOSO}/backends/payments", breaker_backend("https://payments.contoso.example", {"r5xx": "00:01:00", "r429": "00:05:00"})),
        (f"{CONTOSO}/backends/ledger", breaker_backend("https://ledger.contoso.example", {"r5xx": "00:01:00"})),
        (f"{CONTOSO}/backends/retired", breaker_backend("https://retired.contoso.example", {"r5xx": "00:01:00"})),
        (FABRIKAM, {"publisherEmail": "apis@fabrikam.example", "publisherName": "Fabrikam"}),
        (f"{FABRIKAM}/backends/orders", breaker_backend("https://orders.fabrikam.example", {"r5xx": "00:05:00"})),
    ])


@pytest.fixture(scope="module")
def tables(azurite: Azurite) -> Iterator[Tables]:
    settings = fresh_settings()
    clock = ManualClock(OCT_20)
    with ArmStandIn() as arm, pytest.MonkeyPatch.context() as env:
        topic = TopicReceiver()
        _management_plane(arm)
        for name in [n for n in os.environ if n.startswith(APP_SETTING_PREFIXES)]:
            env.delenv(name)
        for name, value in {
            "INVENTORY_STORAGE": azurite.connection_string, "INVENTORY_TABLE": settings.inventory_table,
            "INVENTORY_HISTORY_TABLE": settings.history_table, "INVENTORY_REJECTED_TABLE": settings.rejected_table,
            "INVENTORY_ALERTS_TABLE": settings.outbox_table, "INVENTORY_STATUS_TABLE": settings.status_table,
            "ENRICH_FROM_ARM": "true", "ARM_ENDPOINT": arm.endpoint, **arm.identity_env(),
            "ALERTS_TOPIC_ENDPOINT": topic.endpoint, "ALERTS_TOPIC_KEY": KEY,
        }.items():
            env.setenv(name, value)
        bootstrap.install(bootstrap.build_services(Settings.from_env(), clock=clock.now, with_arm=True))
        try:
            _build(arm, clock, topic, bootstrap.services())
        finally:
            bootstrap.install(None)
            topic.close()
    yield Tables(TableServiceClient.from_connection_string(azurite.connection_string, retry_total=0), {
        INV: settings.inventory_table, HIST: settings.history_table, REJ: settings.rejected_table, ALERTS: settings.outbox_table,
        STATUS: settings.status_table})


# -- the checks ------------------------------------------------------------------------------------------------------

@pytest.mark.unit
def test_the_parser_finds_every_example_and_each_has_an_expectation() -> None:
    assert len(EXAMPLES) >= MIN_EXAMPLES, [str(e) for e in EXAMPLES]
    assert {doc for doc in DOCS if any(e.doc == doc and e.comment for e in EXAMPLES)} == set(DOCS)
    missing = [f"{e}: {e.filter}" for e in EXAMPLES if e.filter not in EXPECTED]
    assert missing == [], "an example filter without an expectation in EXPECTED"
    unused = set(EXPECTED) - {e.filter for e in EXAMPLES}
    assert unused == set(), "an expectation for a filter the docs no longer give"
    for e in EXAMPLES:
        assert e.table in ("", EXPECTED[e.filter].table), f"{e}: the doc queries {e.table}, the expectation {EXPECTED[e.filter].table}"
        assert e.comment or not e.table, f"{e}: a command example needs a comment saying what it returns"


_DELETIONS = re.compile(r"\b(tombstones?|deleted|deletions)\b")
_LIVE_CLAUSE = " and IsDeleted eq false"


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_each_example_returns_what_the_doc_says(tables: Tables, example: Example) -> None:
    expect = EXPECTED[example.filter]
    found = tables.query(expect.table, example.filter)
    labels = sorted(label(expect.table, e) for e in found)
    assert labels, f"{example}: matches nothing"
    if isinstance(expect.returns, frozenset):
        assert labels == sorted(expect.returns)
    else:
        every = tables.everything(expect.table)
        meant = sorted(label(expect.table, e) for e in every if expect.returns(e))
        assert labels == meant and len(every) > len(meant), f"{example}: the data must hold rows it leaves out"
    if expect.table != INV:
        return
    services = {e["Service"] for e in found}
    if example.comment and re.search(r"\b(any|every) service\b", example.comment):
        assert len(services) > 1, f"{example} says any service, the results hold only {services}"
    if example.comment and any(e.get("IsDeleted") for e in found):
        assert _DELETIONS.search(example.comment), f"{example}: returns tombstones, and its comment does not say so"
    if _LIVE_CLAUSE in example.filter:  # the data holds a tombstone the query would return without its clause
        unfiltered = tables.query(INV, example.filter.replace(_LIVE_CLAUSE, ""))
        assert any(e["IsDeleted"] for e in unfiltered), f"{example}: no tombstone in the data tests its IsDeleted clause"


def test_every_row_of_every_table_carries_the_schema_version(tables: Tables) -> None:
    for table in (INV, HIST, REJ, ALERTS, STATUS):
        versions = {e.get("SchemaVersion") for e in tables.everything(table)}
        assert versions == {1}, f"{table}: {versions}"


def test_updated_at_is_on_every_live_row_and_created_at_only_where_a_created_event_came(tables: Tables) -> None:
    inventory = [r for r in tables.everything(INV) if "Kind" in r]
    assert [label(INV, r) for r in inventory if not r["IsDeleted"] and "UpdatedAt" not in r] == []
    never_live = sorted(label(INV, r) for r in inventory if "UpdatedAt" not in r)
    assert never_live == ["contoso/gateways/old", WORKSPACE_TOMBSTONE, "fabrikam/products/inventory-check"]  # first seen by their deletions
    created = sorted(label(INV, r) for r in inventory if "CreatedAt" in r)
    assert created == ["contoso/products/inventory-check", "contoso/products/starter", "contoso/users/carol", *WORKSPACE_APIS]
