"""GET /api/health through the indexed function, against Azurite; the status rows behind it, written at most
once a minute per service per process, as maxima that concurrent writers never move backwards."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from packaging.requirements import Requirement

from devtools.azurite import ACCOUNT, KEY, ROOT, Azurite, free_port
from devtools.worker import decode_event, function_json, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.entrypoints.output import when
from shared.store.memory import InMemoryStore
from shared.store.status import StatusTracker
from tests.conftest import fresh_settings, table_repo
from tests.support import SERVICE_ID, T0, ManualClock, event
from tests.tcp_proxy import TcpProxy

FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")


def health() -> tuple[int, Any]:
    response = indexed_function("health")(func.HttpRequest("GET", "http://localhost/api/health", params={"code": "k"}, body=b""))
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def deliver(*payloads: dict[str, Any]) -> None:
    for payload in payloads:
        indexed_function("apim_events")(decode_event(payload))


@pytest.mark.unit
def test_health_needs_a_function_key() -> None:
    (trigger,) = [b for b in function_json("health")["bindings"] if b["type"] == "httpTrigger"]
    assert trigger["authLevel"] == "FUNCTION" and trigger["route"] == "api/health" and trigger["methods"] == ["GET"]


def test_healthy_with_the_last_event_of_each_service(app_services: bootstrap.Services, clock: ManualClock) -> None:
    status, body = health()
    assert status == 200 and body["storage"] == {"reachable": True} and body["services"] == [] and body["lastAppliedAt"] is None
    deliver(event("UserCreated", "/users/alice", at=10), event("UserCreated", "/users/bob", at=20, service=FABRIKAM, schema="eventgrid"))
    applied_at = clock.now()
    clock.advance(minutes=5)
    status, body = health()
    assert status == 200 and body["checkedAt"] == when(clock.now()) and body["lastAppliedAt"] == when(applied_at)
    assert body["services"] == [
        {"service": "contoso", "lastEventTime": when(T0 + timedelta(seconds=10)), "lastReceivedAt": when(applied_at),
         "lastAppliedAt": when(applied_at), "idleSeconds": 300, "lastSyncAt": None, "lastCompleteSyncAt": None, "syncInProgress": None},
        {"service": "fabrikam", "lastEventTime": when(T0 + timedelta(seconds=20)), "lastReceivedAt": when(applied_at),
         "lastAppliedAt": when(applied_at), "idleSeconds": 300, "lastSyncAt": None, "lastCompleteSyncAt": None, "syncInProgress": None}]


def pinned_azure_functions() -> str:
    """The azure-functions version requirements.txt selects for this interpreter, by its environment markers."""
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    (pin,) = [r for r in map(Requirement, lines) if r.name == "azure-functions" and (r.marker is None or r.marker.evaluate())]
    (specifier,) = pin.specifier
    assert specifier.operator == "=="
    return specifier.version


def test_health_names_the_python_and_the_pinned_library_it_runs(app_services: bootstrap.Services) -> None:
    status, body = health()
    assert status == 200 and body["runtime"] == {"python": platform.python_version(), "azureFunctions": pinned_azure_functions()}


def test_status_rows_are_written_at_most_once_a_minute_and_only_move_forward(app_services: bootstrap.Services,
                                                                               app_settings: Settings, azurite: Azurite,
                                                                               clock: ManualClock) -> None:
    statuses = table_repo(azurite, app_settings)  # the same tables, as another process sees them

    def row() -> Any:
        stored = statuses.load_status("contoso")
        assert stored is not None
        return stored

    deliver(event("UserCreated", "/users/alice", at=10))
    first = row()
    clock.advance(seconds=30)
    deliver(event("UserUpdated", "/users/alice", at=40), event("UserCreated", "/users/carol", at=41))
    assert row().etag == first.etag  # within the minute: nothing written
    clock.advance(seconds=31)
    deliver(event("UserUpdated", "/users/alice", at=30))  # older than the row: stale, but a minute has passed
    second = row().entity
    assert second["LastEventTime"] == T0 + timedelta(seconds=41) and second["LastReceivedAt"] == clock.now()
    assert second["LastAppliedAt"] == clock.now() - timedelta(seconds=31)  # the stale event applied nothing
    clock.advance(minutes=2)
    deliver(event("UserCreated", "/users/dave", at=5))  # an old event from the past: no column moves back
    third = row().entity
    assert third["LastEventTime"] == T0 + timedelta(seconds=41) and third["LastAppliedAt"] == clock.now()


def test_concurrent_processes_never_move_the_row_backwards(azurite: Azurite) -> None:
    """Two processes (two repositories, two trackers) write the same row; the one with the older values
    writes last, once from a fresh start and once with an ETag that another write made stale."""
    settings = fresh_settings()
    first_store = table_repo(azurite, settings)
    first, second = StatusTracker(first_store), StatusTracker(table_repo(azurite, settings))
    old, new = T0, T0 + timedelta(hours=1)
    second.note("contoso", "contoso", "applied", old, old)  # writes the row: second now holds its ETag
    first.note("contoso", "contoso", "applied", new, new)  # reads it, raises it
    second.note("contoso", "contoso", "applied", old + timedelta(minutes=5), old + timedelta(minutes=5))  # 412, reread, merge
    stored = first_store.load_status("contoso")
    assert stored is not None and stored.entity["LastEventTime"] == new and stored.entity["LastAppliedAt"] == new
    fresh = StatusTracker(table_repo(azurite, settings))
    fresh.note("contoso", "contoso", "duplicate", old, old)  # a new process with older values writes nothing
    again = first_store.load_status("contoso")
    assert again is not None and again.etag == stored.etag


@pytest.mark.unit
def test_the_in_memory_repository_keeps_the_same_maxima() -> None:
    repo = InMemoryStore()
    a, b = StatusTracker(repo), StatusTracker(repo)
    b.note("contoso", "contoso", "stale", T0, T0)
    a.note("contoso", "contoso", "applied", T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    b.note("contoso", "contoso", "applied", T0 + timedelta(minutes=2), T0 + timedelta(minutes=2))
    stored = repo.load_status("contoso")
    assert stored is not None and stored.entity["LastEventTime"] == T0 + timedelta(hours=1)
    assert a.flush(T0) == 0  # nothing left unwritten


def test_rejected_events_in_the_last_24_hours(app_services: bootstrap.Services, clock: ManualClock) -> None:
    now = datetime(2026, 11, 3, 10, 0, tzinfo=T0.tzinfo)
    for received in (now - timedelta(days=2), now - timedelta(hours=25), now - timedelta(hours=23), now - timedelta(hours=1)):
        clock.moment = received  # yesterday's partition holds one inside and one outside the window
        deliver(event("UserCreated", f"/widgets/{received:%d%H}"))
    clock.moment = now
    status, body = health()
    assert (status, body["rejectedLast24Hours"]) == (200, 2)
    clock.moment = now + timedelta(hours=2)
    assert health()[1]["rejectedLast24Hours"] == 1


def test_an_unreachable_store_answers_503_with_the_reason(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_STORAGE", f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"TableEndpoint=http://127.0.0.1:{free_port()}/{ACCOUNT};")
    monkeypatch.setenv("INVENTORY_STORAGE_RETRY_TOTAL", "0")
    bootstrap.install(None)
    try:
        status, body = health()  # the services cannot even be built
    finally:
        bootstrap.install(None)
    assert status == 503 and body["status"] == "unavailable" and body["storage"]["reachable"] is False
    assert body["storage"]["error"].startswith("ServiceRequestError: ") and "refused" in body["storage"]["error"]
    assert body["runtime"]["azureFunctions"] == pinned_azure_functions()  # named when the store is down too


def test_a_store_lost_after_start_answers_503(azurite: Azurite, app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = TcpProxy(azurite.port).start()
    monkeypatch.setenv("INVENTORY_STORAGE", f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"TableEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT};")
    monkeypatch.setenv("INVENTORY_STORAGE_RETRY_TOTAL", "0")
    bootstrap.install(bootstrap.build_services(clock=ManualClock().now))
    try:
        assert health()[0] == 200
        proxy.cut()
        status, body = health()
        assert status == 503 and body["storage"]["reachable"] is False
        proxy.start()
        assert health()[0] == 200
    finally:
        proxy.cut()
        bootstrap.install(None)
