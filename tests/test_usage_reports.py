"""The usage reports on the in-memory twin, over rows in the format the log reader writes (tests/usage_support.py):
`usage` sums every contribution of the window's hours and the roll-ups of marked days, sorts, pages and tells
the resources the inventory has no row of; `unused` lists the live resources with no recent request, the never-used
ones too, and says when a service's logs begin; `usage rejected` lists the bad lines; `summary` adds request totals.
Every request is counted (CountingReader): the cost follows the window and the answer, not the tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.worker import decode_event
from shared.domain.errors import InvalidQuery
from shared.domain.kinds import TOP_LEVEL, Kind
from shared.domain.resources import ResourceRef, ServiceRef, parse_path
from shared.domain.usage import COUNTED_KINDS, SERVICE_TOTAL, SERVICE_TOTAL_ID
from shared.queries.inventory import NotFound
from shared.queries.summary import summarize
from shared.queries.unused import bad_lines, parse_unused_kind, unused, unused_notes
from shared.queries.usage import hours_between, parse_sort, path_of, usage
from shared.store import keys
from shared.store.memory import InMemoryStore
from shared.store.ports import Loaded, Table
from tests.layout2 import marker, put, status_row
from tests.support import SERVICE_ID, ManualClock, event, processor_over
from tests.test_changes import CountingReader
from tests.usage_support import bad_line, contribution, counts, daily, last_use, oracle, put_usage, rolled, tracking

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc)
H = timedelta(hours=1)
HOUR = NOW.replace(minute=0)  # the current clock hour
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")
CONTOSO = ServiceRef("s", "rg", "contoso")


def inventory(store: InMemoryStore, *payloads: dict[str, Any]) -> None:
    clock = ManualClock(NOW - timedelta(days=200))
    processor = processor_over(store, clock.now)
    for payload in payloads:
        processor.handle(decode_event(payload))


def seeded() -> InMemoryStore:
    """Inventory: contoso's API orders (and revision 2), product gold, subscription s-known, user alice; a workspace w1
    holding the API ledger. Logs of contoso read since 30 days ago."""
    store = InMemoryStore()
    at = NOW - timedelta(days=200)
    inventory(store, event("APICreated", "/apis/orders", at=at), event("APIUpdated", "/apis/orders;rev=2", at=at),
              event("ProductCreated", "/products/gold", at=at), event("SubscriptionCreated", "/subscriptions/s-known", at=at),
              event("UserCreated", "/users/alice", at=at))
    put(store, Table.INVENTORY, [
        keys.with_keys(parse_path(CONTOSO, "workspaces/w1"), {"Kind": Kind.WORKSPACE.value, "Name": "w1", "IsDeleted": False}),
        keys.with_keys(parse_path(CONTOSO, "workspaces/w1/apis/ledger"), {"Kind": Kind.API.value, "Name": "ledger", "IsDeleted": False}),
    ])
    put_usage(store, [tracking("contoso", NOW - timedelta(days=30))])
    return store


class Counting(CountingReader):
    """The read side and the inventory rows' point reads (a revision's reads its API's row too), counted."""

    def load(self, ref: ResourceRef, *, fresh: bool = False) -> Loaded:
        self.requests += 1 + (ref.parent is not None)
        return self.store.load(ref, fresh=fresh)


def run(store: InMemoryStore, **asked: Any) -> tuple[dict[str, Any], Counting]:
    reader = Counting(store)
    return usage(reader, reader, NOW, **asked), reader


def totals(answer: dict[str, Any]) -> dict[str, int]:
    return {f"{item['kind']}:{item['path']}": item["total"] for item in answer["items"]}


