"""The Activity Log's archive on Azurite, end to end: append blobs as the subscription's diagnostic setting writes
them, the `activity_logs` timer (through the function app and the composition root), audit rows and their callers in
history; a re-read, a line being appended, a bad line and a run that dies mid-chunk change nothing."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

import function_app
from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.audit.ingest import ActivityLogs
from shared.audit.records import AuditWriter
from shared.config import Settings
from shared.integrations.log_blobs import BlobArchive
from shared.store.ports import Entity, Query, StoredRow, Table
from shared.store.table import TableStore
from tests.audit_support import PIPELINE, blob_name, lines, operation, record
from tests.conftest import fresh_settings, table_repo
from tests.support import T0, ManualClock, event
from tests.usage_ingest_support import AzuriteBlobs

pytestmark = pytest.mark.azurite
_containers = itertools.count(1)
HOUR = T0.replace(minute=0)


@pytest.fixture
def blobs(azurite: Azurite) -> AzuriteBlobs:
    service = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    return AzuriteBlobs(service.create_container(f"activitylogs-{next(_containers)}"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + timedelta(hours=1))


@pytest.fixture
def app(app_settings: Settings, azurite: Azurite, blobs: AzuriteBlobs, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[bootstrap.Services]:
    monkeypatch.setenv("ACTIVITY_LOGS_STORAGE", azurite.blob_connection_string)
    monkeypatch.setenv("ACTIVITY_LOGS_CONTAINER", blobs.container.container_name)
    bootstrap.install(None)  # read the settings again
    bootstrap.install(bootstrap.build_services(bootstrap.app_settings(), clock=clock.now))
    yield bootstrap.services()
    bootstrap.install(None)


def audit_rows(store: Any) -> list[Entity]:
    rows = [r.entity for page in store.scan(Query(Table.INVENTORY)) for r in page if str(r.entity["RowKey"]).startswith("~a|")]
    feed = [r.entity for page in store.scan(Query(Table.HISTORY, low_pk="~feed|", high_pk="~feed}")) for r in page
            if r.entity.get("EventType") == "activityLog"]
    skip = {"RecordedAt", "Timestamp", "etag"}
    return sorted(({k: v for k, v in e.items() if k not in skip} for e in rows + feed), key=lambda e: (e["PartitionKey"], e["RowKey"]))


def test_the_timer_reads_the_archive_into_audit_rows(app: bootstrap.Services, blobs: AzuriteBlobs, clock: ManualClock) -> None:
    app.processor.handle(decode_event(event("APICreated", "/apis/orders", at=T0 + timedelta(seconds=3), event_id="e-1")))
    data = lines(*operation("apis/orders", "APIS/WRITE", T0 + timedelta(seconds=2), "c-1"),
                 *operation("backends/be", "BACKENDS/WRITE", T0 + timedelta(minutes=1), "c-2", PIPELINE, result="Failure"))
    blobs.append(blob_name(HOUR), data + b"not json\n" + data[:50])  # a bad line, then a line being written
    function_app.activity_logs(None)  # type: ignore[arg-type]
    (entry,) = app.queries.history("contoso/apis/orders")
    assert (entry["callerUpn"], entry["auditJoined"]) == ("alice@contoso.com", True)
    assert [(e["result"], e["callerAppId"]) for e in app.queries.history("contoso/backends/be")] == [("failed", "app-pipeline")]
    before = audit_rows(app.store)
    function_app.activity_logs(None)  # type: ignore[arg-type]  # read again: nothing new
    assert audit_rows(app.store) == before
    blobs.append(blob_name(HOUR), data[50:].split(b"\n", 1)[0] + b"\n")  # the rest of the half line: the first Start again
    logs = bootstrap.process_activity_logs()
    assert logs is not None
    assert logs.ingest().records == 1
    assert audit_rows(app.store) == before  # a record read twice changes nothing
    rejected = [r.entity for page in app.store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page]
    assert [(r["Reason"], r["Offset"]) for r in rejected] == [("not-json", len(data))]


class Died(Exception):
    """The process died: nothing after it runs."""


class Dying(TableStore):
    """A store whose process dies (an exception no one catches) at its Nth write of an audit row."""

    def __init__(self, base: TableStore, after: int) -> None:
        self.__dict__.update(base.__dict__)
        self.after = after

    def put(self, table: Table, entity: Entity, etag: str | None) -> StoredRow:
        if table is Table.INVENTORY and str(entity["RowKey"]).startswith("~a|"):
            self.after -= 1
            if self.after < 0:
                raise Died()
        return super().put(table, entity, etag)


def run(store: TableStore, archive: BlobArchive, clock: ManualClock) -> None:
    ActivityLogs(archive, store, store, AuditWriter(store, store, store, None, clock.now, bad_container=archive.container), clock.now,
                 chunk_size=2500).ingest()  # two or three records a chunk


def test_a_run_that_dies_mid_chunk_then_a_rerun_equals_a_clean_pass(azurite: Azurite, blobs: AzuriteBlobs, clock: ManualClock) -> None:
    records = [r for i in range(12) for r in operation(f"apis/a{i % 3}", "APIS/WRITE", T0 + timedelta(minutes=i), f"c-{i}")]
    records.append(record("subscriptions/s1", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", T0, "k-1"))
    blobs.append(blob_name(HOUR), lines(*records))
    blobs.append(blob_name(HOUR + timedelta(hours=1)), lines(*records[:5]))  # the next hour's blob repeats some
    clean = table_repo(azurite, fresh_settings())
    run(clean, blobs.archive, clock)
    crashed = table_repo(azurite, fresh_settings())
    with pytest.raises(Died):
        run(Dying(crashed, 7), blobs.archive, clock)
    clock.advance(minutes=32)  # the dead run's claim lapses
    run(crashed, blobs.archive, clock)
    assert audit_rows(crashed) == audit_rows(clean)
    assert len([r for r in audit_rows(clean) if str(r["RowKey"]).startswith("~a|")]) == 13


def test_bad_records_go_after_the_rejected_retention(app: bootstrap.Services, blobs: AzuriteBlobs, clock: ManualClock) -> None:
    blobs.append(blob_name(HOUR), b"not json: alice@contoso.com from 203.0.113.7\n")  # an excerpt may name a person
    function_app.activity_logs(None)  # type: ignore[arg-type]

    def bad_rows() -> list[Entity]:
        return [r.entity for page in app.store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page]
    assert [r["Reason"] for r in bad_rows()] == ["not-json"]
    clock.advance(days=app.settings.rejected_retention_days - 1)
    assert {r.what: r.deleted for r in app.purger.run()}["auditRejected"] == 0 and len(bad_rows()) == 1  # within the retention
    clock.advance(days=2)
    assert {r.what: r.deleted for r in app.purger.run()}["auditRejected"] == 1
    assert bad_rows() == []


def test_each_bad_record_of_a_wrapped_line_is_a_row_of_its_own(app: bootstrap.Services, blobs: AzuriteBlobs) -> None:
    bad = {"time": "later", "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/APIS/WRITE"}
    blobs.append(blob_name(HOUR), json.dumps({"records": [bad, bad, {**bad, "time": "soon"}]}).encode() + b"\n")
    function_app.activity_logs(None)  # type: ignore[arg-type]
    rows = [r.entity for page in app.store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page]
    assert sorted((r["Origin"].rsplit("#", 1)[1], r["Offset"], r["Excerpt"]) for r in rows) == [
        (str(n), 0, json.dumps(b)) for n, b in enumerate([bad, bad, {**bad, "time": "soon"}])]
    assert {r["Blob"] for r in rows} == {blob_name(HOUR)}
