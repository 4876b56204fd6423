"""Audit records in the store, on Azurite and in the in-memory twin: history names the caller whether the Activity
Log's record arrives before its event, after it, or twice; a backend change (no event) and a failed attempt appear in
history and in changes as records of their own; a subscription's key regeneration sets its row's column; the purge
takes old audit records with their feed entries."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.audit.records import AuditWriter
from shared.config import Settings
from shared.domain.resources import parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.queries.inventory import NotFound
from shared.queries.keys import old_keys
from shared.store.memory import InMemoryStore
from shared.store.ports import Query, StoredRow, Table
from tests.audit_support import ALICE, PIPELINE, operation, record
from tests.conftest import fresh_settings, table_repo
from tests.support import SERVICE_ID, T0, ManualClock, event

_n = itertools.count(1)


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("azurite", marks=pytest.mark.azurite)])
def services(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[bootstrap.Services]:
    if request.param == "memory":
        store = InMemoryStore()
        store.create_tables()
        yield bootstrap.in_memory(Settings(), clock.now, store=store)
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    settings = fresh_settings()
    yield bootstrap.wire(table_repo(azurite, settings), settings, LoggingAlertPublisher(), clock.now)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + timedelta(hours=1))


def deliver(services: bootstrap.Services, suffix: str, subject: str, at: timedelta, event_id: str | None = None) -> None:
    services.processor.handle(decode_event(event(suffix, subject, at=T0 + at, event_id=event_id or f"e-{next(_n)}")))


def write(services: bootstrap.Services, *records: dict[str, Any]) -> None:
    report = bootstrap.audit_writer(services).write(records, "archive:test@0")
    assert not report.bad


def callers(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(str(e["EventType"]).rsplit(".", 1)[-1], str(e.get("callerUpn") or e.get("callerAppId") or ""), str(e.get("result", ""))) for e in entries]


def test_history_names_the_caller_whether_the_record_comes_before_after_or_twice(services: bootstrap.Services) -> None:
    write(services, *operation("apis/orders", "APIS/WRITE", T0 + timedelta(seconds=1), "c-create"))  # before its event
    deliver(services, "APICreated", "/apis/orders", timedelta(seconds=2))
    deliver(services, "APIUpdated", "/apis/orders", timedelta(minutes=10))
    write(services, *operation("apis/orders", "APIS/WRITE", T0 + timedelta(minutes=10, seconds=-1), "c-update", PIPELINE))  # after
    write(services, *operation("apis/orders", "APIS/WRITE", T0 + timedelta(minutes=10, seconds=-1), "c-update", PIPELINE))  # twice
    history = services.queries.history("contoso/apis/orders")
    assert callers(history) == [("APIUpdated", "app-pipeline", "succeeded"), ("APICreated", "alice@contoso.com", "succeeded")]
    assert all(e["auditJoined"] for e in history)
    assert history[1]["callerKind"] == "user" and history[1]["callerName"] == "Alice Smith" and history[1]["clientIp"] == "203.0.113.7"
    assert history[0]["callerKind"] == "servicePrincipal" and history[0]["correlationId"] == "c-update"


def test_a_backend_change_with_no_event_and_a_failed_attempt_are_records_of_their_own(services: bootstrap.Services) -> None:
    deliver(services, "APICreated", "/apis/orders", timedelta(0))  # so the service is known to changes
    write(services, *operation("backends/orders-be", "BACKENDS/WRITE", T0 + timedelta(minutes=1), "c-be"),
          *operation("apis/orders", "APIS/WRITE", T0 + timedelta(minutes=2), "c-fail", PIPELINE, result="Failure"),
          *operation("namedValues/db-password", "NAMEDVALUES/DELETE", T0 + timedelta(minutes=3), "c-nv"))
    backend = services.queries.history("contoso/backends/orders-be")
    assert [(e["EventType"], e["operation"], e["result"], e["callerUpn"], e["auditJoined"]) for e in backend] == [
        ("activityLog", "write", "succeeded", "alice@contoso.com", False)]
    api = services.queries.history("contoso/apis/orders")
    assert [(e["EventType"].rsplit(".", 1)[-1], e.get("result"), e.get("auditJoined")) for e in api] == [
        ("activityLog", "failed", False), ("APICreated", None, None)]  # a failure explains no event
    assert [e["operation"] for e in services.queries.history("contoso/namedValues/db-password")] == ["delete"]
    page = services.queries.changes(since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    assert [(i["Path"], i.get("operation"), i.get("result")) for i in page.items] == [
        ("namedValues/db-password", "delete", "succeeded"), ("apis/orders", "write", "failed"), ("backends/orders-be", "write", "succeeded"),
        ("apis/orders", None, None)]
    assert page.items[0]["callerUpn"] == "alice@contoso.com" and "AuditOperation" not in page.items[0]


def test_a_record_that_completes_later_leaves_one_feed_entry(services: bootstrap.Services) -> None:
    start, done = operation("backends/b1", "BACKENDS/WRITE", T0 + timedelta(minutes=1), "c-1", took=timedelta(minutes=2))
    write(services, start)
    write(services, done)
    entries = [e for page in services.store.scan(Query(Table.HISTORY, low_pk="~feed|", high_pk="~feed}")) for e in page]
    assert sorted(str(e.entity["RowKey"])[:2] for e in entries) == ["ar", "e|"]
    assert {e.entity["EventTime"] for e in entries} == {T0 + timedelta(minutes=1)}


def test_a_key_regeneration_sets_the_subscriptions_column_to_its_maximum(services: bootstrap.Services) -> None:
    deliver(services, "SubscriptionCreated", "/subscriptions/sub1", timedelta(0))
    late, early = T0 + timedelta(days=2), T0 + timedelta(days=1)
    write(services, record("subscriptions/sub1", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", late, "k2"))
    write(services, record("subscriptions/sub1", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", early, "k1"),
          record("subscriptions/sub1", "SUBSCRIPTIONS/REGENERATESECONDARYKEY/ACTION", "Failure", late, "k3"))
    row = services.queries.resource("contoso/subscriptions/sub1")
    assert row["PrimaryKeyRegeneratedAt"] == late and "SecondaryKeyRegeneratedAt" not in row


def test_bad_records_are_recorded_and_an_id_only_setting_keeps_no_name(services: bootstrap.Services, clock: ManualClock) -> None:
    writer = bootstrap.audit_writer(services)
    report = writer.write([{"time": "x", "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/APIS/WRITE", "resourceId": "r"}], "backfill:s1")
    assert [b.reason for b in report.bad] == ["no-time"]
    rows = [r for page in services.store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page]
    assert [(r.entity["Blob"], r.entity["Reason"]) for r in rows] == [("backfill:s1", "no-time")]
    twice = writer.write([{"time": "y", "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/APIS/WRITE"}] * 2, "backfill:s2@page-1")
    assert len(twice.bad) == 2  # two records of one page alike: two rows, each at its place
    rows = [r for page in services.store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page if r.entity["Blob"] == "backfill:s2"]
    assert sorted(r.entity["Origin"] for r in rows) == ["backfill:s2@page-1#0", "backfill:s2@page-1#1"]
    ids_only = AuditWriter(services.store, services.store, services.store, None, clock.now, ids_only=True)
    ids_only.write(operation("certificates/c1", "CERTIFICATES/WRITE", T0, "c-c"), "backfill:s1")
    (entry,) = services.queries.history("contoso/certificates/c1")
    assert (entry["callerName"], entry["callerUpn"], entry["clientIp"], entry["callerObjectId"]) == ("", "", "", ALICE[
        "http://schemas.microsoft.com/identity/claims/objectidentifier"])


def test_the_purge_takes_old_audit_records_and_their_entries(services: bootstrap.Services, clock: ManualClock) -> None:
    deliver(services, "APICreated", "/apis/orders", timedelta(0))
    write(services, *operation("backends/old", "BACKENDS/WRITE", T0, "c-old"),
          *operation("backends/new", "BACKENDS/WRITE", T0 + timedelta(days=300), "c-new"))
    clock.moment = T0 + timedelta(days=370)
    results = {r.what: r.deleted for r in services.purger.run()}
    assert results["audit"] == 1
    assert services.queries.history("contoso/backends/new")
    with pytest.raises(NotFound):
        services.queries.history("contoso/backends/old")
    entries = [e for page in services.store.scan(Query(Table.HISTORY, low_pk="~feed|", high_pk="~feed}")) for e in page
               if e.entity.get("EventType") == "activityLog"]
    assert {e.entity["Path"] for e in entries} == {"backends/new"}


def test_the_purge_takes_the_audit_records_of_a_service_with_nothing_else(services: bootstrap.Services, clock: ManualClock) -> None:
    write(services, *operation("backends/old", "BACKENDS/WRITE", T0, "c-old"))  # no event, no sync: only the record
    assert services.queries.history("contoso/backends/old")
    clock.moment = T0 + timedelta(days=370)
    results = {r.what: r.deleted for r in services.purger.run()}
    assert results["audit"] == 1
    with pytest.raises(NotFound):
        services.queries.history("contoso/backends/old")
    assert not [e for page in services.store.scan(Query(Table.HISTORY, low_pk="~feed|", high_pk="~feed}")) for e in page]


def test_history_since_joins_an_event_just_before_it_with_its_record_just_after(services: bootstrap.Services) -> None:
    deliver(services, "APICreated", "/apis/orders", timedelta(seconds=10))
    deliver(services, "APIUpdated", "/apis/orders", timedelta(minutes=10))
    write(services, *operation("apis/orders", "APIS/WRITE", T0 + timedelta(seconds=40), "c-1"),  # the Created's, 30 s late
          *operation("apis/orders", "APIS/WRITE", T0 + timedelta(minutes=10), "c-2"))
    since = T0 + timedelta(seconds=30)
    whole = services.queries.history("contoso/apis/orders")
    assert len(whole) == 2 and all(e["auditJoined"] for e in whole)
    assert services.queries.history("contoso/apis/orders", since=since) == [e for e in whole if e["EventTime"] >= since]


def test_the_key_age_report_is_right_for_regenerated_never_regenerated_and_unknown_keys(services: bootstrap.Services,
                                                                                        clock: ManualClock) -> None:
    for name in ("rotated", "old", "unknown", "new", "gone"):
        deliver(services, "SubscriptionCreated", f"/subscriptions/{name}", timedelta(0))
    deliver(services, "SubscriptionDeleted", "/subscriptions/gone", timedelta(seconds=5))
    clock.moment = now = T0 + timedelta(days=200)
    created = {"rotated": T0 - timedelta(days=400), "old": T0 - timedelta(days=400), "new": now - timedelta(days=3)}
    rows = bootstrap.audit_writer(services)._rows
    assert rows is not None
    for name, at in created.items():  # what an enrichment or a sync reads from ARM
        ref = parse_path(parse_service_id(SERVICE_ID), f"subscriptions/{name}")

        def details(row: StoredRow | None, parent: StoredRow | None, at: datetime = at) -> dict[str, Any] | None:
            return {**row.entity, "CreatedDate": at, "OwnerId": "/users/alice"} if row else None
        rows.apply(ref, details)
    write(services, record("subscriptions/rotated", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", now - timedelta(days=10), "k1"),
          record("subscriptions/rotated", "SUBSCRIPTIONS/REGENERATESECONDARYKEY/ACTION", "Success", now - timedelta(days=20), "k2"),
          record("subscriptions/old", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", now - timedelta(days=100), "k3"))
    answer = old_keys(services.store, now, timedelta(days=90))
    assert [(i["path"], i["status"], i["primaryKey"], i["secondaryKey"], i["owner"]) for i in answer["items"]] == [
        ("subscriptions/old", "old", "old", "old", "users/alice"), ("subscriptions/unknown", "unknown", "unknown", "unknown", "")]
    assert answer["lowerBound"] is True and "developer portal" in answer["note"]
    first = old_keys(services.store, now, timedelta(days=90), top=1)
    assert first["count"] == 1 and first["continuationToken"]
    rest = old_keys(services.store, now, timedelta(days=90), top=1, continuation=first["continuationToken"])
    assert [i["path"] for i in rest["items"]] == ["subscriptions/unknown"] and rest["continuationToken"] is None


def test_an_id_past_the_key_limits_is_a_bad_record(services: bootstrap.Services) -> None:
    report = bootstrap.audit_writer(services).write(operation("namedValues/" + "n" * 600, "NAMEDVALUES/WRITE", T0, "c-long"), "backfill:s1")
    assert [b.reason for b in report.bad] == ["key-too-large", "key-too-large"] and report.written == 0
