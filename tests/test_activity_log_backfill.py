"""The Activity Log backfill: EventData to the exported record (on Microsoft's own example), the time windows and the 90-day
clamp (property tests against brute force), and the real lean ARM client against the stand-in's Activity Log route:
paging by nextLink, the documented $filter, Retry-After waited out, errors as one line naming the part that failed."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.activity_log_route import event_data, parse_filter
from devtools.arm_standin import ArmStandIn
from shared import bootstrap
from shared.audit.backfill import Backfill, BackfillFailed, Span, WindowReport, clamp, subscriptions_of, windows
from shared.config import Settings
from shared.domain.errors import InvalidArgument, InvalidQuery
from shared.entrypoints import audit_backfill_cli
from shared.entrypoints.cli import _emit, main
from shared.integrations.activity_log_api import API_VERSION, ActivityLogApi, activity_filter, events_path, odata_time, to_exported
from shared.integrations.arm import ArmClient, ArmError
from tests.support import OTHER_IDENTITY_SETTINGS, use_standin_identity

EXAMPLE = Path(__file__).resolve().parent / "data" / "activity-log" / "GetActivityLogsFiltered.json"
SUB = "00000000-0000-0000-0000-0000000000a1"
OTHER_SUB = "00000000-0000-0000-0000-0000000000b2"
SERVICE = f"/subscriptions/{SUB}/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/contoso"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
USER = {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "alice@contoso.com", "name": "Alice",
        "http://schemas.microsoft.com/identity/claims/objectidentifier": "0000aaaa-0000-0000-0000-000000000001", "appid": "c44b4083"}


@dataclass
class Written:
    written: int
    ignored: int
    bad: list[Any] = field(default_factory=list)


class RecordingWriter:
    """The audit-record writer's port, recording what it is handed (the store behind it is audit-core's, tested there)."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple[list[dict[str, Any]], str]] = []
        self.fail_with = fail_with

    def write(self, records: Iterable[Mapping[str, Any]], origin: str) -> Written:
        if self.fail_with is not None:
            raise self.fail_with
        batch = [dict(record) for record in records]
        self.calls.append((batch, origin))
        apim = sum(str(r.get("operationName", "")).upper().startswith("MICROSOFT.APIMANAGEMENT/") for r in batch)
        return Written(apim, len(batch) - apim)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for batch, _ in self.calls for record in batch]


def at(hours: float) -> str:
    return odata_time(NOW - timedelta(hours=hours))


def event(n: int, hours_ago: float, status: str = "Succeeded", *, resource: str = f"{SERVICE}/apis/orders",
          operation: str = "Microsoft.ApiManagement/service/apis/write", subscription: str = SUB) -> dict[str, Any]:
    return event_data(subscription, resource, operation, status, time=at(hours_ago), correlation_id=f"c-{n}",
                      caller="alice@contoso.com", claims=USER, event_id=f"e-{n}")


# --- the conversion ---


@pytest.mark.unit
def test_microsofts_example_converts_to_the_exported_shape() -> None:
    (item,) = json.loads(EXAMPLE.read_text(encoding="utf-8"))["responses"]["200"]["body"]["value"]
    record = to_exported(item)
    assert record == {
        "time": "2015-01-21T22:14:26.9792776Z",
        "operationName": "microsoft.support/supporttickets/write",
        "resultType": "Success",
        "correlationId": "1e121103-0ba6-4300-ac9d-952bb5d0c80f",
        "callerIpAddress": "192.168.35.115",
        "caller": "admin@contoso.com",
        "properties": {"statusCode": "Created"},
        "level": "Informational",
        "identity": {"claims": item["claims"], "authorization": item["authorization"]},
    }
    assert "resourceId" not in record and "category" not in record, "absent in the example: left out, never invented"


@pytest.mark.unit
@pytest.mark.parametrize(("status", "result"), [("Started", "Start"), ("Succeeded", "Success"), ("Failed", "Failure"),
                                                ("succeeded", "Success"), ("Accepted", "Accepted")])
