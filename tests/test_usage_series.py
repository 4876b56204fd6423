"""The charts' series (shared/queries/usage_series.py) on the in-memory twin, over rows in the log reader's format:
each bucket holds exactly the contributions of its hour (or day; a rolled day from its roll-up alone), by category,
for the service or one resource, and the reads are fixed by the span, never by the rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.errors import InvalidQuery
from shared.domain.usage import SERVICE_TOTAL, SERVICE_TOTAL_ID
from shared.queries.inventory import NotFound
from shared.queries.usage_series import CATEGORIES, request_series, requests_of
from shared.store.memory import InMemoryStore
from tests.test_changes import CountingReader
from tests.usage_support import contribution, counts, daily, put_usage, rolled, tracking

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc)
H, D = timedelta(hours=1), timedelta(days=1)
HOUR, TODAY = NOW.replace(minute=0), NOW.replace(hour=0, minute=0)
drawn = st.lists(st.tuples(st.sampled_from(["a", "b", "-"]), st.integers(0, 24 * 33), st.integers(1, 9), st.integers(0, 3), st.integers(0, 3)),
                 max_size=40)


def rows_of(items: list[tuple[str, int, int, int, int]]) -> list[dict[str, object]]:
    return [contribution("contoso", SERVICE_TOTAL if name == "-" else "api", SERVICE_TOTAL_ID if name == "-" else name, HOUR - back * H,
                         counts(total + failed + unauthorized, failed=failed, unauthorized=unauthorized))
            for name, back, total, failed, unauthorized in items]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn, st.sampled_from(["24h", "30d"]), st.sampled_from([None, "a"]), st.sets(st.integers(2, 29), max_size=3))
def test_each_bucket_holds_its_contributions(items: list[tuple[str, int, int, int, int]], span: str, resource: str | None, rolled_back: set[int]) -> None:
    store = InMemoryStore()
    put_usage(store, rows_of(items))
    kind, wanted_id = ("api", resource) if resource else (SERVICE_TOTAL, SERVICE_TOTAL_ID)
    day_rolls = {TODAY - n * D: counts(1000 + n, failed=n) for n in rolled_back}  # a rolled day: its roll-up stands for its hours
    for day, c in day_rolls.items():
        put_usage(store, [rolled("contoso", kind, day), daily("contoso", kind, wanted_id, day, c)])
    got = request_series(store, NOW, "contoso", span, kind=kind, resource_id=resource)
    step, count = (H, 25) if span == "24h" else (D, 31)
    starts = [(HOUR if step == H else TODAY) - step * n for n in range(count - 1, -1, -1)]
    want = {s: {"total": 0, "successful": 0, "failed": 0, "unauthorized": 0, "other": 0} for s in starts}
    for name, back, total, failed, unauthorized in items:
        if (name == "-") != (resource is None) or (resource is not None and name != resource):
            continue
        hour = HOUR - back * H
        bucket = hour if step == H else hour.replace(hour=0)
        if bucket in want and not (step == D and bucket in day_rolls):
            for key, n in (("total", total + failed + unauthorized), ("successful", total), ("failed", failed), ("unauthorized", unauthorized)):
                want[bucket][key] += n
    if step == D:
        for day, c in day_rolls.items():
            if day in want:
                want[day] = {"total": c.total, "successful": c.successful, "failed": c.failed, "unauthorized": c.unauthorized, "other": c.other}
    assert [b["from"] for b in got["buckets"]] == starts
    assert {b["from"]: {k: b[k] for k in ("total", *CATEGORIES)} for b in got["buckets"]} == want


@pytest.mark.parametrize(("span", "reads"), [("24h", 2), ("30d", 1 + 31)])
def test_the_reads_are_set_by_the_span(span: str, reads: int) -> None:
    asked = []
    for many in (0, 500):
        store = InMemoryStore()
        put_usage(store, rows_of([("a", n % 700, 1, 0, 0) for n in range(many)]))
        reader = CountingReader(store)
        request_series(reader, NOW, "contoso", span)
        asked.append(reader.requests)
    assert asked == [reads, reads]


def test_the_route_checks_its_parameters_and_names_a_service_without_logs() -> None:
    store = InMemoryStore()
    put_usage(store, [tracking("contoso", NOW - 3 * D), *rows_of([("-", 1, 5, 0, 0)])])

    def known(name: str) -> str:
        if name != "fabrikam":
            raise NotFound(f"no service {name!r}")
        return name

    answer = requests_of(store, NOW, "Contoso", "24h", None, None, known)
    assert answer["logsRead"] and sum(b["total"] for b in answer["buckets"]) == 5
    assert requests_of(store, NOW, "fabrikam", "30d", None, None, known)["logsRead"] is False
    with pytest.raises(NotFound):
        requests_of(store, NOW, "nobody", "24h", None, None, known)
    for span, kind, ident in (("7d", None, None), ("24h", "api", None), ("24h", "gateway", "g")):
        with pytest.raises(InvalidQuery):
            requests_of(store, NOW, "contoso", span, kind, ident, known)
