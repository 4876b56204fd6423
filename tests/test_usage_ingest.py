"""The usage ingest on Azurite: real append blobs read with the Blob SDK, rows in Table Storage. The crash (a process
killed mid-blob), the re-read, the replaced blob, two runs at once, late records, a line being appended, bad lines
with their offsets, the id forms, a blob of many chunks; the composition (GATEWAY_LOGS_STORAGE's forms), the
timer and the command."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

import function_app
from devtools.azurite import Azurite
from shared import bootstrap
from shared.config import Settings
from shared.entrypoints import cli
from shared.integrations.log_blobs import BlobArchive
from shared.store.ports import Table
from shared.store.table import TableStore
from shared.store.usage_keys import checkpoint_keys
from tests.conftest import fresh_settings, table_repo
from tests.support import ManualClock
from tests.usage_ingest_support import H0, NOW, AzuriteBlobs, bad_lines, blob_name, brute_force, ingest_over, lines, record, stored_counts

ROOT = Path(__file__).resolve().parent.parent
_containers = itertools.count(1)


@pytest.fixture
def blobs(azurite: Azurite) -> AzuriteBlobs:
    service = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    return AzuriteBlobs(service.create_container(f"gatewaylogs-ingest{next(_containers)}"))


@pytest.fixture
def store(azurite: Azurite) -> TableStore:
    return table_repo(azurite, fresh_settings())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def many(hour_offset: int, n: int, **properties: Any) -> bytes:
    return lines(*(record(H0 + timedelta(hours=hour_offset, seconds=i), code=(200, 404, 500, 401)[i % 4],
                          duration=float(i % 97), **properties) for i in range(n)))


def test_reads_again_change_nothing_and_a_line_being_appended_waits(blobs: AzuriteBlobs, store: TableStore, clock: ManualClock) -> None:
    name = blob_name(H0)
    data = many(0, 30)
    blobs.append(name, data[:-40])
    ingest = ingest_over(blobs.archive, store, clock.now, chunk_size=1500)
    assert ingest.ingest().records == 29
    assert ingest.ingest().blobs == 1  # the half line: claimed, read, nothing taken
    assert ingest.ingest().records == 0
    blobs.append(name, data[-40:])
    assert ingest.ingest().records == 1
    assert ingest.ingest().blobs == 0  # offset == size: nothing is read at the end (Azurite answers 206 there)
    assert stored_counts(store) == brute_force(blobs.contents())


def test_a_replaced_blob_and_late_records(blobs: AzuriteBlobs, store: TableStore, clock: ManualClock) -> None:
    blobs.append(blob_name(H0), many(0, 20))
    blobs.append(blob_name(H0 + timedelta(hours=2)), lines(record(H0 + timedelta(minutes=9)), record(H0 + timedelta(hours=2))))
    ingest = ingest_over(blobs.archive, store, clock.now, chunk_size=2000)
    ingest.ingest()
    blobs.replace(blob_name(H0), many(0, 3, apiId="replaced"))
    assert ingest.ingest().replaced == 1
    counts = stored_counts(store)
    assert counts == brute_force(blobs.contents())
    assert counts[("contoso", "service", "2026-12-02T10", "-")][0] == 4  # three, and the late one from the blob of 12:00
    assert not any(resource == "echo-api" and hour == "2026-12-02T10" and kind == "api" and c[0] > 1
                   for (_, kind, hour, resource), c in counts.items())


def test_bad_lines_and_the_id_forms_and_many_chunks(blobs: AzuriteBlobs, store: TableStore, clock: ManualClock) -> None:
    name = blob_name(H0)
    head = many(0, 50)
    bad = [b"{not json\n", b'"a string"\n', lines({**record(H0), "time": 12}), lines({**record(H0), "resourceId": "/subscriptions/x"})]
    forms = lines(record(H0, apiId="/apis/Echo-API;rev=3", apimSubscriptionId="master", productId="/products/starter"),
                  record(H0, apimSubscriptionId=None, userId="/users/u1", backendId="be-1"))
    blobs.append(name, head + b"".join(bad) + forms)
    report = ingest_over(blobs.archive, store, clock.now, chunk_size=1024).ingest()
    assert (report.records, report.bad_lines) == (52, 4)
    offsets = [len(head) + sum(map(len, bad[:i])) for i in range(4)]
    assert bad_lines(store) == [(name, offsets[0], "not-json"), (name, offsets[1], "not-an-object"), (name, offsets[2], "no-time"),
                                (name, offsets[3], "no-resource-id")]
    counts = stored_counts(store)
    assert counts == brute_force(blobs.contents())
    ids = {(kind, resource) for (_, kind, _, resource) in counts}
    assert {("api", "echo-api;rev=3"), ("api", "echo-api"), ("subscription", "master"), ("subscription", "(none)"),
            ("product", "starter"), ("user", "u1"), ("backend", "be-1")} <= ids


def test_two_runs_at_once(blobs: AzuriteBlobs, azurite: Azurite, clock: ManualClock) -> None:
    settings = fresh_settings()
    for hour in range(3):
        blobs.append(blob_name(H0 + timedelta(hours=hour)), many(hour, 60))
    stores = [table_repo(azurite, settings) for _ in range(3)]  # each run its own clients, as two instances have
    errors: list[BaseException] = []

    def run(store: TableStore) -> None:
        try:
            ingest_over(blobs.archive, store, clock.now, chunk_size=3000).ingest()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ingest_over(blobs.archive, stores[0], clock.now).ingest()
    assert stored_counts(stores[0]) == brute_force(blobs.contents())


CRASHING = """
import sys
from datetime import datetime
from azure.data.tables import TableServiceClient
from azure.storage.blob import ContainerClient
from shared import bootstrap
from shared.config import Settings
from shared.integrations.log_blobs import BlobArchive
from tests.usage_ingest_support import ingest_over
tables, blobs, container, usage = sys.argv[1:5]
store = bootstrap.table_store(TableServiceClient.from_connection_string(tables), Settings(usage_table=usage))
archive = BlobArchive(ContainerClient.from_connection_string(blobs, container))
moment = datetime.fromisoformat(sys.argv[5])
ingest_over(archive, store, lambda: moment, chunk_size=600).ingest()
"""


@pytest.mark.slow
def test_a_process_killed_mid_blob_then_a_rerun_counts_as_a_clean_pass(blobs: AzuriteBlobs, azurite: Azurite, clock: ManualClock) -> None:
    name = blob_name(H0)
    blobs.append(name, many(0, 400))
    size = len(blobs.contents()[0])
    settings = fresh_settings()
    store = table_repo(azurite, settings)
    process = subprocess.Popen([sys.executable, "-c", CRASHING, azurite.connection_string, azurite.blob_connection_string,
                                blobs.container.container_name, settings.usage_table, NOW.isoformat()], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = store.get(Table.USAGE, *checkpoint_keys(blobs.container.container_name, name))
            if row is not None and 0 < float(row.entity["Offset"]) < size / 2:
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
    row = store.get(Table.USAGE, *checkpoint_keys(blobs.container.container_name, name))
    assert row is not None and float(row.entity["Offset"]) < size  # killed mid-blob
    assert stored_counts(store) != brute_force(blobs.contents())
    clock.advance(minutes=32)  # the dead run's claim lapses
    ingest_over(blobs.archive, store, clock.now, chunk_size=4096).ingest()
    clean = table_repo(azurite, fresh_settings())
    ingest_over(blobs.archive, clean, clock.now).ingest()
    assert stored_counts(store) == stored_counts(clean) == brute_force(blobs.contents())


def test_the_composition_takes_every_form_of_the_setting(azurite: Azurite) -> None:
    settings = Settings()
    assert bootstrap.gateway_logs(settings, {}) is None
    memory = bootstrap.in_memory().store
    forms = {
        "GATEWAY_LOGS_STORAGE": azurite.blob_connection_string,
        "GATEWAY_LOGS_STORAGE__blobServiceUri": "https://logs.blob.core.windows.net",
        "GATEWAY_LOGS_STORAGE__serviceUri": "https://logs2.blob.core.windows.net/",
        "GATEWAY_LOGS_STORAGE__accountName": "logs3",
    }
    urls = {}
    for name, value in forms.items():
        logs = bootstrap.gateway_logs(settings, {name: value}, store=memory)
        assert logs is not None and isinstance(logs.archive, BlobArchive)
        urls[name] = logs.archive.url
    assert urls["GATEWAY_LOGS_STORAGE"] == f"http://127.0.0.1:{azurite.blob_port}/devstoreaccount1/insights-logs-gatewaylogs"
    assert urls["GATEWAY_LOGS_STORAGE__blobServiceUri"] == "https://logs.blob.core.windows.net/insights-logs-gatewaylogs"
    assert urls["GATEWAY_LOGS_STORAGE__accountName"] == "https://logs3.blob.core.windows.net/insights-logs-gatewaylogs"


def test_the_timer_and_the_command_ingest(app_settings: Settings, azurite: Azurite, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    container: ContainerClient = BlobServiceClient.from_connection_string(azurite.blob_connection_string).create_container(
        f"gatewaylogs-app{next(_containers)}")
    AzuriteBlobs(container).append(blob_name(H0), many(0, 5) + b"oops\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["usage", "ingest"]) == 2  # no GATEWAY_LOGS_STORAGE
    assert "GATEWAY_LOGS_STORAGE" in capsys.readouterr().err
    monkeypatch.setenv("GATEWAY_LOGS_STORAGE", azurite.blob_connection_string)
    monkeypatch.setenv("GATEWAY_LOGS_CONTAINER", container.container_name)
    assert cli.main(["usage", "ingest", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["blobs"], document["records"], document["badLines"]) == (1, 5, 1)
    bootstrap.install(None)
    try:
        function_app.gateway_logs(None)  # type: ignore[arg-type]
        assert bootstrap.process_gateway_logs() is bootstrap.process_gateway_logs()  # built once, reused
        assert bootstrap.services().store.get(Table.USAGE, *checkpoint_keys(container.container_name, blob_name(H0))) is not None
    finally:
        bootstrap.install(None)