def test_status_becomes_the_exported_result_type(status: str, result: str) -> None:
    record = to_exported(event(1, 1, status))
    assert record["resultType"] == result
    assert record["resourceId"] == f"{SERVICE}/apis/orders"
    assert record["operationName"] == "Microsoft.ApiManagement/service/apis/write"
    assert record["category"] == "Administrative"
    assert record["identity"]["claims"]["name"] == "Alice"


@pytest.mark.unit
def test_the_route_answers_in_the_shape_of_microsofts_example() -> None:
    (item,) = json.loads(EXAMPLE.read_text(encoding="utf-8"))["responses"]["200"]["body"]["value"]
    made = event(1, 1)
    assert set(item) - set(made) == set(), "the stand-in's EventData lacks a field Microsoft's example has"
    assert set(made) - set(item) <= {"resourceId", "category"}, "fields the spec declares but the example lacks"
    for name in ("operationName", "status", "subStatus", "eventName", "resourceProviderName"):
        assert set(made[name]) == set(item[name]) == {"value", "localizedValue"}


# --- windows, clamping, the filter ---

moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(timezone.utc))


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(start=moments, length=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=95)),
       size=st.timedeltas(min_value=timedelta(minutes=30), max_value=timedelta(days=3)))
def test_windows_cover_the_span_exactly(start: datetime, length: timedelta, size: timedelta) -> None:
    span = Span(start, start + length)
    cuts = windows(span, size)
    expected, moment = [], start  # brute force: step from the start
    while moment < span.until:
        expected.append((moment, min(moment + size, span.until)))
        moment += size
    assert cuts == expected
    assert cuts[0][0] == span.since and cuts[-1][1] == span.until
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts)), "consecutive windows share their boundary"


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(since_ago=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
       until_ago=st.none() | st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=400)))
def test_clamp_keeps_the_90_days_the_activity_log_keeps(since_ago: timedelta, until_ago: timedelta | None) -> None:
    since, until = NOW - since_ago, None if until_ago is None else NOW - until_ago
    start, end = max(since, NOW - timedelta(days=90)), min(NOW if until is None else until, NOW)
    if start >= end:
        with pytest.raises(InvalidArgument, match="nothing to read"):
            clamp(since, until, NOW)
        return
    span = clamp(since, until, NOW)
    assert (span.since, span.until) == (start, end)
    assert any("more than 90 days ago" in w for w in span.warnings) == (since < NOW - timedelta(days=90))
    assert any("in the future" in w for w in span.warnings) == (until is not None and until > NOW)


@pytest.mark.unit
def test_the_filter_is_the_documented_resource_provider_pattern() -> None:
    since, until = NOW - timedelta(days=1), NOW
    text = activity_filter(since, until)
    assert text == ("eventTimestamp ge '2026-11-19T12:00:00.000000Z' and eventTimestamp le '2026-11-20T12:00:00.000000Z' "
                    "and resourceProvider eq 'Microsoft.ApiManagement'")
    assert parse_filter(text) == (since, until, "resourceProvider", "Microsoft.ApiManagement")
    for refused in ("eventTimestamp gt '2026-11-19T12:00:00Z'", "resourceProvider eq 'x'", "",
                    "eventTimestamp ge '2026-11-19T12:00:00Z' and status eq 'Failed'",
                    "eventTimestamp ge 'yesterday'"):
        with pytest.raises(ValueError):
            parse_filter(refused)
    with pytest.raises(ValueError):
        odata_time(datetime(2026, 1, 1))  # naive: refused rather than guessed


@pytest.mark.unit
def test_subscriptions_come_from_the_services_each_once() -> None:
    services = [SERVICE, SERVICE.replace("contoso", "fabrikam").replace(SUB, SUB.upper()),
                f"/subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.ApiManagement/service/x"]
    assert subscriptions_of(services) == (SUB, OTHER_SUB)
    assert audit_backfill_cli.parse_subscription(f"/subscriptions/{SUB}") == SUB
    with pytest.raises(InvalidQuery, match="GUID"):
        audit_backfill_cli.parse_subscription("contoso")


# --- the real client against the stand-in ---


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    with ArmStandIn() as server:
        server.activity_page_size = 2
        yield server


@pytest.fixture
def client(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmClient]:
    use_standin_identity(arm, monkeypatch)
    arm_client = bootstrap.arm_client(Settings(arm_endpoint=arm.endpoint, arm_retry_after_limit=5.0))
    yield arm_client
    arm_client.close()