def test_the_window_is_read_in_whole_clock_hours() -> None:
    assert hours_between(NOW - 24 * H, NOW) == [HOUR - 24 * H + n * H for n in range(25)]
    assert hours_between(HOUR, HOUR + H) == [HOUR]
    assert hours_between(HOUR, HOUR + timedelta(microseconds=1)) == [HOUR]
    assert path_of("operation", "echo-api/getspeakers") == "apis/echo-api/operations/getspeakers"
    assert path_of("api", "echo-api;rev=2") == "apis/echo-api;rev=2"
    assert path_of("subscription", "(none)") == "subscriptions/(none)"


def test_usage_sums_every_contribution_of_the_hours_the_window_overlaps() -> None:
    store = seeded()
    rows = [
        contribution("contoso", "api", "orders", HOUR, counts(3)), contribution("contoso", "api", "orders", HOUR, counts(2, failed=1)),
        contribution("contoso", "api", "orders", HOUR - H, counts(4, unauthorized=2)),
        contribution("contoso", "api", "orders", HOUR - 24 * H, counts(1)),  # 09:00-10:00 yesterday overlaps since (10:30)
        contribution("contoso", "api", "orders;rev=2", HOUR, counts(1)),
        contribution("contoso", "operation", "orders/get", HOUR, counts(5, other=1)),
        contribution("contoso", "subscription", "s-known", HOUR, counts(7)), contribution("contoso", "subscription", "master", HOUR, counts(2)),
        contribution("contoso", "subscription", "(none)", HOUR, counts(1)),
        contribution("contoso", "product", "gold", HOUR - 3 * H, counts(6, backend_failed=2)),
        contribution("contoso", "user", "1", HOUR, counts(1)), contribution("contoso", "backend", "payments", HOUR, counts(9, failed=9)),
    ]
    outside = [contribution("contoso", "api", "orders", HOUR - 25 * H, counts(100)),  # ends before since
               contribution("contoso", "api", "orders", HOUR + H, counts(100)),  # starts after now
               contribution("contoso", SERVICE_TOTAL, SERVICE_TOTAL_ID, HOUR, counts(40))]  # the service's total: summary's only
    put_usage(store, rows + outside)
    answer, _ = run(store)
    assert totals(answer) == {f"{k}:{path_of(k, i)}": n for (s, k, i), n in oracle(rows).items()}
    orders = next(item for item in answer["items"] if item["path"] == "apis/orders")
    assert {k: orders[k] for k in ("total", "successful", "failed", "unauthorized", "other", "backendFailed")} == \
        {"total": 10, "successful": 7, "failed": 1, "unauthorized": 2, "other": 0, "backendFailed": 0}
    assert orders["failureRate"] == 0.1 and orders["averageMs"] == 10.0 and orders["maxMs"] == 10.0
    assert answer["window"] == {"from": HOUR - 24 * H, "until": HOUR + H, "rolledDays": []}
    assert [item["path"] for item in answer["items"]][:3] == ["apis/orders", "backends/payments", "subscriptions/s-known"]


def test_a_rolled_day_is_read_from_its_roll_ups_and_widens_the_window() -> None:
    store = seeded()
    day = datetime(2026, 11, 10, tzinfo=timezone.utc)
    put_usage(store, [
        rolled("contoso", "api", day), daily("contoso", "api", "orders", day, counts(70)), daily("contoso", "api", "orders", day + 24 * H, counts(500)),
        contribution("contoso", "api", "orders", day + 13 * H, counts(1000)),  # an hour of the rolled day: its roll-up stands for it
        contribution("contoso", "api", "orders", day + 24 * H, counts(3)), contribution("contoso", "api", "orders", day + 26 * H, counts(100)),
        daily("contoso", "product", "gold", day, counts(8)),  # no marker for products: their hours are read
        contribution("contoso", "product", "gold", day + 12 * H, counts(2)),
    ])
    answer, reader = run(store, since=day + 12 * H, until=day + 26 * H)
    assert totals(answer) == {"api:apis/orders": 73, "product:products/gold": 2}
    assert answer["window"] == {"from": day, "until": day + 26 * H, "rolledDays": [day]}
    days = 2  # 12:00 on the 10th to 01:00 on the 11th: a key range of each day (the api's 10th: of its daily rows)
    requests = 2 + len(COUNTED_KINDS) * (1 + days)
    assert reader.requests == requests + 2 * 2  # a last-use and an inventory read per entry (both found at the service level)


