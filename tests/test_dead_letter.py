"""`apim-inventory replay --dead-letter`: Event Grid's dead-letter blobs, in both delivery schemas, read from
Azurite's Blob service and applied through the function's pipeline to Azurite's Table service."""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient, ContainerClient

from devtools.azurite import ACCOUNT, KEY, Azurite
from shared import bootstrap
from shared.config import Settings
from shared.entrypoints import cli
from shared.ingest.dead_letter import read_blob, strip_metadata
from shared.integrations.blobs import container_client
from shared.integrations.trigger import decode_event
from shared.store.memory import InMemoryStore
from tests.conftest import table_repo
from tests.support import (
    CLOCK,
    SERVICE_ID,
    T0,
    comparable_history,
    comparable_rows,
    event,
    history_records,
    inventory_rows,
    iso,
    processor_over,
    rejected_records,
)
from tests.tcp_proxy import TcpProxy
from tests.test_cli import Cli, store_env

_containers = itertools.count(1)
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")


def dead_lettered(payload: dict[str, Any], reason: str = "MaxDeliveryAttemptsExceeded") -> dict[str, Any]:
    """An event as Event Grid writes it to a dead-letter blob: the event plus its delivery metadata,
    lower-cased like CloudEvents extension attributes in that schema."""
    metadata = {"deadLetterReason": reason, "deliveryAttempts": 30, "lastDeliveryOutcome": "InternalServerError",
                "publishTime": iso(T0), "lastDeliveryAttemptTime": iso(T0), "lastHttpStatusCode": 500}
    if "specversion" in payload:
        metadata = {k.lower(): v for k, v in metadata.items()}
    return {**payload, **metadata}


CLOUD = [event("UserCreated", "/users/alice", at=1), event("APICreated", "/apis/orders", at=2),
         event("UserCreated", at=3, event_type="Microsoft.Storage.BlobCreated")]  # rejected as not-apim, with its payload
GRID = [event("UserCreated", "/users/bob", at=4, schema="eventgrid", service=FABRIKAM),
        event("UserDeleted", "/users/bob", at=5, schema="eventgrid", service=FABRIKAM)]


@dataclass
class DeadLetters:
    container: ContainerClient
    url: str

    def upload(self, content: list[dict[str, Any]] | bytes, topic: str = "CONTOSO-APIM-TOPIC") -> str:
        name = f"{topic}/2026/11/2/9/{uuid.uuid4()}.json"
        self.container.upload_blob(name, content if isinstance(content, bytes) else json.dumps(content).encode())
        return name

    def names(self) -> list[str]:
        return sorted(b.name for b in self.container.list_blobs())


@pytest.fixture
def dead_letters(azurite: Azurite) -> DeadLetters:
    container = BlobServiceClient.from_connection_string(azurite.blob_connection_string).create_container(
        f"deadletters{next(_containers)}")
    return DeadLetters(container, f"http://127.0.0.1:{azurite.blob_port}/{ACCOUNT}/{container.container_name}")