def activity_requests(arm: ArmStandIn) -> list[Any]:
    return arm.hits("/eventtypes/management/values")


def test_backfill_pages_through_next_link_and_keeps_only_the_window_and_provider(arm: ArmStandIn, client: ArmClient) -> None:
    inside = [event(n, hours_ago=1 + n) for n in range(5)]
    outside = [event(10, hours_ago=30), event(11, hours_ago=2, resource="/subscriptions/x/providers/Microsoft.Web/sites/a",
                                               operation="Microsoft.Web/sites/write")]
    arm.add_activity(SUB, [*inside, *outside])
    arm.add_activity(OTHER_SUB, [event(20, hours_ago=1, subscription=OTHER_SUB)])
    writer, seen = RecordingWriter(), list[WindowReport]()
    report = Backfill(ActivityLogApi(client), writer, progress=seen.append).run(Span(NOW - timedelta(hours=24), NOW), [SUB])

    assert sorted(r["correlationId"] for r in writer.records) == [f"c-{n}" for n in range(5)]
    origins = [origin for _, origin in writer.calls]  # each page its own place, so its bad records are rows of their own
    assert all(o.startswith(f"backfill:{SUB}@") for o in origins) and [o.rsplit("/page ", 1)[1] for o in origins] == ["1", "2", "3"]
    assert [len(batch) for batch, _ in writer.calls] == [2, 2, 1], "one write per page"
    (window,) = report.windows
    assert (window.pages, window.read, window.written, window.ignored, window.bad) == (3, 5, 5, 0, 0)
    assert seen == report.windows
    requests = activity_requests(arm)
    assert len(requests) == 3
    first = requests[0].query
    assert first["api-version"] == API_VERSION
    assert first["$filter"] == activity_filter(NOW - timedelta(hours=24), NOW)
    assert all(r.path.lower() == events_path(SUB).lower() for r in requests)
    assert all(r.headers["authorization"] == f"Bearer {arm.token}" for r in requests)


def test_backfill_reads_every_window_of_every_subscription(arm: ArmStandIn, client: ArmClient) -> None:
    arm.add_activity(SUB, [event(n, hours_ago=12 + 24 * n) for n in range(3)])
    arm.add_activity(OTHER_SUB, [event(9, hours_ago=40, subscription=OTHER_SUB)])
    writer = RecordingWriter()
    span = Span(NOW - timedelta(days=3), NOW)
    report = Backfill(ActivityLogApi(client), writer).run(span, [SUB, OTHER_SUB])
    assert [(w.subscription, w.since, w.until, w.read) for w in report.windows] == [
        (SUB, NOW - timedelta(days=3), NOW - timedelta(days=2), 1), (SUB, NOW - timedelta(days=2), NOW - timedelta(days=1), 1),
        (SUB, NOW - timedelta(days=1), NOW, 1),
        (OTHER_SUB, NOW - timedelta(days=3), NOW - timedelta(days=2), 0), (OTHER_SUB, NOW - timedelta(days=2), NOW - timedelta(days=1), 1),
        (OTHER_SUB, NOW - timedelta(days=1), NOW, 0)]
    assert sorted(r["correlationId"] for r in writer.records) == ["c-0", "c-1", "c-2", "c-9"]
    assert report.total("written") == 4


def test_retry_after_is_waited_out(arm: ArmStandIn, client: ArmClient) -> None:
    arm.add_activity(SUB, [event(1, hours_ago=1)])
    arm.fail("/eventtypes/management/values", 429, retry_after="1")
    writer = RecordingWriter()
    started = time.monotonic()
    Backfill(ActivityLogApi(client), writer).run(Span(NOW - timedelta(hours=2), NOW), [SUB])
    assert [r["correlationId"] for r in writer.records] == ["c-1"]
    throttled, retried = activity_requests(arm)
    assert [value for _, value in arm.retry_afters] == ["1"]
    waited = retried.at - throttled.at
    assert 1.0 <= waited < 3.0, f"waited {waited:.2f} s for a Retry-After of 1 s"
    assert time.monotonic() - started < 4.0