@pytest.mark.parametrize(("sort", "expected"), [
    ("total", ["apis/b", "apis/a", "apis/c", "apis/d"]),
    ("failed", ["apis/c", "apis/b", "apis/d", "apis/a"]),
    ("failure-rate", ["apis/c", "apis/d", "apis/b", "apis/a"]),
])
def test_sort_orders_then_path(sort: str, expected: list[str]) -> None:
    store = seeded()
    put_usage(store, [contribution("contoso", "api", "a", HOUR, counts(10)), contribution("contoso", "api", "b", HOUR, counts(10, failed=2)),
                      contribution("contoso", "api", "b", HOUR, counts(1)), contribution("contoso", "api", "c", HOUR, counts(4, failed=4)),
                      contribution("contoso", "api", "d", HOUR, counts(2, failed=1))])
    assert [item["path"] for item in run(store, sort=sort)[0]["items"]] == expected
    with pytest.raises(InvalidQuery, match=r"^sort must be one of total, failed, failure-rate"):
        parse_sort("busiest")


def test_unknown_lists_only_what_the_inventory_has_no_row_of() -> None:
    store = seeded()
    put_usage(store, [contribution("contoso", k, i, HOUR, counts(n)) for n, (k, i) in enumerate([
        ("api", "orders"), ("api", "orders;rev=2"), ("api", "ghost"), ("api", "ghost;rev=3"), ("api", "ledger"),
        ("operation", "ghost/get"), ("product", "gold"), ("product", "platinum"), ("subscription", "s-known"),
        ("subscription", "s-gone"), ("subscription", "master"), ("subscription", "(none)"), ("user", "alice"), ("user", "1"),
        ("backend", "payments")], 1)])
    every = {item["path"]: item["known"] for item in run(store)[0]["items"]}
    assert every["apis/ledger"] is True  # in workspace w1: names are unique across a service's workspaces
    assert every["apis/orders;rev=2"] is True and every["apis/ghost"] is False
    assert every["apis/ghost/operations/get"] is None and every["subscriptions/(none)"] is None
    answer, _ = run(store, unknown=True)
    assert sorted(item["path"] for item in answer["items"]) == [
        "apis/ghost", "apis/ghost;rev=3", "backends/payments", "products/platinum", "subscriptions/s-gone", "users/1"]


def test_last_used_comes_from_the_last_use_row_else_the_counts() -> None:
    store = seeded()
    put_usage(store, [contribution("contoso", "api", "orders", HOUR, counts(1, last_at="2026-11-20T10:05:00Z")),
                      contribution("contoso", "api", "ghost", HOUR, counts(1, first_at="2026-11-20T10:01:00Z", last_at="2026-11-20T10:07:00Z")),
                      last_use("contoso", "api", "orders", NOW - timedelta(minutes=1))])
    found = {item["path"]: item["lastUsedAt"] for item in run(store)[0]["items"]}
    assert found == {"apis/orders": NOW - timedelta(minutes=1), "apis/ghost": datetime(2026, 11, 20, 10, 7, tzinfo=timezone.utc)}