@pytest.fixture
def run(app_settings: Settings, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """The command's code in this process, against the fresh tables of app_settings: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("apim_inventory")
    level = logger.level

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        bootstrap.install(None)
        out, err = capsys.readouterr()
        return code, out, err

    yield invoke
    logger.setLevel(level)
    bootstrap.install(None)


def snapshot(azurite: Azurite, settings: Settings) -> tuple[Any, Any, Any]:
    repo = table_repo(azurite, settings)
    return comparable_rows(inventory_rows(repo)), comparable_history(history_records(repo)), sorted(r["RowKey"] for r in rejected_records(repo))


@pytest.mark.unit
def test_delivery_metadata_is_removed_in_both_schemas() -> None:
    for payload in (CLOUD[0], GRID[0]):
        assert strip_metadata(dead_lettered(payload)) == payload
    assert read_blob(json.dumps([dead_lettered(CLOUD[0])]).encode("utf-8-sig")) == [CLOUD[0]]
    for bad in (b"not json", b"\xff\xfe", b'"text"'):
        with pytest.raises(ValueError, match="not"):
            read_blob(bad)


def test_both_schemas_are_applied_with_counts_per_blob(run: Any, dead_letters: DeadLetters, azurite: Azurite,
                                                        app_settings: Settings) -> None:
    cloud = dead_letters.upload([dead_lettered(e) for e in CLOUD])
    grid = dead_letters.upload([dead_lettered(e) for e in GRID], topic="FABRIKAM-APIM-TOPIC")
    code, out, err = run("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string)
    assert code == 1 and err.startswith("apim-inventory: error: of 5 events, 1 were rejected. Next: ") and len(err.splitlines()) == 1
    assert out.splitlines() == [
        f"{cloud}: 3 events: applied 2, duplicate 0, stale 0, rejected 1; kept",
        f"{grid}: 2 events: applied 2, duplicate 0, stale 0, rejected 0; kept",
        "2 blobs, 5 events: applied 4, duplicate 0, stale 0, rejected 1; 0 blobs deleted, 2 kept"]
    expected = InMemoryStore()  # the same events, delivered without their metadata
    for payload in CLOUD + GRID:
        processor_over(expected, CLOCK.now).handle(decode_event(payload))
    rows, _, _ = snapshot(azurite, app_settings)
    assert rows == comparable_rows(inventory_rows(expected))
    (rejected,) = rejected_records(table_repo(azurite, app_settings))
    assert rejected["Reason"] == "not-apim" and json.loads(rejected["Payload"])["id"] == CLOUD[2]["id"]
    assert "deadletterreason" not in rejected["Payload"].lower()  # extension attributes, had they not been removed
    assert dead_letters.names() == sorted([cloud, grid])


def test_a_second_run_changes_nothing_and_delete_after_removes_the_blobs(run: Any, dead_letters: DeadLetters,
                                                                         azurite: Azurite, app_settings: Settings) -> None:
    for content in ([dead_lettered(e) for e in CLOUD], [dead_lettered(e) for e in GRID]):
        dead_letters.upload(content)
    args = ("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string)
    assert run(*args)[0] == 1  # the rejected event makes every replay of it incomplete
    first = snapshot(azurite, app_settings)
    code, out, _ = run(*args, "--delete-after")
    assert code == 1 and out.splitlines()[-1] == "2 blobs, 5 events: applied 0, duplicate 4, stale 0, rejected 1; 2 blobs deleted, 0 kept"
    assert snapshot(azurite, app_settings) == first
    assert dead_letters.names() == []


def test_a_blob_that_is_not_json_is_reported_and_kept(run: Any, dead_letters: DeadLetters, azurite: Azurite) -> None:
    broken = dead_letters.upload(b'[{"id": "cut short"')
    good = dead_letters.upload([dead_lettered(CLOUD[0])])
    code, out, err = run("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string,
                         "--delete-after")
    assert code == 1
    lines = dict(line.split(": ", 1) for line in out.splitlines()[:2])
    assert lines[broken].startswith("not JSON (") and lines[broken].endswith("; kept")
    assert lines[good] == "1 events: applied 1, duplicate 0, stale 0, rejected 0; deleted"
    assert err.startswith(f"apim-inventory: warning: {broken}: not JSON")
    assert dead_letters.names() == [broken]


def test_an_event_the_host_cannot_decode_keeps_its_blob(run: Any, dead_letters: DeadLetters, azurite: Azurite) -> None:
    undecodable = {**CLOUD[1], "time": "yesterday"}  # the converter raises, as it did when it was dead-lettered
    name = dead_letters.upload([dead_lettered(CLOUD[0]), dead_lettered(undecodable)])
    code, out, err = run("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string,
                         "--delete-after")
    assert code == 1 and dead_letters.names() == [name]
    assert out.splitlines()[0] == f"{name}: 2 events: applied 1, duplicate 0, stale 0, rejected 0, undecodable 1; kept"
    assert "event 2: the Functions host cannot decode it" in err


def test_a_store_failure_mid_blob_keeps_it_and_a_second_run_completes(run: Any, dead_letters: DeadLetters, azurite: Azurite,
                                                                      app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Table store is cut after the second event of a four-event blob (a handler on the pipeline's event
    lines cuts the proxy): the blob is kept, the command fails; once the store is back, the blob goes."""
    proxy = TcpProxy(azurite.port).start()
    monkeypatch.setenv("INVENTORY_STORAGE", f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"TableEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT};")
    events = [*CLOUD[:2], *GRID]
    name = dead_letters.upload([dead_lettered(e) for e in events])

    class CutAfterTwo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.seen = getattr(self, "seen", 0) + record.getMessage().startswith("apim_inventory.event ")
            if self.seen == 2:
                proxy.cut()

    handler = CutAfterTwo()
    logging.getLogger("apim_inventory").addHandler(handler)
    try:
        code, out, err = run("-v", "replay", "--dead-letter", dead_letters.url, "--connection-string",
                             azurite.blob_connection_string, "--delete-after")
    finally:
        logging.getLogger("apim_inventory").removeHandler(handler)
    assert code == 1 and dead_letters.names() == [name]
    assert out.splitlines() == [f"{name}: 4 events: applied 2, duplicate 0, stale 0, rejected 0; kept"]
    assert f"{name}: stopped at event 3 of 4" in err
    assert err.splitlines()[-1].startswith("apim-inventory: error: the blob is kept: the inventory store is unreachable")
    proxy.start()
    try:
        code, out, _ = run("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string,
                           "--delete-after")
    finally:
        proxy.cut()
    assert code == 0 and dead_letters.names() == []
    assert out.splitlines()[0] == f"{name}: 4 events: applied 2, duplicate 2, stale 0, rejected 0; deleted"
    expected = InMemoryStore()
    for payload in events:
        processor_over(expected, CLOCK.now).handle(decode_event(payload))
    assert snapshot(azurite, app_settings)[0] == comparable_rows(inventory_rows(expected))


def test_since_takes_blobs_last_modified_at_or_after_it(run: Any, dead_letters: DeadLetters, azurite: Azurite) -> None:
    old = dead_letters.upload([dead_lettered(CLOUD[0])])
    old_time = dead_letters.container.get_blob_client(old).get_blob_properties().last_modified
    while dead_letters.container.get_blob_client(dead_letters.upload(b"[]", topic="PROBE")).get_blob_properties().last_modified <= old_time:
        time.sleep(0.2)  # Last-Modified has whole seconds
    new = dead_letters.upload([dead_lettered(GRID[0])])
    new_time = dead_letters.container.get_blob_client(new).get_blob_properties().last_modified
    base = ("replay", "--dead-letter", dead_letters.url, "--connection-string", azurite.blob_connection_string)
    code, out, _ = run(*base, "--since", new_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "--prefix", "CONTOSO-APIM-TOPIC/")
    assert (code, out.splitlines()[-1]) == (0, "1 blobs, 1 events: applied 1, duplicate 0, stale 0, rejected 0; 0 blobs deleted, 1 kept")
    assert out.splitlines()[0].startswith(new)
    code, out, _ = run(*base, "--since", old_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "--prefix", "CONTOSO-APIM-TOPIC/")
    assert [line.split(":")[0] for line in out.splitlines()[:-1]] == sorted([old, new])


def test_usage_errors(run: Any, dead_letters: DeadLetters, azurite: Azurite) -> None:
    for argv, message in [
        (("replay",), "replay takes FILE arguments, or --dead-letter URL"),
        (("replay", "x.json", "--delete-after"), "replay takes FILE arguments, or --dead-letter URL"),
        (("replay", "x.json", "--dead-letter", dead_letters.url), "not both"),
        (("replay", "--dead-letter", dead_letters.url), "is not https: give a connection string"),
        (("replay", "--dead-letter", "deadletters"), "no DEAD_LETTER_STORAGE names the account"),
        (("replay", "--dead-letter", "https://other.blob.core.windows.net/x", "--connection-string", azurite.blob_connection_string),
         "is not in the account of the connection string"),
        (("replay", "--dead-letter", dead_letters.url, "--since", "soon"), "must be an ISO 8601 time"),
    ]:
        code, out, err = run(*argv)
        assert (code, out) == (2, ""), argv
        assert message in err and len(err.splitlines()) == 1, (argv, err)


def test_a_missing_container_fails_with_one_line(run: Any, dead_letters: DeadLetters, azurite: Azurite) -> None:
    code, out, err = run("replay", "--dead-letter", dead_letters.url + "-missing", "--connection-string", azurite.blob_connection_string)
    assert (code, out) == (1, "") and err.startswith("apim-inventory: error: the dead-letter container: cannot list the blobs")


@pytest.mark.unit
def test_container_targets_follow_the_connection_conventions() -> None:
    dev = container_client("deadletters", {"DEAD_LETTER_STORAGE": "UseDevelopmentStorage=true"})
    assert dev.url == "http://127.0.0.1:10000/devstoreaccount1/deadletters"
    url = "https://acct.blob.core.windows.net/deadletters"
    assert isinstance(container_client(url, {}).credential, DefaultAzureCredential)
    by_uri = container_client(url, {"DEAD_LETTER_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net"})
    assert by_uri.url == url and by_uri.container_name == "deadletters"


@pytest.mark.slow  # the console script, as a subprocess
def test_the_console_script_replays_dead_letters(azurite: Azurite, app_settings: Settings, dead_letters: DeadLetters,
                                                 tmp_path: Path) -> None:
    """Once as a subprocess: the account from DEAD_LETTER_STORAGE, the container by name."""
    name = dead_letters.upload([dead_lettered(e) for e in GRID])
    cli_run = Cli(store_env(azurite, app_settings), tmp_path)
    result = cli_run("replay", "--dead-letter", dead_letters.container.container_name, "--delete-after",
                     DEAD_LETTER_STORAGE=azurite.blob_connection_string)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [f"{name}: 2 events: applied 2, duplicate 0, stale 0, rejected 0; deleted",
                                          "1 blobs, 2 events: applied 2, duplicate 0, stale 0, rejected 0; 1 blobs deleted, 0 kept"]
    assert dead_letters.names() == []
