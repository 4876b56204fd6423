"""The usage reports through the command (the console script, as a subprocess) and the HTTP API (the indexed
functions), against Azurite: the usage table holds rows in the log reader's format (tests/usage_support.py), the
inventory rows come through the pipeline. The command runs at a fixed `--now`; the API at the services' clock."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import azure.functions as func
import pytest

from devtools.azurite import Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.usage import SERVICE_TOTAL, SERVICE_TOTAL_ID
from shared.entrypoints import columns
from tests.conftest import fresh_settings, table_repo
from tests.support import SERVICE_ID, ManualClock, event, processor_over
from tests.test_cli import Cli, as_csv, as_json, failed, ok, store_env
from tests.usage_support import bad_line, contribution, counts, last_use, put_usage, tracking

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc)
H = timedelta(hours=1)
HOUR = NOW.replace(minute=0)
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")
CONTAINER = "insights-logs-gatewaylogs"
_tables = itertools.count()


def usage_settings() -> Settings:
    return replace(fresh_settings(), usage_table=f"UsageReports{next(_tables)}")


def seed(azurite: Azurite, settings: Settings) -> None:
    store = table_repo(azurite, settings)
    processor = processor_over(store, ManualClock(NOW - timedelta(days=200)).now)
    at = NOW - timedelta(days=200)
    for payload in (event("APICreated", "/apis/orders", at=at), event("SubscriptionCreated", "/subscriptions/s-old", at=at),
                    event("SubscriptionCreated", "/subscriptions/s-never", at=at), event("SubscriptionCreated", "/subscriptions/s-busy", at=at),
                    event("SubscriptionCreated", "/subscriptions/f-never", at=at, service=FABRIKAM)):
        processor.handle(decode_event(payload))
    put_usage(store, [
        tracking("contoso", NOW - timedelta(days=120)), tracking("fabrikam", NOW - timedelta(days=10)),
        contribution("contoso", "api", "orders", HOUR, counts(8, failed=2, duration_max_ms=250.0)),
        contribution("contoso", "api", "orders", HOUR - 2 * H, counts(2)),
        contribution("contoso", "api", "ghost", HOUR, counts(3, failed=3)),
        contribution("contoso", "operation", "orders/get", HOUR, counts(10, failed=2)),
        contribution("contoso", "subscription", "s-busy", HOUR, counts(10, failed=2)),
        contribution("contoso", SERVICE_TOTAL, SERVICE_TOTAL_ID, HOUR, counts(10, failed=2)),
        contribution("contoso", SERVICE_TOTAL, SERVICE_TOTAL_ID, HOUR - 5 * H, counts(5)),
        last_use("contoso", "api", "orders", NOW - timedelta(minutes=3)),
        last_use("contoso", "subscription", "s-busy", NOW - timedelta(minutes=3)),
        last_use("contoso", "subscription", "s-old", NOW - timedelta(days=100)),
        bad_line(CONTAINER, NOW - timedelta(hours=2), "resourceId=/x/PT1H.json", 1200, "not-json", "{oops"),
    ])


@dataclass(frozen=True)
class Seeded:
    cli: Cli
    settings: Settings


@pytest.fixture(scope="module")
def seeded(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    settings = usage_settings()
    seed(azurite, settings)
    return Seeded(Cli({**store_env(azurite, settings), "INVENTORY_USAGE_TABLE": settings.usage_table}, tmp_path_factory.mktemp("usage")), settings)


def at_now(*args: str) -> list[str]:
    return ["--now", NOW.isoformat().replace("+00:00", "Z"), *args]


@pytest.mark.slow
def test_usage_as_json_csv_and_table(seeded: Seeded) -> None:
    document, rows, text = (seeded.cli(*at_now("usage", *extra)) for extra in (["-o", "json"], ["-o", "csv"], []))
    answer = json.loads(ok(document))
    assert [(i["kind"], i["path"], i["total"]) for i in answer["items"]] == [
        ("api", "apis/orders", 10), ("operation", "apis/orders/operations/get", 10), ("subscription", "subscriptions/s-busy", 10),
        ("api", "apis/ghost", 3)]  # ties by path
    orders = answer["items"][0]
    assert orders == {"service": "contoso", "kind": "api", "path": "apis/orders", "id": "orders", "total": 10, "successful": 8, "failed": 2,
                      "unauthorized": 0, "other": 0, "backendFailed": 0, "failureRate": 0.2, "averageMs": 10.0, "maxMs": 250.0,
                      "lastUsedAt": "2026-11-20T10:27:00Z", "known": True}
    assert answer["window"] == {"from": "2026-11-19T10:00:00Z", "until": "2026-11-20T11:00:00Z", "rolledDays": []}
    listed = as_csv(rows)
    assert list(listed[0]) == list(columns.USAGE_CSV_COLUMNS)
    assert [(r["path"], r["known"]) for r in listed] == [("apis/orders", "true"), ("apis/orders/operations/get", ""),
                                                         ("subscriptions/s-busy", "true"), ("apis/ghost", "false")]
    lines = ok(text).splitlines()
    assert lines[0] == "Requests from 2026-11-19T10:00:00Z to 2026-11-20T11:00:00Z (whole clock hours)"
    assert lines[2].split() == ["Service", "Kind", "Path", "Total", "Successful", "Failed", "Unauthorized", "Other", "BackendFailed",
                                "FailureRate", "AverageMs", "MaxMs", "LastUsedAt", "Inventory"]
    assert lines[-1].split()[:4] == ["contoso", "api", "apis/ghost", "3"] and lines[-1].split()[-1] == "no"


@pytest.mark.slow
def test_usage_filters_sorts_and_lists_the_unknown(seeded: Seeded) -> None:
    unknown, by_failed, narrow = seeded.cli.many(at_now("usage", "--unknown", "-o", "json"), at_now("usage", "--sort", "failed", "--top", "1", "-o", "json"),
                                                 at_now("usage", "--kind", "api", "--since", "90m", "--service", SERVICE_ID, "-o", "json"))
    assert [i["path"] for i in as_json(unknown)["items"]] == ["apis/ghost"]
    assert [i["path"] for i in as_json(by_failed)["items"]] == ["apis/ghost"]
    assert [(i["path"], i["total"]) for i in as_json(narrow)["items"]] == [("apis/orders", 8), ("apis/ghost", 3)]


@pytest.mark.slow
def test_usage_rejected_and_unused(seeded: Seeded) -> None:
    bad, bad_csv, after_group, subs, subs_text, subs_csv = seeded.cli.many(
        at_now("usage", "rejected", "-o", "json"), at_now("usage", "rejected", "--since", "1h", "-o", "csv"), at_now("usage", "-o", "json", "rejected"),
        at_now("unused", "--kind", "subscription", "-o", "json"), at_now("unused", "--kind", "Subscription"),
        at_now("unused", "--kind", "subscription", "-o", "csv"))
    found = as_json(bad)
    assert found["container"] == CONTAINER and [(i["blob"], i["offset"], i["reason"], i["excerpt"]) for i in found["items"]] == [
        ("resourceId=/x/PT1H.json", 1200, "not-json", "{oops")]
    assert as_csv(bad_csv) == [] and ok(bad_csv).splitlines() == [",".join(columns.BAD_LINE_CSV_COLUMNS)]
    assert as_json(after_group)["count"] == 1
    answer = as_json(subs)
    assert [(i["service"], i["path"], i["lastUsedAt"]) for i in answer["items"]] == [
        ("contoso", "subscriptions/s-never", None), ("contoso", "subscriptions/s-old", "2026-08-12T10:30:00Z"), ("fabrikam", "subscriptions/f-never", None)]
    assert answer["services"][1] == {"service": "fabrikam", "trackedSince": "2026-11-10T10:30:00Z", "trackedFully": False}
    lines = ok(subs_text).splitlines()
    assert lines[0] == "subscription with no request since 2026-08-22T10:30:00Z (90 days): 3"
    assert lines[1].startswith("note: the gateway logs of service fabrikam begin at 2026-11-10T10:30:00Z, less than 90 days ago")
    assert "never" in lines[-1]
    assert list(as_csv(subs_csv)[0]) == list(columns.UNUSED_CSV_COLUMNS)


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "code", "says"), [
    (["usage", "--since", "yesterday"], 2, "--since must be an ISO 8601 time"),
    (["usage", "--kind", "gateway"], 2, "argument --kind: invalid choice: 'gateway'"),
    (["usage", "--top", "0"], 2, "--top must be a whole number from 1 to 1000"),
    (["usage", "--service", "nowhere"], 1, "no gateway logs of service 'nowhere' were read: logs were read for contoso, fabrikam"),
    (["usage", "--since", "1h", "--until", "2h"], 2, "until must be after since"),
    (["usage", "rejected", "--since", "soon"], 2, "--since must be an ISO 8601 time"),
    (["unused", "--kind", "gateway"], 2, "kind must be one of subscription, api, product, user, not 'gateway'"),
    (["unused", "--kind", "api", "--days", "0"], 2, "days must be a whole number from 1 to 3650"),
    (["unused", "--kind", "api", "--service", "nowhere"], 1, "the inventory has never seen service 'nowhere'"),
    (["unused"], 2, "the following arguments are required: --kind"),
])
def test_errors_are_one_line_naming_what_failed(seeded: Seeded, argv: list[str], code: int, says: str) -> None:
    assert says in failed(seeded.cli(*at_now(*argv)), code)


@pytest.mark.slow
def test_summary_shows_the_request_totals(seeded: Seeded) -> None:
    document, text, rows = seeded.cli.many(at_now("summary", "-o", "json"), at_now("summary"), at_now("summary", "-o", "csv"))
    answer = as_json(document)
    assert answer["requests"] == [
        {"service": "contoso", "lastHour": {"total": 10, "successful": 8, "failed": 2, "unauthorized": 0, "other": 0, "backendFailed": 0},
         "lastDay": {"total": 15, "successful": 13, "failed": 2, "unauthorized": 0, "other": 0, "backendFailed": 0}},
        {"service": "fabrikam", **{w: dict.fromkeys(("total", "successful", "failed", "unauthorized", "other", "backendFailed"), 0)
                                    for w in ("lastHour", "lastDay")}}]
    assert answer["requestWindows"]["lastHour"] == {"from": "2026-11-20T09:00:00Z", "until": "2026-11-20T11:00:00Z"}
    lines = ok(text).splitlines()
    assert "Requests in whole clock hours: lastHour from 2026-11-20T09:00:00Z, lastDay from 2026-11-19T10:00:00Z" in lines
    assert ["lastHour", "contoso", "10", "8", "2", "0", "0", "0"] in [line.split() for line in lines]
    assert {"Metric": "requests.total", "Window": "lastDay", "Service": "contoso", "Kind": "", "Count": "15", "Workspace": ""} in as_csv(rows)


# -- the HTTP API ----------------------------------------------------------------------------------------------------


def call(name: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{name}", params=params or {}, route_params={}, body=b"")
    response = indexed_function(name)(req)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


@pytest.fixture(scope="module")
def api(azurite: Azurite) -> Iterator[None]:
    settings = usage_settings()
    seed(azurite, settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INVENTORY_STORAGE", azurite.connection_string)
        bootstrap.install(bootstrap.build_services(settings, clock=lambda: NOW))
        yield
        bootstrap.install(None)


def test_api_usage_pages_with_a_token(api: None) -> None:
    seen, token = [], None
    while True:
        status, body = call("usage", {"top": "3", **({"continuationToken": token} if token else {})})
        assert status == 200 and body["count"] <= 3
        seen += [i["path"] for i in body["items"]]
        token = body["continuationToken"]
        if token is None:
            break
    assert seen == ["apis/orders", "apis/orders/operations/get", "subscriptions/s-busy", "apis/ghost"]
    status, body = call("usage", {"unknown": "true", "kind": "api", "sort": "failure-rate"})
    assert (status, [i["path"] for i in body["items"]]) == (200, ["apis/ghost"])


def test_api_unused_pages_and_says_when_tracking_began(api: None) -> None:
    status, first = call("unused", {"kind": "subscription", "top": "2"})
    assert status == 200 and first["count"] == 2 and first["continuationToken"]
    status, rest = call("unused", {"kind": "subscription", "top": "2", "continuationToken": first["continuationToken"]})
    assert [i["path"] for i in first["items"] + rest["items"]] == ["subscriptions/s-never", "subscriptions/s-old", "subscriptions/f-never"]
    assert rest["continuationToken"] is None and rest["items"][0]["trackedSince"] == "2026-11-10T10:30:00Z"


@pytest.mark.parametrize(("name", "params", "status", "says"), [
    ("usage", {"since": "later"}, 400, "since must be an ISO 8601 time"),
    ("usage", {"sort": "busiest"}, 400, "sort must be one of total, failed, failure-rate"),
    ("usage", {"kind": "gateway"}, 400, "kind must be one of api, operation"),
    ("usage", {"top": "5000"}, 400, "top must be a whole number from 1 to 1000"),
    ("usage", {"unknown": "maybe"}, 400, "unknown must be true or false"),
    ("usage", {"continuationToken": "e30="}, 400, "continuationToken is not one this API issued"),
    ("usage", {"service": "nowhere"}, 404, "no gateway logs of service 'nowhere' were read"),
    ("usage", {"colour": "red"}, 400, "unknown parameter 'colour'"),
    ("unused", {}, 400, "parameter kind is required"),
    ("unused", {"kind": "backend"}, 400, "kind must be one of subscription, api, product, user"),
    ("unused", {"kind": "user", "days": "x"}, 400, "days must be a whole number"),
    ("unused", {"kind": "user", "service": "nowhere"}, 404, "the inventory has never seen service 'nowhere'"),
])
def test_api_errors(api: None, name: str, params: dict[str, str], status: int, says: str) -> None:
    got, body = call(name, params)
    assert got == status and says in body["error"] and "\n" not in body["error"]