def test_service_and_kind_narrow_what_is_read() -> None:
    store = seeded()
    put_usage(store, [tracking("fabrikam", NOW - 3 * H), contribution("fabrikam", "api", "orders", HOUR, counts(5)),
                      contribution("contoso", "api", "orders", HOUR, counts(2)), contribution("contoso", "product", "gold", HOUR, counts(2))])
    assert {(i["service"], i["path"]) for i in run(store, kind="api")[0]["items"]} == {("contoso", "apis/orders"), ("fabrikam", "apis/orders")}
    answer, reader = run(store, service="Fabrikam", kind="api", since=NOW - 2 * H)
    assert totals(answer) == {"api:apis/orders": 5}
    # status and tracking rows; one marker range and the 3 hours (one day: one key range); the entry's last use and
    # inventory row, and since fabrikam has no row of it, fabrikam's workspaces (none)
    assert reader.requests == 2 + 1 + 1 + 2 + 1
    with pytest.raises(NotFound, match=r"^no gateway logs of service 'nowhere' were read: logs were read for contoso, fabrikam$"):
        run(store, service="nowhere")
    with pytest.raises(InvalidQuery, match=r"^kind must be one of api, operation, product, subscription, user, backend"):
        run(store, kind="gateway")
    with pytest.raises(InvalidQuery, match=r"^until must be after since$"):
        run(store, since=NOW, until=NOW - H)


def test_requests_grow_with_the_window_never_with_the_inventory_or_the_usage_table() -> None:
    asked = []
    for extra in (0, 300):
        store = seeded()
        put_usage(store, [contribution("contoso", "api", "orders", HOUR, counts(1))])
        inventory(store, *(event("UserCreated", f"/users/u{n}") for n in range(extra)))
        put_usage(store, [contribution("contoso", "user", f"u{n}", HOUR - 30 * 24 * H, counts(1)) for n in range(extra)])  # out of the window
        asked.append(run(store, since=NOW - 24 * H)[1].requests)
    assert asked[0] == asked[1] == 2 + len(COUNTED_KINDS) * (1 + 2) + 2  # 25 hours over 2 days: a key range a day
    assert run(seeded(), since=NOW - 48 * H)[1].requests == 2 + len(COUNTED_KINDS) * (1 + 3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 40), st.integers(1, 9), st.integers(0, 9)),
                max_size=30),
       st.integers(0, 40), st.integers(1, 40), st.integers(1, 4), st.sampled_from(["total", "failed", "failure-rate"]))
def test_pages_and_sums_equal_a_brute_force_count(drawn: list[tuple[str, int, int, int]], start: int, length: int, top: int, sort: str) -> None:
    """Random contributions over 40 hours: every page read in turn gives each resource the sum of the contributions of
    the hours its window overlaps, in the sort's order, each resource once."""
    store = seeded()
    rows = [contribution("contoso", "api", name, HOUR - back * H, counts(total, failed=min(failed, total))) for name, back, total, failed in drawn]
    put_usage(store, rows)
    since, until = HOUR - start * H + timedelta(minutes=30), HOUR - start * H + timedelta(minutes=30) + length * H
    wanted: dict[str, list[int]] = {}
    for name, back, total, _failed in drawn:
        hour = HOUR - back * H
        if hour + H > since and hour < until:
            sums = wanted.setdefault(f"apis/{name}", [0, 0])
            sums[0] += total
            sums[1] += min(_failed, total)
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        answer, _ = run(store, since=since, until=until, top=top, sort=sort, continuation=token)
        assert answer["count"] <= top
        seen += answer["items"]
        token = answer["continuationToken"]
        if token is None:
            break
    assert {item["path"]: [item["total"], item["failed"]] for item in seen} == wanted
    assert len(seen) == len(wanted)
    def metric(sums: list[int]) -> float:
        return {"total": sums[0], "failed": sums[1], "failure-rate": sums[1] / sums[0]}[sort]

    assert [item["path"] for item in seen] == sorted(wanted, key=lambda p: (-metric(wanted[p]), p))


def test_a_token_belongs_to_its_question() -> None:
    store = seeded()
    put_usage(store, [contribution("contoso", "api", name, HOUR, counts(1)) for name in "abc"])
    token = run(store, top=1)[0]["continuationToken"]
    assert token
    with pytest.raises(InvalidQuery, match=r"^continuationToken was issued for other parameters"):
        run(store, top=1, sort="failed", continuation=token)
    with pytest.raises(InvalidQuery, match=r"^continuationToken is not one this API issued$"):
        run(store, continuation="bm90IGEgdG9rZW4=")
    later, _ = run(store, top=5, continuation=token, since=NOW - timedelta(days=300))  # the token's window stands
    assert [item["path"] for item in later["items"]] == ["apis/b", "apis/c"]