def test_a_retry_after_beyond_the_limit_stops_with_where_to_resume(arm: ArmStandIn, client: ArmClient) -> None:
    arm.add_activity(SUB, [event(1, hours_ago=30), event(2, hours_ago=1)])
    day2 = "/eventtypes/management/values"
    writer = RecordingWriter()
    backfill = Backfill(ActivityLogApi(client), writer)
    span = Span(NOW - timedelta(days=2), NOW)
    backfill.run(Span(span.since, span.since + timedelta(seconds=1)), [SUB])  # a first read that succeeds
    arm.fail(day2, 429, retry_after="120")
    started = time.monotonic()
    with pytest.raises(BackfillFailed) as failed:
        backfill.run(span, [SUB])
    assert time.monotonic() - started < 2.0, "a long Retry-After is not slept through"
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"reading the Activity Log of subscription {SUB} from 2026-11-18T12:00:00Z to 2026-11-19T12:00:00Z failed: ARM 429")
    assert message.endswith(f"run again with --subscription {SUB} --since 2026-11-18T12:00:00Z to resume")
    assert failed.value.resume_since == span.since


@pytest.mark.parametrize(("status", "code"), [(403, "AuthorizationFailed"), (500, "InternalServerError")])
def test_arm_errors_are_one_line_naming_the_read(arm: ArmStandIn, client: ArmClient, status: int, code: str) -> None:
    arm.fail("/eventtypes/management/values", status, times=4)
    with pytest.raises(BackfillFailed, match=rf"^reading the Activity Log of subscription {SUB} .* failed: ARM {status} {code}: "):
        Backfill(ActivityLogApi(client), RecordingWriter()).run(Span(NOW - timedelta(hours=1), NOW), [SUB])


def test_a_writer_failure_is_named_as_the_writers(arm: ArmStandIn, client: ArmClient) -> None:
    arm.add_activity(SUB, [event(1, hours_ago=1)])
    writer = RecordingWriter(fail_with=OSError("the table did not answer"))
    with pytest.raises(BackfillFailed, match=r"^writing the audit records of the Activity Log of subscription .*: the table did not answer; run again"):
        Backfill(ActivityLogApi(client), writer).run(Span(NOW - timedelta(hours=2), NOW), [SUB])


def test_the_route_refuses_what_the_api_refuses(arm: ArmStandIn, client: ArmClient) -> None:
    path = events_path(SUB)
    for query, api_version in (({"$filter": "eventTimestamp gt '2026-11-19T00:00:00Z'"}, API_VERSION), ({}, API_VERSION),
                               ({"$filter": activity_filter(NOW - timedelta(hours=1), NOW)}, "2024-05-01")):
        with pytest.raises(ArmError) as refused:
            client.page(client.url(path, api_version=api_version, query=query))
        assert refused.value.status == 400
    items, link = client.page(client.url(path, api_version=API_VERSION, query={"$filter": activity_filter(NOW - timedelta(hours=1), NOW)}))
    assert (items, link) == ([], None)


# --- the command ---


def test_the_command_clamps_warns_and_reports_each_window(arm: ArmStandIn, client: ArmClient, capsys: pytest.CaptureFixture[str]) -> None:
    arm.add_activity(SUB, [event(1, hours_ago=1), event(2, hours_ago=2, operation="Microsoft.Web/sites/write",
                                                          resource="/subscriptions/x/providers/Microsoft.Web/sites/a")])
    writer = RecordingWriter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--now")
    audit_backfill_cli.add_backfill_parser(parser.add_subparsers(), lambda args, progress: Backfill(ActivityLogApi(client), writer, progress=progress),
                                           lambda: (SERVICE,), _emit)
    args = parser.parse_args(["--now", "2026-11-20T12:00:00Z", "backfill", "--since", "100d", "--until", "2026-11-21T00:00:00Z", "-o", "json"])
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["since"] == "2026-08-22T12:00:00Z" and document["until"] == "2026-11-20T12:00:00Z"
    assert document["subscriptions"] == [SUB], "from the configured services"
    assert (document["read"], document["written"], document["ignored"]) == (1, 1, 0), "the filter keeps Microsoft.ApiManagement's only"
    assert len(document["windows"]) == 90
    warnings = [line for line in err.splitlines() if line.startswith("apim-inventory: warning: ")]
    assert len(warnings) == 2
    assert any("more than 90 days ago" in w for w in warnings) and any("--until 2026-11-21T00:00:00Z is in the future" in w for w in warnings)
    progress = [line for line in err.splitlines() if line.startswith("apim-inventory: backfill: ")]
    assert len(progress) == 90 and progress[-1].endswith("1 read, 1 written, 0 ignored, 0 bad")


