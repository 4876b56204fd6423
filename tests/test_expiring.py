"""What expires, read-only: `expiring`, `sweep --dry-run`, the refusal of a sweep at a future --now, and `alerts`,
through the installed console script against Azurite, with subscriptions synced from the ARM stand-in and gateway
tokens replayed as events; and their HTTP twins, through the indexed functions."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import small_service, subscription
from devtools.worker import indexed_function
from shared import bootstrap
from shared.config import Settings
from tests.conftest import fresh_settings
from tests.support import SERVICE_ID, event
from tests.test_cli import Cli, as_json, as_table, at, failed, ok, store_env
from tests.topic_receiver import KEY, TopicReceiver

pytestmark = pytest.mark.slow  # the console script, as a subprocess
NOW = datetime.now(timezone.utc).replace(microsecond=0)
# Subscriptions in ARM, by name: (expirationDate from now, state); None: no expiry.
SUBSCRIPTIONS: dict[str, tuple[timedelta | None, str]] = {
    "soon": (timedelta(days=5), "active"), "later": (timedelta(days=60), "active"), "lapsed": (timedelta(days=-2), "expired"),
    "forever": (None, "active"), "doomed": (timedelta(days=3), "active"),
}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def arm_resources() -> Iterator[tuple[str, dict[str, Any]]]:
    for resource_id, properties in small_service(SERVICE_ID):
        if resource_id.endswith("/subscriptions/sub1"):
            properties = {**properties, "expirationDate": iso(NOW + timedelta(days=400))}
        yield resource_id, properties
    for name, (ahead, state) in SUBSCRIPTIONS.items():
        properties = subscription(f"{SERVICE_ID}/users/alice", f"{SERVICE_ID}/apis/orders", state)
        properties["expirationDate"] = iso(NOW + ahead) if ahead is not None else None
        yield f"{SERVICE_ID}/subscriptions/{name}", properties


@dataclass(frozen=True)
class Store:
    cli: Cli
    azurite: Azurite
    settings: Settings

    def tables(self) -> dict[tuple[str, str, str], tuple[str | None, dict[str, Any]]]:
        """Every entity of the five tables, with its ETag: what a read-only command must leave as it is."""
        client = TableServiceClient.from_connection_string(self.azurite.connection_string)
        s = self.settings
        found: dict[tuple[str, str, str], tuple[str | None, dict[str, Any]]] = {}
        for name in (s.inventory_table, s.history_table, s.rejected_table, s.outbox_table, s.status_table):
            for entity in client.get_table_client(name).list_entities():
                found[(name, entity["PartitionKey"], entity["RowKey"])] = (entity.metadata["etag"], dict(entity))
        return found


def token_events(now: datetime) -> list[dict[str, Any]]:
    return [event("GatewayCreated", "/gateways/edge", at=now - timedelta(minutes=40)),
            event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=now - timedelta(minutes=10)),  # expires in 3 days less 10 minutes
            event("GatewayTokenExpired", "/gateways/edge/pod-2", at=now - timedelta(minutes=5))]  # expired a day and 5 minutes ago


@pytest.fixture(scope="module")
def store(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Subscriptions synced from ARM, gateway tokens replayed, one subscription deleted by its event."""
    settings = fresh_settings()
    run = Cli(store_env(azurite, settings), tmp_path_factory.mktemp("expiring"))
    with ArmStandIn() as arm:
        arm.put_many(arm_resources())
        ok(run("sync", "--service", SERVICE_ID, "-o", "json", ARM_ENDPOINT=arm.endpoint, **arm.identity_env()))
    ok(run("replay", "-", stdin=json.dumps(token_events(NOW))))
    deleted = event("SubscriptionDeleted", "/subscriptions/doomed", at=datetime.now(timezone.utc) + timedelta(seconds=1))
    ok(run("replay", "-", stdin=json.dumps([deleted])))
    yield Store(run, azurite, settings)


def paths(document: dict[str, Any]) -> list[str]:
    return [item["Path"] for item in document["items"]]


