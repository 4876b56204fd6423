"""The rules of usage from the gateway logs (shared/domain/usage.py): Microsoft's request categories at every
boundary, the id forms a record may use, and why a line is not counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.usage import (
    CATEGORIES,
    NO_RESOURCE_ID,
    NO_TIME,
    NOT_AN_OBJECT,
    BadLine,
    Counters,
    UsageHit,
    api_ids,
    backend_failed,
    category,
    read_record,
    resource_id,
)
from shared.usage.tally import tally

pytestmark = pytest.mark.unit
SERVICE = "/SUBSCRIPTIONS/6F0C3C1E-0000-4000-8000-000000000001/RESOURCEGROUPS/RG-APIM/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/APIM-HELLO-WORLD"


@pytest.mark.parametrize(("code", "expected"), [
    (0, "successful"), (200, "successful"), (300, "successful"), (301, "successful"), (302, "other"),
    (304, "successful"), (307, "successful"), (400, "failed"), (401, "unauthorized"), (403, "unauthorized"),
    (404, "other"), (418, "other"), (429, "unauthorized"), (430, "other"), (499, "other"), (500, "failed"),
    (503, "failed"), (599, "failed"), (600, "other"), (999, "other"),
])
def test_every_boundary_of_microsofts_categories(code: int, expected: str) -> None:
    assert CATEGORIES[category(code)] == expected


@pytest.mark.parametrize("code", [None, True, "abc", -1, 1000, 200.5])
def test_a_code_that_is_absent_or_not_a_code_is_other(code: object) -> None:
    assert CATEGORIES[category(code)] == "other"


def _oracle(code: int) -> str:
    """The notice's lists, read literally, as sets."""
    successful = set(range(0, 302)) | {304, 307}
    unauthorized = {401, 403, 429}
    failed = {400} | set(range(500, 600))
    return "successful" if code in successful else "unauthorized" if code in unauthorized else "failed" if code in failed else "other"


@given(st.integers(0, 999))
def test_every_code_falls_where_the_notice_puts_it(code: int) -> None:
    assert CATEGORIES[category(code)] == _oracle(code)


@pytest.mark.parametrize(("raw", "expected"), [
    ("echo-api", "echo-api"), ("/apis/echo-api", "echo-api"), ("Echo-API", "echo-api"), ("/apis/Echo-API/", "echo-api"),
    ("echo-api;REV=2", "echo-api;rev=2"), ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.ApiManagement/service/s/apis/a", "a"),
])
def test_ids_are_matched_by_their_last_segment_ignoring_case(raw: str, expected: str) -> None:
    assert resource_id(raw) == expected


def test_a_revision_counts_for_itself_and_its_api() -> None:
    assert api_ids("Echo-API;rev=2") == ("echo-api;rev=2", "echo-api")
    assert api_ids("/apis/echo-api") == ("echo-api",)


def _record(**properties: Any) -> dict[str, Any]:
    return {"time": "2020-10-14T17:33:12.1234567Z", "resourceId": SERVICE, "durationMs": 152,
            "properties": {"responseCode": 200, **properties}}


def test_a_record_names_its_service_api_operation_subscription_product_user_and_backend() -> None:
    hit = read_record(_record(apiId="/apis/Conference;rev=3", operationId="GetSpeakers", apimSubscriptionId="Sub-1",
                              productId="/products/Starter", userId="1", backendId="conference-backend"))
    assert isinstance(hit, UsageHit)
    assert (hit.service, hit.hour, hit.at, hit.duration_ms) == ("apim-hello-world", "2020-10-14T17", "2020-10-14T17:33:12Z", 152.0)
    assert hit.names == (("service", "-"), ("api", "conference;rev=3"), ("api", "conference"), ("operation", "conference/getspeakers"),
                         ("subscription", "sub-1"), ("product", "starter"), ("user", "1"), ("backend", "conference-backend"))


def test_no_subscription_is_counted_as_none_and_the_all_access_one_as_master() -> None:
    assert ("subscription", "(none)") in read_record(_record()).names  # type: ignore[union-attr]
    assert ("subscription", "master") in read_record(_record(apimSubscriptionId="master")).names  # type: ignore[union-attr]


def test_a_time_with_an_offset_is_counted_in_its_utc_hour() -> None:
    hit = read_record({**_record(), "time": "2020-10-14T01:10:00+02:00"})
    assert isinstance(hit, UsageHit) and (hit.hour, hit.at) == ("2020-10-13T23", "2020-10-13T23:10:00Z")


