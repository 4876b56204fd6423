"""The Event Hubs routes: `gateway_logs_stream` and `activity_logs_stream` called as the host calls them (bodies and
binding data decoded by the library's Event Hub converter), and THE property of the stream route: for any cut of a
partition into batches, redeliveries from an older checkpoint and crashes at any write, the usage table holds exactly
a brute-force count of the records sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.event_hubs import Sent, deliver_batch, envelope
from devtools.worker import function_json, retry_policy
from shared import bootstrap
from shared.integrations.alerts import LoggingAlertPublisher
from shared.logread.partitions import StreamEvent
from shared.store.memory import InMemoryStore
from shared.store.ports import Query, Table
from shared.usage.stream import GatewayLogStream
from tests.conftest import fresh_settings, table_repo
from tests.support import SERVICE_ID, ManualClock
from tests.test_usage_property import Crashing, Killed
from tests.usage_ingest_support import H0, NOW, bad_lines, brute_force, lines, record, stored_counts, stored_last_uses

HUB = "ns.servicebus.windows.net/insights-logs-gatewaylogs/$Default"

def _events(batches: list[list[dict[str, Any]]], first: int = 0) -> list[Sent]:
    return [Sent(first + n, envelope(records)) for n, records in enumerate(batches)]

def _expected(sent: list[Sent], services: set[str] | None = None) -> Any:
    records = [r for e in sent for r in json.loads(e.body)["records"]]
    return brute_force([lines(*(r for r in records if services is None or r["resourceId"].rsplit("/", 1)[-1].lower() in services))])

def _stream(store: Any, clock: ManualClock, services: frozenset[str] | None = None) -> GatewayLogStream:
    return GatewayLogStream(store, store, store, clock.now, "insights-logs-gatewaylogs", services)

def _take(stream: GatewayLogStream, events: list[Sent], partition: str = "0") -> Any:
    return stream.take(HUB, partition, [StreamEvent(e.sequence, e.body) for e in events])

# -- the rules, in memory -------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_a_redelivered_batch_is_counted_once_whatever_its_cut() -> None:
    store, clock = InMemoryStore(), ManualClock(NOW)
    sent = _events([[record(H0 + timedelta(minutes=m)), record(H0, code=500)] for m in range(6)])
    stream = _stream(store, clock)
    assert _take(stream, sent[:4]).events == 4
    again = _take(stream, sent[2:6])  # from an older checkpoint, cut elsewhere
    assert (again.events, again.redelivered) == (2, 2)
    assert _take(stream, sent).events == 0
    assert stored_counts(store) == _expected(sent)

@pytest.mark.unit
def test_a_crashed_batch_is_retired_and_its_redelivery_cut_otherwise_counts_once() -> None:
    store, clock = InMemoryStore(), ManualClock(NOW)
    sent = _events([[record(H0 + timedelta(minutes=m), apiId=f"api-{m % 3}")] for m in range(8)])
    with pytest.raises(Killed):
        _take(_stream(Crashing(store, 3), clock), sent[:6])  # dies half-way through writing the counts
    clock.advance(minutes=32)
    fresh = _stream(store, clock)
    report = _take(fresh, sent[:3])
    assert report.retired > 0 and report.events == 3
    _take(fresh, sent[3:])
    assert stored_counts(store) == _expected(sent)

@pytest.mark.unit
def test_bad_records_in_an_event_are_listed_with_the_sequence_number_and_the_rest_counted() -> None:
    store, clock = InMemoryStore(), ManualClock(NOW)
    good = record(H0)
    sent = [Sent(7, b"not json"), Sent(8, envelope([good, {"time": "soon"}]))]
    _take(_stream(store, clock), sent)
    assert [(blob, offset, reason) for blob, offset, reason in bad_lines(store)] == [
        (f"eventhub/{HUB}/0", 7, "not-json"), (f"eventhub/{HUB}/0", 8, "no-time")]
    assert stored_counts(store) == brute_force([lines(good)])

@pytest.mark.unit
def test_the_stream_counts_only_its_services_and_says_how_many_it_left() -> None:
    store, clock = InMemoryStore(), ManualClock(NOW)
    sent = _events([[record(H0, "contoso"), record(H0, "fabrikam"), record(H0, "fabrikam")]])
    stream = _stream(store, clock, frozenset({"contoso"}))
    _take(stream, sent)
    assert stored_counts(store) == _expected(sent, {"contoso"})

@pytest.mark.unit
def test_a_gap_in_sequence_numbers_is_reported_and_the_events_after_it_counted() -> None:
    store, clock = InMemoryStore(), ManualClock(NOW)
    sent = _events([[record(H0)] for _ in range(5)])
    stream = _stream(store, clock)
    _take(stream, sent[:2])
    report = _take(stream, sent[4:])
    assert (report.gaps, report.events) == (2, 1)
    assert stored_counts(store) == _expected(sent[:2] + sent[4:])

@pytest.mark.unit
def test_the_functions_bind_the_hubs_as_documented_with_a_retry_policy() -> None:
    for name, hub, connection in (("gateway_logs_stream", "%GATEWAY_LOGS_EVENTHUB%", "GATEWAY_LOGS_EVENTHUB_CONNECTION"),
                                  ("activity_logs_stream", "%ACTIVITY_LOGS_EVENTHUB%", "ACTIVITY_LOGS_EVENTHUB_CONNECTION")):
        bindings = function_json(name)
        trigger = bindings["bindings"][0]
        assert (trigger["type"], trigger["eventHubName"], trigger["connection"], trigger["cardinality"].lower()) == ("eventHubTrigger", hub,
                                                                                                              connection, "many")
        assert trigger["consumerGroup"] == "%LOGS_EVENTHUB_CONSUMER_GROUP%"
        policy = retry_policy(name)
        assert policy is not None and (policy["strategy"], policy["max_retry_count"]) == ("exponential_backoff", "-1")  # -1: for ever

# -- the property ---------------------------------------------------------------------------------------------------------
@st.composite
def deliveries(draw: Any) -> tuple[list[Sent], list[tuple[int, int, int | None]]]:
    """A partition's events and the host's deliveries: (start, length, crash at the k-th write or None). A delivery
    starts at most a few events before the last one that succeeded (a restart or a rebalance)."""
    sent = _events([[record(H0 + timedelta(minutes=draw(st.integers(0, 150))), draw(st.sampled_from(["contoso", "fabrikam"])),
                            draw(st.sampled_from([200, 302, 401, 404, 500])), float(draw(st.integers(0, 500))),
                            apiId=draw(st.sampled_from(["echo-api", "orders;rev=2"])))
                     for _ in range(draw(st.integers(0, 3)))] for _ in range(draw(st.integers(1, 10)))])
    plan, position = [], 0
    for _ in range(draw(st.integers(1, 10))):
        start = max(0, position - draw(st.integers(0, 3)))
        length = draw(st.integers(1, 5))
        crash = draw(st.one_of(st.none(), st.none(), st.integers(1, 8)))
        plan.append((start, length, crash))
        if crash is None:
            position = max(position, min(len(sent), start + length))
    return sent, plan

def play(store: Any, sent: list[Sent], plan: list[tuple[int, int, int | None]]) -> None:
    """One process's stream takes the deliveries (its sinks kept across calls, last uses written a minute apart); a
    crash kills the process, and the next delivery comes to a new one after the dead one's pending uses lapsed."""
    clock = ManualClock(NOW)
    crashing = Crashing(store, None)
    stream, done = _stream(crashing, clock), 0
    for start, length, crash in plan:
        crashing.at, crashing.writes = crash, 0
        try:
            _take(stream, sent[start:start + length])
            done = max(done, min(len(sent), start + length))
        except Killed:
            clock.advance(minutes=32)
            crashing = Crashing(store, None)
            stream = _stream(crashing, clock)
        clock.advance(seconds=35)  # every other call writes its thread's last uses
    crashing.at = None
    _take(stream, sent[done:])  # the host goes on from its checkpoint
    stream.flush()  # what the process's next call a minute later would do
    expected = _expected(sent)
    assert stored_counts(store) == expected
    bounds: dict[tuple[str, str, str], tuple[str, str]] = {}
    for (service, kind, _, resource), counted in expected.items():
        if kind in ("api", "subscription", "operation", "product", "user", "backend"):
            first, last = bounds.get((service, kind, resource), (counted[8], counted[9]))
            bounds[(service, kind, resource)] = (min(first, counted[8]), max(last, counted[9]))
    uses = stored_last_uses(store)
    assert {key: (a[:13], b[:13]) for key, (a, b) in uses.items()} == {key: (a[:13], b[:13]) for key, (a, b) in bounds.items()}