def test_expiring_lists_tokens_and_subscriptions_soonest_first_the_expired_first(store: Store) -> None:
    before = store.tables()
    document = as_json(store.cli("expiring", "--within", "30d", "-o", "json"))
    assert paths(document) == ["subscriptions/lapsed", "gateways/edge/instances/pod-2", "gateways/edge/instances/pod-1", "subscriptions/soon"]
    assert [item["Expired"] for item in document["items"]] == [True, True, False, False]
    assert document["items"][0]["ExpiresAt"] == iso(NOW - timedelta(days=2))
    rows = as_table(store.cli("expiring", "--within", "30d"))
    assert [(r["Path"], r["Status"]) for r in rows[:2]] == [("subscriptions/lapsed", "expired"), ("gateways/edge/instances/pod-2", "expired")]
    assert rows[2]["Status"].startswith("in 2d ") and rows[3]["Status"].startswith("in 4d ")  # pod-1, soon
    assert not any("expires" in cell for r in rows for cell in r.values())
    # Further ahead: the subscription of 60 days, and sub1 (400 days) once the window reaches it; never the deleted
    # subscription, nor the one without an expiry.
    longer = paths(as_json(store.cli("expiring", "--within", "70d", "-o", "json")))
    assert longer[-1] == "subscriptions/later" and "subscriptions/doomed" not in longer and "subscriptions/forever" not in longer
    far = paths(as_json(store.cli("expiring", "--within", "520w", "-o", "json")))
    assert "subscriptions/sub1" in far and len(far) == 6
    # At a --now ahead of everything but the late ones, all that is listed is expired.
    ahead = as_json(store.cli("--now", at(NOW + timedelta(days=10)), "expiring", "--within", "0d", "-o", "json"))
    assert paths(ahead) == ["subscriptions/lapsed", "gateways/edge/instances/pod-2", "gateways/edge/instances/pod-1", "subscriptions/soon"]
    assert all(item["Expired"] for item in ahead["items"])
    csv_lines = ok(store.cli("expiring", "-o", "csv")).splitlines()
    assert csv_lines[0] == "Service,Kind,Path,ExpiresAt,Expired,SubscriptionState,ResourceId" and len(csv_lines) == 5
    assert store.tables() == before  # computed at read time: nothing written


def test_expiring_refuses_a_window_it_cannot_read(store: Store) -> None:
    line = failed(store.cli("expiring", "--within", "soon"), 2)
    assert "--within" in line and "30d" in line


def test_sweep_dry_run_shows_what_a_sweep_would_do_and_writes_nothing(store: Store) -> None:
    before = store.tables()
    document = as_json(store.cli("--now", at(NOW + timedelta(days=4)), "sweep", "--dry-run", "-o", "json"))
    assert document["dryRun"] is True and document["now"] == iso(NOW + timedelta(days=4))
    (change,) = document["transitions"]  # pod-1's token has expired by then; pod-2 was reported expired already
    assert change["path"] == "gateways/edge/instances/pod-1" and change["changes"]["TokenStatus"] == {"from": "nearExpiry", "to": "expired"}
    assert [a["type"] for a in change["alerts"]] == ["ApimInventory.GatewayTokenExpired"] and document["wouldRaise"] == 1
    # Any setting: a window of 1 day makes pod-1's token valid again today, which raises no alert.
    lenient = as_json(store.cli("sweep", "--dry-run", "-o", "json", TOKEN_WARNING_DAYS="1"))
    assert [(t["path"], t["changes"]["TokenStatus"]["to"], t["alerts"]) for t in lenient["transitions"]] == [
        ("gateways/edge/instances/pod-1", "valid", [])]
    text = ok(store.cli("--now", at(NOW + timedelta(days=4)), "sweep", "--dry-run"))
    assert text.startswith(f"Dry run of a sweep at {iso(NOW + timedelta(days=4))} (TOKEN_WARNING_DAYS=7, ")
    assert "TokenStatus nearExpiry -> expired" in text and "GatewayTokenExpired" in text
    assert store.tables() == before