@pytest.mark.parametrize(("record", "reason"), [
    ([1, 2], NOT_AN_OBJECT), ("text", NOT_AN_OBJECT), ({"resourceId": SERVICE}, NO_TIME),
    ({"time": "yesterday", "resourceId": SERVICE}, NO_TIME), ({"time": "2020-10-14T17:33:12Z"}, NO_RESOURCE_ID),
    ({"time": "2020-10-14T17:33:12Z", "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.WEB/SITES/X"}, NO_RESOURCE_ID),
    ({"time": "2020-10-14T17:33:12Z", "resourceId": {"id": 1}}, NO_RESOURCE_ID),
])
def test_a_line_that_is_not_a_record_says_why(record: object, reason: str) -> None:
    bad = read_record(record)
    assert isinstance(bad, BadLine) and bad.reason == reason and bad.message


@pytest.mark.parametrize(("properties", "failed"), [
    ({"backendResponseCode": 503}, True), ({"backendResponseCode": 500}, True), ({"backendResponseCode": 499}, False),
    ({"backendResponseCode": 600}, False), ({}, False), ({"lastError": {"reason": "Timeout"}}, True),
    ({"backendResponseCode": 200, "lastError": {"reason": "x"}}, False),
])
def test_backend_failures_are_its_5xx_or_no_answer_with_an_error(properties: dict[str, Any], failed: bool) -> None:
    assert backend_failed(properties) is failed


@given(st.lists(st.tuples(st.integers(0, 999), st.booleans(), st.integers(0, 100_000), st.integers(0, 3599)), min_size=1, max_size=40),
       st.integers(1, 39))
def test_counters_merged_in_any_split_equal_one_pass(requests: list[tuple[int, bool, int, int]], cut: int) -> None:
    hits = [read_record(json.loads(json.dumps({
        "time": f"2020-10-14T17:{second // 60:02d}:{second % 60:02d}Z", "resourceId": SERVICE, "durationMs": ms,
        "properties": {"responseCode": code, **({"backendResponseCode": 502} if bad else {})}})))
        for code, bad, ms, second in requests]
    whole, left, right = Counters(), Counters(), Counters()
    for at, hit in enumerate(hits):
        assert isinstance(hit, UsageHit)
        whole.add(hit)
        (left if at < cut else right).add(hit)
    right.merge(left)
    assert right == whole
    assert whole.total == len(requests) == whole.successful + whole.unauthorized + whole.failed + whole.other
    assert whole.failed == sum(_oracle(code) == "failed" for code, *_ in requests)
    assert whole.backend_failed == sum(bad for _, bad, *_ in requests)
    assert whole.duration_max_ms == max(ms for *_, ms, _ in requests)
    assert whole.first_at == min(h.at for h in hits if isinstance(h, UsageHit))


@pytest.mark.parametrize(("line", "reason"), [
    (b"[" * 100_000, "not-json"),  # deeper than the parser goes: RecursionError, not ValueError
    (json.dumps({"time": "2026-99-99T99:99:99Z", "resourceId": SERVICE}).encode(), "no-time"),  # digits, but no moment
    (b"\xff\xfe not utf-8", "not-json"),
])
def test_lines_that_break_a_parser_are_bad_lines_and_the_rest_is_counted(line: bytes, reason: str) -> None:
    good = json.dumps(_record(apiId="echo-api")).encode()
    counted = tally([(0, good), (len(good) + 1, line), (len(good) + len(line) + 2, good)])
    assert [(bad.offset, bad.reason) for bad in counted.rejected] == [(len(good) + 1, reason)]
    assert counted.counts[("apim-hello-world", "api", "2020-10-14T17", "echo-api")].total == 2


@pytest.mark.parametrize("value", [["a"], {"name": "a"}, 7, True])
def test_an_id_that_is_not_text_counts_as_absent(value: object) -> None:
    hit = read_record(_record(apiId=value, userId=value, apimSubscriptionId=value))
    assert isinstance(hit, UsageHit) and hit.names == (("service", "-"), ("subscription", "(none)"))


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -5, "152", None])
def test_a_duration_that_is_not_a_finite_number_counts_as_zero(duration: object) -> None:
    hit = read_record({**_record(), "durationMs": duration})
    assert isinstance(hit, UsageHit) and hit.duration_ms == 0.0


def test_a_bad_lines_excerpt_hides_keys_and_signatures() -> None:
    line = b'{"time": "x", "properties": {"url": "https://a.azure-api.net/x?subscription-key=0123456789abcdef&sig=SeCrEt%3D&b=1"}}'
    (bad,) = tally([(0, line)]).rejected
    assert "0123456789abcdef" not in bad.excerpt and "SeCrEt" not in bad.excerpt and "b=1" in bad.excerpt