# -- unused ------------------------------------------------------------------------------------------------------------


def unused_store(fabrikam_tracked: bool = True) -> InMemoryStore:
    store = InMemoryStore()
    at = NOW - timedelta(days=400)
    inventory(store, *(event("SubscriptionCreated", f"/subscriptions/{name}", at=at) for name in ("s-old", "s-recent", "s-never", "s-gone", "S-Mixed")),
              event("SubscriptionDeleted", "/subscriptions/s-gone", at=at + H),
              event("SubscriptionCreated", "/subscriptions/f-never", at=at, service=FABRIKAM),
              event("APICreated", "/apis/orders", at=at), event("APIUpdated", "/apis/orders;rev=2", at=at))
    put_usage(store, [tracking("contoso", NOW - timedelta(days=200))] + [tracking("fabrikam", (NOW - timedelta(days=10)).isoformat())] * fabrikam_tracked + [
                      last_use("contoso", "subscription", "s-old", NOW - timedelta(days=91)),
                      last_use("contoso", "subscription", "s-recent", NOW - timedelta(days=5)),
                      last_use("contoso", "subscription", "s-gone", NOW - timedelta(days=300)),
                      last_use("contoso", "subscription", "s-mixed", "2026-11-19T00:00:00Z"),  # ids as the logs normalise them
                      last_use("contoso", "api", "orders", NOW - timedelta(days=1))])
    return store


def test_unused_lists_live_resources_with_no_recent_request_and_the_never_used() -> None:
    store = unused_store()
    reader = CountingReader(store)
    answer = unused(reader, NOW, Kind.SUBSCRIPTION, 90)
    assert [(i["service"], i["path"], i["lastUsedAt"]) for i in answer["items"]] == [
        ("contoso", "subscriptions/s-never", None), ("contoso", "subscriptions/s-old", NOW - timedelta(days=91)),
        ("fabrikam", "subscriptions/f-never", None)]
    assert reader.requests == 1 + 2 + 1  # the kind's rows (one key range), a last-use range per service, the tracking rows
    assert answer["services"] == [{"service": "contoso", "trackedSince": NOW - timedelta(days=200), "trackedFully": True},
                                  {"service": "fabrikam", "trackedSince": NOW - timedelta(days=10), "trackedFully": False}]
    assert answer["items"][0]["createdAt"] == NOW - timedelta(days=400) and answer["items"][2]["trackedSince"] == NOW - timedelta(days=10)
    assert unused_notes(answer) == ["note: the gateway logs of service fabrikam begin at 2026-11-10T10:30:00Z, less than 90 days ago: "
                                    "a resource listed may have been used before then"]
    assert [i["path"] for i in unused(reader, NOW, Kind.SUBSCRIPTION, 4)["items"]] == [
        "subscriptions/s-never", "subscriptions/s-old", "subscriptions/s-recent", "subscriptions/f-never"]
    assert [i["path"] for i in unused(reader, NOW, Kind.SUBSCRIPTION, 6, service="Contoso")["items"]] == [
        "subscriptions/s-never", "subscriptions/s-old"]
    # an API's revision is its own resource: requests to it count for the API too, not the other way round
    assert [i["path"] for i in unused(reader, NOW, Kind.API, 90)["items"]] == ["apis/orders;rev=2"]


def test_unused_of_a_service_whose_logs_were_never_read_says_so() -> None:
    store = unused_store(fabrikam_tracked=False)
    answer = unused(store, NOW, Kind.SUBSCRIPTION, 90, service="fabrikam")
    assert answer["services"] == [{"service": "fabrikam", "trackedSince": None, "trackedFully": False}]
    assert unused_notes(answer)[0].startswith("note: no gateway logs of service fabrikam were read yet")


