"""Token and circuit-breaker flags kept current by the clock, and the alerts they raise, published
to a stand-in topic on 127.0.0.1 through azure-eventgrid. Timers run through the indexed functions,
and the clock is moved, never slept on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from devtools.azurite import Azurite
from devtools.worker import decode_event, fire_timer, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.flags import Alert, FlagPolicy, evaluate, token_status
from shared.migration.layout import Migration
from shared.queries.inventory import InventoryQueries, resolve_id
from shared.store import keys
from shared.store.keys import BUCKETS, COUNT_ROW, key_of
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, Store, StoredRow, Table, Token
from tests.conftest import table_repo
from tests.support import T0, ManualClock, count_rows, event, inventory_rows, iso, pending_entities, processor_over
from tests.topic_receiver import KEY, TopicReceiver


@pytest.fixture
def topic(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TopicReceiver]:
    receiver = TopicReceiver()
    monkeypatch.setenv("ALERTS_TOPIC_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("ALERTS_TOPIC_KEY", KEY)
    yield receiver
    receiver.close()


@pytest.fixture
def app(topic: TopicReceiver, clock: ManualClock) -> Iterator[bootstrap.Services]:
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    yield bootstrap.services()
    bootstrap.install(None)


def send(payload: dict[str, Any]) -> None:
    indexed_function("apim_events")(decode_event(payload))


def row(app: bootstrap.Services, path: str) -> dict[str, Any]:
    return next(r for r in inventory_rows(app.store) if r["Path"] == path)


def near_expiry(expires_in: timedelta, clock: ManualClock, at: float = 0) -> dict[str, Any]:
    return event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=clock.now() + timedelta(seconds=at),
                 data={"gatewayInfo": {"gatewayId": "edge", "instanceId": "pod-1"},
                       "tokenInfo": {"expiresAtUtc": iso(clock.now() + expires_in)}})


INSTANCE = "gateways/edge/instances/pod-1"
RULE = "backends/payments/circuit-breaker/rules/r5xx"


def test_token_moves_from_valid_to_near_expiry_to_expired_by_the_clock(app: bootstrap.Services, topic: TopicReceiver,
                                                                        clock: ManualClock) -> None:
    send(near_expiry(timedelta(days=10), clock))
    assert row(app, INSTANCE)["TokenStatus"] == "valid"
    assert topic.accepted == []

    clock.advance(days=4)  # 6 days left: inside the 7-day window
    fire_timer("gateway_token_sweep")
    assert row(app, INSTANCE)["TokenStatus"] == "nearExpiry"
    assert topic.types() == ["GatewayTokenNearExpiry"]
    fire_timer("gateway_token_sweep")  # sweeping twice sends nothing new
    assert topic.requests == 1

    clock.advance(days=6, minutes=1)  # past the expiry, and no Expired event ever came
    fire_timer("gateway_token_sweep")
    assert row(app, INSTANCE)["TokenStatus"] == "expired"
    assert topic.types() == ["GatewayTokenNearExpiry", "GatewayTokenExpired"]
    alert = topic.accepted[-1]
    assert alert["subject"] == INSTANCE and alert["source"].endswith("/service/contoso")
    assert alert["data"]["oldState"] == "nearExpiry" and alert["data"]["newState"] == "expired"
    assert alert["data"]["gateway"] == "edge" and alert["data"]["instance"] == "pod-1"
    assert alert["data"]["tokenExpiresAt"].startswith((T0 + timedelta(hours=1, days=10)).strftime("%Y-%m-%dT%H:%M"))

    # A late Expired event for the same token after the sweep flagged it: no second alert.
    send(event("GatewayTokenExpired", "/gateways/edge/pod-1", at=clock.now() - timedelta(minutes=30),
               data={"gatewayInfo": {"gatewayId": "edge", "instanceId": "pod-1"},
                     "tokenInfo": {"expiredAtUtc": alert["data"]["tokenExpiresAt"]}}))
    fire_timer("gateway_token_sweep")
    assert topic.types() == ["GatewayTokenNearExpiry", "GatewayTokenExpired"]

    # The token is regenerated: a newer NearExpiry with a later expiry sets what that expiry implies.
    send(near_expiry(timedelta(days=30), clock, at=1))
    assert row(app, INSTANCE)["TokenStatus"] == "valid"
    assert topic.problems == []


def test_breaker_open_then_stuck_then_closed(app: bootstrap.Services, topic: TopicReceiver, clock: ManualClock) -> None:
    send(event("CircuitBreaker.Opened", "/" + RULE, at=clock.now()))  # tripDuration 00:05:00
    rule = row(app, RULE)
    assert rule["BreakerState"] == "open" and rule["StuckOpen"] is False
    assert rule["ExpectedCloseAt"] == rule["OpenedAt"] + timedelta(minutes=5)
    assert topic.types() == ["CircuitBreakerOpened"]  # published by the event itself

    clock.advance(minutes=9)  # past ExpectedCloseAt, inside the 5-minute grace
    fire_timer("circuit_breaker_sweep")
    assert row(app, RULE)["StuckOpen"] is False
    clock.advance(minutes=2)
    fire_timer("circuit_breaker_sweep")
    fire_timer("circuit_breaker_sweep")
    assert row(app, RULE)["StuckOpen"] is True and row(app, RULE)["BreakerState"] == "open"
    assert topic.types() == ["CircuitBreakerOpened", "CircuitBreakerStuckOpen"]

    send(event("CircuitBreaker.Closed", "/" + RULE, at=clock.now()))  # a later Closed clears the flag
    rule = row(app, RULE)
    assert rule["BreakerState"] == "closed" and rule["StuckOpen"] is False and "ExpectedCloseAt" not in rule
    assert topic.types() == ["CircuitBreakerOpened", "CircuitBreakerStuckOpen", "CircuitBreakerClosed"]
    assert topic.accepted[-1]["data"]["oldState"] == "stuckOpen"
    assert topic.problems == []


def test_failed_publish_stays_in_the_outbox_and_goes_out_next_sweep(app: bootstrap.Services, topic: TopicReceiver,
                                                                    clock: ManualClock) -> None:
    topic.statuses = [500] * 8  # more than the client's own retries
    send(event("CircuitBreaker.Opened", "/" + RULE, at=clock.now()))
    assert topic.accepted == [] and topic.requests >= 2
    assert len(pending_entities(app.store)) == 1
    fire_timer("circuit_breaker_sweep")  # the topic is still failing
    assert topic.accepted == [] and len(pending_entities(app.store)) == 1
    topic.statuses = []
    fire_timer("circuit_breaker_sweep")
    assert topic.types() == ["CircuitBreakerOpened"]
    assert pending_entities(app.store) == []
    fire_timer("circuit_breaker_sweep")
    assert topic.types() == ["CircuitBreakerOpened"]


def test_unauthorized_topic_keeps_alerts_pending(app: bootstrap.Services, topic: TopicReceiver, clock: ManualClock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    topic.statuses = [401]
    send(near_expiry(timedelta(days=2), clock))
    assert topic.accepted == [] and topic.requests == 1  # 401 is not retried
    assert any("alert publish failed" in r.getMessage() for r in caplog.records)
    pending = pending_entities(app.store)
    assert [p["AlertType"] for p in pending] == ["ApimInventory.GatewayTokenNearExpiry"]
    fire_timer("gateway_token_sweep")
    assert [e["id"] for e in topic.accepted] == [pending[0]["RowKey"]]  # the same, stable id


@pytest.mark.unit
def test_alert_ids_are_stable_per_transition(clock: ManualClock) -> None:
    from shared.domain.flags import transitions

    base = {"Kind": "gatewayInstance", "Path": INSTANCE, "ResourceId": "/x/service/s/" + INSTANCE,
            "PartitionKey": "gateway|s|01", "RowKey": "gateways|edge|instances|pod-1", "TokenExpiresAt": T0}
    first = transitions({**base, "TokenStatus": "valid"}, {**base, "TokenStatus": "expired"}, clock.now())
    again = transitions({**base, "TokenStatus": "nearExpiry"}, {**base, "TokenStatus": "expired"}, clock.advance(hours=1))
    renewed = transitions({**base, "TokenStatus": "valid"},
                          {**base, "TokenStatus": "expired", "TokenExpiresAt": T0 + timedelta(days=90)}, clock.now())
    assert first[0].id == again[0].id != renewed[0].id


@pytest.mark.unit
def test_flag_rules() -> None:
    policy = FlagPolicy(timedelta(days=7), timedelta(minutes=5))
    assert token_status(T0 + timedelta(days=8), T0, policy.token_warning) == "valid"
    assert token_status(T0 + timedelta(days=7), T0, policy.token_warning) == "nearExpiry"
    assert token_status(T0, T0, policy.token_warning) == "expired"
    rule = {"Kind": "circuitBreakerRule", "BreakerState": "open", "OpenedAt": T0, "TripDuration": "1.02:00:00"}
    assert evaluate(rule, T0, policy)["ExpectedCloseAt"] == T0 + timedelta(days=1, hours=2)
    assert evaluate(rule, T0 + timedelta(days=1, hours=2, minutes=6), policy)["StuckOpen"] is True
    assert evaluate({**rule, "BreakerState": "closed"}, T0 + timedelta(days=9), policy)["StuckOpen"] is False
    expired = {"Kind": "gatewayInstance", "TokenStatus": "expired", "TokenExpiresAt": T0 + timedelta(days=30)}
    assert evaluate(expired, T0, policy)["TokenStatus"] == "expired"


def test_without_a_topic_alerts_are_logged(app_services: bootstrap.Services, clock: ManualClock,
                                           caplog: pytest.LogCaptureFixture) -> None:
    send(near_expiry(timedelta(days=1), clock))
    assert any("alert ApimInventory.GatewayTokenNearExpiry" in r.getMessage() for r in caplog.records)
    assert pending_entities(app_services.store) == []


def test_gateway_deletion_tombstones_instances_and_sweeps_skip_them(app: bootstrap.Services, topic: TopicReceiver,
                                                                     clock: ManualClock) -> None:
    send(near_expiry(timedelta(days=10), clock))
    send(event("GatewayDeleted", "/gateways/edge", at=clock.now() + timedelta(seconds=5)))
    assert row(app, INSTANCE)["IsDeleted"] is True
    clock.advance(days=20)
    fire_timer("gateway_token_sweep")
    assert topic.accepted == []


def test_two_flushes_of_the_same_alerts_do_not_fail(azurite: Azurite, clock: ManualClock) -> None:
    """Concurrent invocations may flush the same pending alerts; moving them to sent is idempotent."""
    repo = table_repo(azurite)
    alerts = [Alert(f"id{i}", "ApimInventory.CircuitBreakerOpened", "/s", RULE, clock.now(), {"n": i}) for i in range(3)]
    repo.add_alerts(alerts)
    pending = repo.pending_alerts()
    repo.mark_alerts_sent(pending[:1], clock.now())
    repo.mark_alerts_sent(pending, clock.now())  # one of them is already gone
    assert pending_entities(repo) == []


# -- `flags` reads what it lists: the count rows' lists of flagged rows --------------------------------------------
class ReadLog:
    """The store's read side, noting every request and every entity it returns."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.requests: list[str] = []
        self.entities: list[Entity] = []

    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        self.requests.append(f"get {partition_key} {row_key}")
        found = self._store.get(table, partition_key, row_key)
        self.entities += [found.entity] if found else []
        return found

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        self.requests.append(f"page {query}")
        rows, token = self._store.page(query, top, continuation)
        self.entities += rows
        return rows, token

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        self.requests.append(f"scan {query}")
        for rows in self._store.scan(query, page_size, select):
            self.entities += [row.entity for row in rows]
            yield rows


