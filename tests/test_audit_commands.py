"""The Activity Log through the command (the console script, as a subprocess) and the HTTP API, against Azurite:
`history` with its Caller column, `changes` with a backend change no event announced, `keys` in every output,
`audit ingest` from the archive, `audit rejected`, and GET /api/keys paged."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.storage.blob import BlobServiceClient

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.integrations.alerts import LoggingAlertPublisher
from tests.audit_support import PIPELINE, blob_name, lines, operation, record
from tests.conftest import fresh_settings, table_repo
from tests.support import T0, ManualClock, event, processor_over
from tests.test_cli import Cli, as_csv, as_json, failed, ok, store_env
from tests.test_usage_commands import call

pytestmark = pytest.mark.azurite
NOW = T0 + timedelta(days=100)
_containers = itertools.count(1)


def seed(azurite: Azurite, settings: Settings) -> None:
    store = table_repo(azurite, settings)
    processor = processor_over(store, ManualClock(T0).now)
    for payload in (event("APICreated", "/apis/orders", at=T0 + timedelta(seconds=3), event_id="e-1"),
                    event("SubscriptionCreated", "/subscriptions/s-old", at=T0), event("SubscriptionCreated", "/subscriptions/s-new", at=T0)):
        processor.handle(decode_event(payload))
    services = bootstrap.wire(store, settings, LoggingAlertPublisher(), ManualClock(T0 + timedelta(hours=1)).now)
    bootstrap.audit_writer(services).write([
        *operation("apis/orders", "APIS/WRITE", T0 + timedelta(seconds=2), "c-1"),
        *operation("backends/orders-be", "BACKENDS/WRITE", T0 + timedelta(minutes=5), "c-2", PIPELINE, result="Failure"),
        record("subscriptions/s-new", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", NOW - timedelta(days=1), "k-1"),
        record("subscriptions/s-new", "SUBSCRIPTIONS/REGENERATESECONDARYKEY/ACTION", "Success", NOW - timedelta(days=1), "k-2"),
        {"time": "later", "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/APIS/WRITE"}], "backfill:test")


@pytest.fixture(scope="module")
def cli(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    settings = fresh_settings()
    seed(azurite, settings)
    return Cli({**store_env(azurite, settings), "INVENTORY_USAGE_TABLE": settings.usage_table}, tmp_path_factory.mktemp("audit"))


def test_history_shows_who(cli: Cli) -> None:
    (entry,) = as_json(cli("history", "contoso/apis/orders", "-o", "json"))
    assert (entry["EventType"], entry["callerUpn"], entry["auditJoined"]) == ("Microsoft.ApiManagement.APICreated", "alice@contoso.com", True)
    assert "user alice@contoso.com" in ok(cli("history", "contoso/apis/orders"))
    (row,) = as_csv(cli("history", "contoso/backends/orders-be", "-o", "csv"))
    assert (row["EventType"], row["Change"], row["Caller"]) == ("activityLog", "write failed", "servicePrincipal app-pipeline (failed)")


def test_changes_show_a_change_no_event_announced(cli: Cli) -> None:
    answer = as_json(cli("--now", (T0 + timedelta(hours=1)).isoformat(), "changes", "--since", T0.isoformat(), "-o", "json"))
    assert [(i["Path"], i.get("operation"), i.get("result"), i.get("callerUpn")) for i in answer["items"] if "subscriptions" not in i["Path"]] == [
        ("backends/orders-be", "write", "failed", ""), ("apis/orders", "write", "succeeded", "alice@contoso.com")]
    assert answer["items"][1]["auditJoined"] is True  # the event, with the record that explains it: the record is no entry of its own
    assert "servicePrincipal app-pipeline (failed)" in ok(cli("--now", (T0 + timedelta(hours=1)).isoformat(), "changes", "--since", T0.isoformat()))


def test_keys_in_every_output(cli: Cli) -> None:
    now = NOW.isoformat()
    answer = as_json(cli("--now", now, "keys", "--older-than", "90d", "-o", "json"))
    assert [(i["path"], i["status"]) for i in answer["items"]] == [("subscriptions/s-old", "unknown")]
    assert answer["lowerBound"] is True
    table = ok(cli("--now", now, "keys"))
    assert "lower bound" in table.lower() and "subscriptions/s-old" in table
    assert [r["path"] for r in as_csv(cli("--now", now, "keys", "-o", "csv"))] == ["subscriptions/s-old"]
    assert "older-than" in failed(cli("keys", "--older-than", "soon"), 2)


def test_audit_rejected_and_ingest(cli: Cli, azurite: Azurite) -> None:
    answer = as_json(cli("--now", (T0 + timedelta(hours=2)).isoformat(), "audit", "rejected", "--since", T0.isoformat(), "-o", "json"))
    assert [(i["blob"], i["reason"]) for i in answer["items"]] == [("backfill:test", "no-time")]
    assert "ACTIVITY_LOGS_STORAGE" in failed(cli("audit", "ingest"), 2)
    container = f"activity-cli-{next(_containers)}"
    client = BlobServiceClient.from_connection_string(azurite.blob_connection_string).create_container(container)
    blob = client.get_blob_client(blob_name(T0.replace(minute=0)))
    blob.create_append_blob()
    blob.append_block(lines(*operation("namedValues/n1", "NAMEDVALUES/WRITE", T0 + timedelta(minutes=9), "c-9")))
    env = {"ACTIVITY_LOGS_STORAGE": azurite.blob_connection_string, "ACTIVITY_LOGS_CONTAINER": container}
    report = as_json(cli("--now", (T0 + timedelta(hours=1)).isoformat(), "audit", "ingest", "-o", "json", **env))
    assert (report["records"], report["written"], report["badRecords"]) == (2, 1, 0)
    (entry,) = as_json(cli("history", "contoso/namedValues/n1", "-o", "json"))
    assert entry["operation"] == "write"


@pytest.fixture(scope="module")
def api(azurite: Azurite) -> Iterator[None]:
    settings = fresh_settings()
    seed(azurite, settings)
    bootstrap.install(bootstrap.wire(table_repo(azurite, settings), settings, LoggingAlertPublisher(), lambda: NOW))  # what the functions use
    yield
    bootstrap.install(None)


def test_the_api_pages_the_keys_and_names_callers(api: None, monkeypatch: pytest.MonkeyPatch) -> None:
    status, masked = call("history", {"id": "contoso/apis/orders"})  # a function key is served as Inventory.Read by default
    assert status == 200 and [(e["callerUpn"], e["callerObjectId"] != "(masked)") for e in masked["items"]] == [("(masked)", True)]
    monkeypatch.setenv("FUNCTION_KEY_ROLE", "Inventory.PersonalData.Read")
    status, first = call("keys", {"olderThan": "1h", "top": "1"})
    assert status == 200 and [i["path"] for i in first["items"]] == ["subscriptions/s-new"] and first["continuationToken"]
    status, rest = call("keys", {"olderThan": "1h", "continuationToken": first["continuationToken"]})
    assert [i["path"] for i in rest["items"]] == ["subscriptions/s-old"] and rest["continuationToken"] is None
    assert call("keys", {"olderThan": "never"})[0] == 400
    status, history = call("history", {"id": "contoso/apis/orders"})
    assert status == 200 and [(e["callerUpn"], e["auditJoined"]) for e in history["items"]] == [("alice@contoso.com", True)]


