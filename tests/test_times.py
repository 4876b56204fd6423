"""Times a person gives, in the command and the API: ISO 8601, or a time ago (`24h`, `7d`, `90m`, `30s`, `2w`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.errors import InvalidQuery
from shared.domain.times import parse_ago
from shared.queries.inventory import parse_when

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "ago"), [
    ("30s", timedelta(seconds=30)), ("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)), (" 24H ", timedelta(hours=24)), ("0m", timedelta(0)),
])
def test_a_time_ago_counts_back_from_now(text: str, ago: timedelta) -> None:
    assert parse_when(text, "since", NOW) == NOW - ago


def test_absolute_times_still_parse_and_ignore_now() -> None:
    assert parse_when("2026-10-01T08:00:00.1234567Z", "since", NOW) == datetime(2026, 10, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)
    assert parse_when("2026-10-01T10:00:00+02:00", "since", NOW) == datetime(2026, 10, 1, 8, tzinfo=timezone.utc)
    assert parse_when("", "since", NOW) is None and parse_when(None, "since", NOW) is None


def test_without_now_a_time_ago_counts_back_from_the_system_clock() -> None:
    before = datetime.now(timezone.utc)
    moment = parse_when("1h", "since")
    assert moment is not None and before - timedelta(hours=1) <= moment <= datetime.now(timezone.utc) - timedelta(hours=1)


@pytest.mark.parametrize(("text", "message"), [
    ("yesterday", "since must be an ISO 8601 time such as 2026-11-02T09:00:00Z or a time ago such as 30s, 90m, 24h, 7d, 2w, not 'yesterday'"),
    ("24", "or a time ago such as"), ("h", "or a time ago such as"), ("-24h", "or a time ago such as"), ("1.5h", "or a time ago such as"),
    ("24 h", "or a time ago such as"), ("3y", "or a time ago such as"), ("1d2h", "or a time ago such as"),
    ("9999999w", "since must not be before 1601-01-01"), ("999999999999d", "since must not be before 1601-01-01"),
    ("999999999999w", "since must not be before 1601-01-01"),
])
def test_bad_times_get_one_line_naming_the_parameter(text: str, message: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse_when(text, "since", NOW)
    assert message in str(caught.value) and str(caught.value).startswith("since ") and "\n" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_any_text_is_a_time_or_a_clear_error(text: str) -> None:
    try:
        moment = parse_when(text, "since", NOW)
    except InvalidQuery as exc:
        assert str(exc).startswith("since ")
        return
    assert moment is None or (moment.tzinfo is not None and moment.year >= 1601)
    if parse_ago(text) is not None:
        assert moment == NOW - parse_ago(text)  # type: ignore[operator]