def token(gateway: str, instance: str, expires_in: timedelta, clock: ManualClock, expired: bool = False) -> dict[str, Any]:
    info = {"expiredAtUtc": iso(clock.now() - timedelta(hours=1))} if expired else {"expiresAtUtc": iso(clock.now() + expires_in)}
    return event("GatewayTokenExpired" if expired else "GatewayTokenNearExpiry", f"/gateways/{gateway}/{instance}", at=clock.now(),
                 data={"gatewayInfo": {"gatewayId": gateway, "instanceId": instance}, "tokenInfo": info})


def flagged_paths(found: dict[str, list[Entity]]) -> dict[str, list[str]]:
    return {name: [row["Path"] for row in rows] for name, rows in found.items()}


def in_key_order(store: Store, paths: set[str]) -> list[str]:
    return [row["Path"] for row in sorted(inventory_rows(store), key=key_of) if row["Path"] in paths]


def test_flags_reads_no_row_it_does_not_list(azurite: Azurite, clock: ManualClock) -> None:
    store = table_repo(azurite)
    processor = processor_over(store, clock.now)
    for gateway in ("edge", "west", "east"):
        for n in range(8):  # valid tokens: read by nothing
            processor.handle(decode_event(token(gateway, f"ok-{n}", timedelta(days=30), clock)))
    for payload in (token("edge", "soon", timedelta(days=2), clock), token("west", "late", timedelta(0), clock, expired=True),
                    token("east", "gone", timedelta(days=1), clock), event("GatewayDeleted", "/gateways/east", at=clock.now()),
                    event("CircuitBreaker.Opened", "/backends/pay/circuit-breaker/rules/open", at=clock.now()),
                    *(event(f"CircuitBreaker.{verb}", f"/backends/pay/circuit-breaker/rules/shut-{n}", at=clock.now() + timedelta(seconds=s))
                      for n in range(4) for s, verb in enumerate(("Opened", "Closed")))):
        processor.handle(decode_event(payload))
    reads = ReadLog(store)
    found = InventoryQueries(store, reads, clock.now).flags()

    tokens = {"gateways/edge/instances/soon", "gateways/west/instances/late"}  # east's is a tombstone now
    assert flagged_paths(found) == {"tokens": in_key_order(store, tokens), "breakers": ["backends/pay/circuit-breaker/rules/open"]}
    read_rows = [e for e in reads.entities if e["RowKey"] != COUNT_ROW and e.get("Kind")]
    assert sorted(e["Path"] for e in read_rows) == sorted([*tokens, "backends/pay/circuit-breaker/rules/open"])
    # The layout marker, the status rows, 16 count rows of each family, a point read per flagged row: no query of rows.
    assert len(reads.requests) == 2 + 2 * BUCKETS + 3 and not any(r.startswith("scan") for r in reads.requests)