@pytest.mark.unit
@pytest.mark.parametrize(("arguments", "message"), [
    (["--since", "2026-11-20T12:00:00Z", "--until", "2026-11-19T00:00:00Z"], "nothing to read: --since 2026-11-20T12:00:00Z is not before"),
    (["--since", "1d", "--subscription", "contoso"], "--subscription wants an Azure subscription id (a GUID), not 'contoso'"),
    (["--since", "yesterday"], "--since must be an ISO 8601 time"),
    (["--until", "1d"], "the following arguments are required: --since"),
])
def test_the_command_refuses_bad_arguments_in_one_line(arguments: list[str], message: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no local.settings.json
    assert main(["--now", "2026-11-20T12:00:00Z", "audit", "backfill", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("apim-inventory: error: ") and message in err, err


@pytest.mark.standin
@settings(max_examples=25, deadline=None)
@given(offsets=st.lists(st.integers(min_value=0, max_value=6 * 24 * 60), max_size=40),
       others=st.lists(st.integers(min_value=0, max_value=6 * 24 * 60), max_size=10),
       start=st.integers(min_value=0, max_value=3 * 24 * 60), length=st.integers(min_value=1, max_value=4 * 24 * 60),
       window_hours=st.integers(min_value=1, max_value=48), page_size=st.integers(min_value=1, max_value=7),
       on_edges=st.lists(st.integers(min_value=-1, max_value=1), max_size=6))
def test_any_events_span_windows_and_pages_read_exactly_the_span(offsets: list[int], others: list[int], start: int, length: int,
                                                                  window_hours: int, page_size: int, on_edges: list[int]) -> None:
    """Against brute force: every APIM event whose time is in [since, until] is written, nothing else is, and only an
    event on a window boundary more than once (at most twice). Some events fall on the span's and the windows' edges, or a
    minute either side of one, where an off-by-one would show."""
    origin = NOW - timedelta(days=7)
    minute = timedelta(minutes=1)
    edges = [start, start + length, *range(start + 60 * window_hours, start + length, 60 * window_hours)]
    offsets = [*offsets, *(edges[n % len(edges)] + shift for n, shift in enumerate(on_edges))]
    apim = [event(n, 0) | {"eventTimestamp": odata_time(origin + minute * offset)} for n, offset in enumerate(offsets)]
    web = [event(1000 + n, 0, resource="/subscriptions/x/providers/Microsoft.Web/sites/a", operation="Microsoft.Web/sites/write")
           | {"eventTimestamp": odata_time(origin + minute * offset)} for n, offset in enumerate(others)]
    span = Span(origin + minute * start, origin + minute * (start + length))
    window = timedelta(hours=window_hours)
    with ArmStandIn() as arm, pytest.MonkeyPatch.context() as monkeypatch:
        arm.activity_page_size = page_size
        arm.add_activity(SUB, [*apim, *web])
        for name in OTHER_IDENTITY_SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for name, value in arm.identity_env().items():
            monkeypatch.setenv(name, value)
        client = bootstrap.arm_client(Settings(arm_endpoint=arm.endpoint))
        writer = RecordingWriter()
        Backfill(ActivityLogApi(client), writer, window=window).run(span, [SUB])
        client.close()
    seen: dict[str, int] = {}
    for record in writer.records:
        seen[record["correlationId"]] = seen.get(record["correlationId"], 0) + 1
    inside = {f"c-{n}": origin + minute * offset for n, offset in enumerate(offsets) if span.since <= origin + minute * offset <= span.until}
    assert set(seen) == set(inside)
    boundaries = {cut for pair in windows(span, window) for cut in pair}
    for key, count in seen.items():
        assert count == (2 if inside[key] in boundaries - {span.since, span.until} else 1), (key, count)