@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_any_cut_redelivery_and_crash_counts_each_record_once_in_memory(case: tuple[list[Sent], list[Any]]) -> None:
    play(InMemoryStore(), *case)

@pytest.mark.azurite
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(deliveries())
def test_any_cut_redelivery_and_crash_counts_each_record_once_on_azurite(azurite: Azurite, case: tuple[list[Sent], list[Any]]) -> None:
    play(table_repo(azurite), *case)

# -- the indexed functions, as the host calls them -----------------------------------------------------------------------
@pytest.fixture
def wired(azurite: Azurite) -> Iterator[Any]:
    settings_ = fresh_settings()
    store = table_repo(azurite, settings_)
    bootstrap.install(bootstrap.wire(store, settings_, LoggingAlertPublisher(), lambda: NOW))
    yield store
    bootstrap.install(None)

@pytest.mark.azurite
def test_gateway_logs_stream_counts_host_shaped_batches_once(wired: Any) -> None:
    sent = _events([[record(H0, apiId="echo-api"), record(H0, code=503)], [record(H0 + timedelta(hours=1), apimSubscriptionId="master")]])
    deliver_batch("gateway_logs_stream", sent, partition="2")
    deliver_batch("gateway_logs_stream", sent[1:], partition="2")  # redelivered after a rebalance
    assert stored_counts(wired) == _expected(sent)
    checkpoints = [row.entity for page in wired.scan(Query(Table.USAGE, low_pk="us|", high_pk="us}")) for row in page]
    assert [(c["Partition"], c["Through"], c["PendingEnd"]) for c in checkpoints] == [("2", "1", "-1")]

@pytest.mark.azurite
def test_activity_logs_stream_writes_audit_records_that_history_names(wired: Any) -> None:

    operation = {"time": "2026-12-02T10:00:05.0000000Z", "resourceId": f"{SERVICE_ID}/backends/payments",
                 "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/BACKENDS/WRITE", "category": "Write", "correlationId": "c-1",
                 "identity": {"claims": {"appid": "11111111-1111-4111-8111-111111111111",
                                         "http://schemas.microsoft.com/identity/claims/objectidentifier": "22222222-2222-4222-8222-222222222222"},
                              "authorization": {"evidence": {"principalType": "ServicePrincipal"}}}}
    sent = [Sent(0, envelope([{**operation, "resultType": "Start"}])), Sent(1, envelope([{**operation, "resultType": "Success"}]))]
    deliver_batch("activity_logs_stream", sent, hub="insights-activity-logs")
    deliver_batch("activity_logs_stream", sent, hub="insights-activity-logs")  # whole batch again
    history = bootstrap.services().queries.history("contoso/backends/payments")
    assert [(h.get("operation"), h.get("result"), h.get("callerKind")) for h in history] == [("write", "succeeded", "servicePrincipal")]