@pytest.mark.unit
def test_flags_past_the_string_limit_reads_that_partition(memory_store: InMemoryStore, clock: ManualClock) -> None:
    """80 flagged instances with 400-character names: their list would pass 32K characters, so the count row says it
    overflowed and `flags` reads the partition's instances; a recount finds the list short again."""
    memory_store.create_tables()  # a new install's layout marker
    processor = processor_over(memory_store, clock.now)
    names = [f"{n:03d}" + "p" * 397 for n in range(80)]
    for name in [*names, "ok"]:
        processor.handle(decode_event(token("edge", name, timedelta(days=30 if name == "ok" else 2), clock)))
    processor.handle(decode_event(token("west", "soon", timedelta(days=2), clock)))
    partition = [c for c in count_rows(memory_store) if c["PartitionKey"] == keys.resource_keys(resolve_id("contoso/gateways/edge"))[0]]
    edge = next(c for c in partition if c["RowKey"] == COUNT_ROW)  # the flag row; the shards count the rest
    assert edge["FlaggedOverflow"] is True and "Flagged" not in edge and sum(c.get("Live_gatewayInstance", 0) for c in partition) == 81

    reads = ReadLog(memory_store)
    found = InventoryQueries(memory_store, reads, clock.now).flags()
    expected = in_key_order(memory_store, {f"gateways/edge/instances/{n}" for n in names} | {"gateways/west/instances/soon"})
    assert flagged_paths(found) == {"tokens": expected, "breakers": []}
    assert [r for r in reads.requests if r.startswith("page") and edge["PartitionKey"] in r]  # the overflowed partition's rows

    processor.handle(decode_event(event("GatewayDeleted", "/gateways/edge", at=clock.now() + timedelta(seconds=1))))
    assert flagged_paths(InventoryQueries(memory_store, memory_store, clock.now).flags()) == {
        "tokens": ["gateways/west/instances/soon"], "breakers": []}
    assert memory_store.get(Table.INVENTORY, edge["PartitionKey"], COUNT_ROW).entity["FlaggedOverflow"] is True  # type: ignore[union-attr]
    Migration(memory_store, clock.now).recount()
    edge = next(c for c in count_rows(memory_store) if c["PartitionKey"] == edge["PartitionKey"] and c["RowKey"] == COUNT_ROW)
    assert edge["Flagged"] == "{}" and "FlaggedOverflow" not in edge