def test_unused_pages_and_refuses_kinds_it_does_not_answer() -> None:
    store = unused_store()
    first = unused(store, NOW, Kind.SUBSCRIPTION, 90, top=2)
    assert first["count"] == 2 and first["continuationToken"]
    rest = unused(store, NOW, Kind.SUBSCRIPTION, 90, top=2, continuation=first["continuationToken"])
    assert [i["path"] for i in first["items"] + rest["items"]] == ["subscriptions/s-never", "subscriptions/s-old", "subscriptions/f-never"]
    assert rest["continuationToken"] is None
    with pytest.raises(InvalidQuery, match=r"^continuationToken was issued for other parameters"):
        unused(store, NOW, Kind.SUBSCRIPTION, 30, continuation=first["continuationToken"])
    with pytest.raises(InvalidQuery, match=r"^kind must be one of subscription, api, product, user, not 'gateway'$"):
        parse_unused_kind("gateway")


# -- bad lines, summary ----------------------------------------------------------------------------------------------


def test_bad_lines_of_the_window_newest_first() -> None:
    store = InMemoryStore()
    container = "insights-logs-gatewaylogs"
    put_usage(store, [bad_line(container, NOW - timedelta(minutes=5), "b1", 200, "not-json", "{oops"),
                      bad_line(container, NOW - timedelta(minutes=5), "b1", 100, "no-time", "{}"),
                      bad_line(container, NOW - timedelta(days=1), "b0", 0, "too-long", "x" * 200),
                      bad_line(container, NOW - timedelta(days=9), "old", 0, "not-json", "old"),
                      bad_line("other", NOW, "b9", 0, "not-json", "elsewhere")])
    reader = CountingReader(store)
    found = bad_lines(reader, NOW, container)
    assert [(i["blob"], i["offset"], i["reason"]) for i in found["items"]] == [("b1", 100, "no-time"), ("b1", 200, "not-json"),
                                                                                ("b0", 0, "too-long")]
    assert reader.requests == 8  # today and the 7 days before
    assert [i["blob"] for i in bad_lines(store, NOW, container, NOW - timedelta(minutes=10))["items"]] == ["b1", "b1"]


def test_summary_adds_each_services_requests_in_the_last_hour_and_day() -> None:
    store = InMemoryStore()
    put(store, Table.STATUS, [marker(), status_row("contoso", "Contoso")])
    put_usage(store, [tracking("contoso", NOW - timedelta(days=3)), tracking("fabrikam", NOW - timedelta(days=3))] + [
        contribution("contoso", SERVICE_TOTAL, SERVICE_TOTAL_ID, HOUR - back * H, counts(n, failed=1))
        for back, n in ((0, 1), (0, 2), (1, 10), (2, 100), (24, 1000), (25, 10000))])
    reader = CountingReader(store)
    answer = summarize(reader, NOW)
    assert answer["requests"] == [
        {"service": "Contoso", "lastHour": {"total": 13, "successful": 10, "failed": 3, "unauthorized": 0, "other": 0, "backendFailed": 0},
         "lastDay": {"total": 1113, "successful": 1108, "failed": 5, "unauthorized": 0, "other": 0, "backendFailed": 0}},
        {"service": "fabrikam", "lastHour": dict.fromkeys(("total", "successful", "failed", "unauthorized", "other", "backendFailed"), 0),
         "lastDay": dict.fromkeys(("total", "successful", "failed", "unauthorized", "other", "backendFailed"), 0)}]
    assert answer["requestWindows"] == {"lastHour": {"from": HOUR - H, "until": HOUR + H}, "lastDay": {"from": HOUR - 24 * H, "until": HOUR + H}}
    assert reader.requests == 1 + 1 + len(TOP_LEVEL) * keys.BUCKETS + 2 + 1 + 2 * 2 + 1  # per service, a key range of each day of 25 hours; its snapshots