def test_a_sweep_at_a_future_now_refuses_to_write_unless_forced(store: Store, tmp_path: Path) -> None:
    before = store.tables()
    line = failed(store.cli("--now", at(NOW + timedelta(days=400)), "sweep"), 2)
    assert "is in the future" in line and "--dry-run" in line and "--force" in line
    assert store.tables() == before


def test_alerts_read_the_outbox_and_a_sweep_says_where_its_alerts_went(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    now = datetime.now(timezone.utc)
    lenient = {"TOKEN_WARNING_DAYS": "1"}  # nothing is flagged by the events themselves
    ok(run("replay", "-", stdin=json.dumps(token_events(now)[:2]), **lenient))
    assert as_json(run("alerts", "-o", "json")) == {"count": 0, "items": []}
    topic = TopicReceiver(statuses=[500] * 20)  # the topic fails: the alert stays pending
    try:
        failing = run("sweep", ALERTS_TOPIC_ENDPOINT=topic.endpoint, ALERTS_TOPIC_KEY=KEY)
    finally:
        topic.close()
    assert failing.returncode == 0 and "alerts stay pending for the next sweep" in failing.stderr, failing
    rows = as_table(subprocess.CompletedProcess(failing.args, 0, failing.stdout, ""))  # the table, on stdout
    assert [(r["Sweep"], r["Changed"], r["AlertsSent"], r["AlertsPending"]) for r in rows] == [
        ("gatewayInstance", "1", "0", "1"), ("circuitBreakerRule", "0", "0", "1")]
    (pending,) = as_json(run("alerts", "--pending", "-o", "json"))["items"]
    assert (pending["type"], pending["state"], pending["subject"]) == ("ApimInventory.GatewayTokenNearExpiry", "pending",
                                                                       "gateways/edge/instances/pod-1")
    # No topic configured: the pending alert goes to the log, and the sweep says so.
    rows = as_table(run("sweep"))
    assert [(r["AlertsLogged"], r["AlertsPending"]) for r in rows] == [("1", "0"), ("0", "0")] and "AlertsSent" not in rows[0]
    assert as_json(run("alerts", "--pending", "-o", "json"))["count"] == 0
    (logged,) = as_json(run("alerts", "-o", "json"))["items"]
    assert (logged["id"], logged["state"]) == (pending["id"], "logged") and logged["sentAt"] is not None
    table = as_table(run("alerts"))
    assert [(r["State"], r["Type"], r["Subject"]) for r in table] == [("logged", "GatewayTokenNearExpiry", "gateways/edge/instances/pod-1")]
    assert as_json(run("alerts", "--since", at(now + timedelta(hours=1)), "-o", "json"))["count"] == 0
    assert as_json(run("alerts", "--since", "1h", "-o", "json"))["count"] == 1
    assert "--since" in failed(run("alerts", "--since", "yesterday"), 2)


# -- the HTTP API ---------------------------------------------------------------------------------
def call(name: str, params: dict[str, str]) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{name}", params=params, route_params={}, body=b"")
    response = indexed_function(name)(req)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def test_the_http_api_answers_expiring_and_alerts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_STORAGE", store.azurite.connection_string)
    bootstrap.install(bootstrap.build_services(store.settings, clock=lambda: NOW))
    try:
        status, body = call("expiring", {"within": "30d"})
        assert status == 200 and paths(body) == ["subscriptions/lapsed", "gateways/edge/instances/pod-2",
                                                 "gateways/edge/instances/pod-1", "subscriptions/soon"]
        assert call("expiring", {})[1]["count"] == 4  # 30 days unless told
        status, body = call("expiring", {"within": "a month"})
        assert status == 400 and "within" in body["error"]
        assert call("expiring", {"window": "30d"})[0] == 400
        status, body = call("alerts", {"pending": "true"})
        assert status == 200 and body == {"count": 0, "items": []}
        assert call("alerts", {"since": "yesterday"})[0] == 400
    finally:
        bootstrap.install(None)

