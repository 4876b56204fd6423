"""The read side of layout 2, in memory, over what the pipeline writes: the change feed (paged, merged across
services, newest first, at a cost that follows the page), one resource's history with its children, and the summary
from the count rows alone (equal to a full scan)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.worker import decode_event
from shared.domain.errors import InvalidQuery
from shared.domain.kinds import TOP_LEVEL, Kind
from shared.domain.resources import ServiceRef, parse_path
from shared.queries.changes import decode_cursor
from shared.queries.inventory import InventoryQueries, NotFound
from shared.queries.summary import NotMigrated
from shared.store import keys
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, StoredRow, Table, Token
from tests.layout2 import count_row, events_column, marker, put, rejected_count, status_row
from tests.support import SERVICE_ID, T0, ManualClock, event, feed_entries, history_records, inventory_rows, processor_over

pytestmark = pytest.mark.unit
NOW = T0 + timedelta(days=1, minutes=30, seconds=15)
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")
SERVICES = {"contoso": ServiceRef("s", "rg", "contoso"), "fabrikam": ServiceRef("s", "rg", "fabrikam")}
RESOURCES = [("User", "/users/alice"), ("User", "/users/bob"), ("API", "/apis/orders"), ("API", "/apis/orders;rev=2"),
             ("APIRelease", "/apis/orders/releases/r1"), ("Gateway", "/gateways/edge"), ("GatewayAPI", "/gateways/edge/apis/orders"),
             ("Product", "/products/gold")]
VERBS = {"GatewayAPI": ("Added", "Removed")}


class CountingReader:
    """The store's read side, counting requests and the entities they return."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store, self.requests, self.returned = store, 0, 0

    def get(self, table: Table, partition_key: str, row_key: str) -> StoredRow | None:
        self.requests += 1
        found = self.store.get(table, partition_key, row_key)
        self.returned += found is not None
        return found

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        self.requests += 1
        found, token = self.store.page(query, top, continuation)
        self.returned += len(found)
        return found, token

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        raise AssertionError("the read side reads pages of key ranges and points")


def queries_over(store: InMemoryStore, now: datetime = NOW) -> tuple[InventoryQueries, CountingReader]:
    reader = CountingReader(store)
    return InventoryQueries(store, reader, lambda: now), reader


def delivered(deliveries: list[tuple[dict[str, Any], datetime]]) -> InMemoryStore:
    """A new store, and each event delivered through the pipeline at its time."""
    store = InMemoryStore()
    store.create_tables()
    clock = ManualClock()
    processor = processor_over(store, clock.now)
    for payload, at in deliveries:
        clock.moment = at
        processor.handle(decode_event(payload))
    return store


def an_event(resource: int, verb: int, at: float, n: int, service: int) -> dict[str, Any]:
    kind, subject = RESOURCES[resource]
    verbs = VERBS.get(kind, ("Created", "Updated", "Deleted"))
    return event(kind + verbs[verb % len(verbs)], subject, at=at, event_id=f"e{n}", service=(SERVICE_ID, FABRIKAM)[service])


deliveries = st.lists(st.tuples(st.integers(0, len(RESOURCES) - 1), st.integers(0, 2), st.integers(0, 600), st.integers(0, 5),
                                st.integers(0, 1), st.integers(0, 900), st.booleans()), max_size=25)


def as_deliveries(drawn: list[tuple[int, int, int, int, int, int, bool]], unit: float = 1) -> list[tuple[dict[str, Any], datetime]]:
    """The drawn events, `unit` seconds a step (a unit of minutes spreads them, and their lateness, over days)."""
    out = []
    for resource, verb, at, n, service, late, again in drawn:
        payload = an_event(resource, verb, at * unit, n, service)
        out.append((payload, T0 + timedelta(seconds=(at + late) * unit)))
        if again:  # a redelivery: the same event, later
            out.append((payload, T0 + timedelta(seconds=(at + late) * unit + 30)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries, st.sampled_from(["event", "recorded"]), st.integers(0, 700), st.one_of(st.none(), st.integers(0, 1600)),
       st.integers(1, 7), st.sampled_from([None, "contoso", "FABRIKAM"]), st.sampled_from([None, Kind.USER, Kind.API]),
       st.sampled_from([1, 420]))
def test_the_pages_of_the_feed_are_every_change_in_the_window_newest_first(
        drawn: list[Any], by: str, since_s: int, until_s: int | None, top: int, service: str | None, kind: Kind | None,
        unit: int) -> None:
    """Whatever the events (ties, duplicates, stale ones, two services, over one day or several, recorded days after
    they happened) and the page size: page after page, each history record in the window exactly once, newest first,
    across the days' partitions; each page reads at most top + 1 entries and one request a day per service."""
    store = delivered(as_deliveries(drawn, unit))
    end = T0 + timedelta(seconds=2600 * unit)  # after every recorded time: the default `until` is now (included)
    queries, reader = queries_over(store, end)
    since, until = T0 + timedelta(seconds=since_s * unit), T0 + timedelta(seconds=until_s * unit) if until_s is not None else None
    if until is not None and until <= since:
        with pytest.raises(InvalidQuery, match="until must be after since"):
            queries.changes(since=since, until=until, by=by)
        return
    column = "EventTime" if by == "event" else "RecordedAt"
    wanted = [r for r in history_records(store) if since <= r[column] and (r[column] < until if until else r[column] <= end)
              and (service is None or r["ServiceKey"] == service.lower()) and (kind is None or r["ResourceKind"] == kind)]
    pages: list[list[dict[str, Any]]] = []
    token = None
    services = 1 if service else len({r["ServiceKey"] for r in history_records(store)})
    days = (until - timedelta(microseconds=1) if until else end).date().toordinal() - since.date().toordinal() + 1
    while len(pages) <= len(wanted) // top + 1:  # a cursor that does not move would loop: fail instead
        before, requests = reader.returned, reader.requests
        page = queries.changes(since=since, until=until, service=service, kind=kind, by=by, top=top, continuation=token)
        assert len(page.items) <= top and reader.returned - before <= services + services * (top + 1)
        assert reader.requests - requests <= (service is None) + services * days
        pages.append(page.items)
        token = page.continuation
        if token is None:
            break
        assert len(page.items) == top
    assert token is None
    got = [item for items in pages for item in items]
    assert [i[column] for i in got] == sorted((i[column] for i in got), reverse=True)
    assert sorted((i["Service"], i["Path"], i["EventId"], i["EventTime"], i["RecordedAt"], i["Change"]) for i in got) == sorted(
        (r["Service"], r["Path"], r["EventId"], r["EventTime"], r["RecordedAt"], r["Change"]) for r in wanted)
    assert all(not ({"PartitionKey", "RowKey", "HistoryPartition", "HistoryRow"} & set(i)) for i in got)


def test_a_token_serves_only_the_order_it_was_issued_for() -> None:
    store = delivered([(event("UserUpdated", "/users/alice", at=n), T0 + timedelta(seconds=n)) for n in range(3)])
    queries, _ = queries_over(store)
    token = queries.changes(since=T0, top=1).continuation
    assert token is not None and len(queries.changes(since=T0, top=1, continuation=token).items) == 1
    with pytest.raises(InvalidQuery, match="continuationToken was issued for by=event, not by=recorded"):
        queries.changes(since=T0, top=1, by="recorded", continuation=token)
    for bad in ("x", "e30=", "bm90IGpzb24=", "eyJhIjogMX0="):
        with pytest.raises(InvalidQuery, match="continuationToken is not one this API issued"):
            queries.changes(since=T0, continuation=bad)
    with pytest.raises(InvalidQuery, match=r"^by must be event or recorded, not 'eventually'$"):
        queries.changes(since=T0, by="eventually")
    with pytest.raises(InvalidQuery, match=r"^since is required$"):
        queries.changes(since=None)


def test_history_is_one_range_with_or_without_the_children() -> None:
    subjects = ["/apis/orders", "/apis/orders;rev=2", "/apis/orders/releases/r1", "/apis/orders2", "/apis/orders"]
    types = ["APICreated", "APIUpdated", "APIReleaseCreated", "APICreated", "APIUpdated"]
    payloads = [event(t, s, at=n, event_id=f"e{n}") for n, (t, s) in enumerate(zip(types, subjects, strict=True))]
    payloads += [event("APIUpdated", "/apis/orders", at=4, event_id="a-tie"), event("APICreated", "/apis/orders", at=9, service=FABRIKAM)]
    store = delivered([(p, T0 + timedelta(minutes=1)) for p in payloads])
    queries, reader = queries_over(store)
    assert [r["EventId"] for r in queries.history("contoso/apis/orders")] == ["e4", "a-tie", "e0"]  # EventId breaks the tie
    before = reader.requests
    assert [r["EventId"] for r in queries.history("contoso/apis/Orders", with_children=True)] == ["e4", "a-tie", "e2", "e1", "e0"]
    assert reader.requests - before == 2  # its history range and its audit records' range, both in its partition
    assert [r["EventId"] for r in queries.history("contoso/apis/orders", T0 + timedelta(seconds=1), with_children=True)] == \
        ["e4", "a-tie", "e2", "e1"]
    assert [r["EventId"] for r in queries.history("contoso/apis/orders;rev=2", with_children=True)] == ["e1"]
    assert queries.history("contoso/apis/orders", T0 + timedelta(hours=1)) == []  # the resource is there: no history since
    with pytest.raises(NotFound):
        queries.history("contoso/apis/nothing", with_children=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries, st.integers(0, 200))
def test_the_summary_equals_a_full_scan(drawn: list[Any], minutes_later: int) -> None:
    """Live and deleted per service and kind as the rows say; applied and stale as the history records recorded in each
    window say; duplicates as the redeliveries made in each."""
    sent = [*as_deliveries(drawn), (event("UserCreated", "/widgets/x", at=5), T0 + timedelta(seconds=700))]  # rejected
    store = delivered(sent)
    now = T0 + timedelta(seconds=1000, minutes=minutes_later)
    summary = queries_over(store, now)[0].summary()
    scan: Counter[tuple[str, str, bool]] = Counter((r["Service"], r["Kind"], bool(r["IsDeleted"])) for r in inventory_rows(store))
    assert summary["resources"] == [{"service": s, "kind": k, "live": scan[(s, k, False)], "deleted": scan[(s, k, True)]}
                                    for s, k in sorted({(s, k) for s, k, _ in scan})]
    assert_windows_count_the_events(summary, sent, store, now)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries, st.integers(0, 26 * 60))
def test_the_event_windows_over_a_day_of_events_equal_a_count_by_time(drawn: list[Any], minutes_later: int) -> None:
    """Events spread over 30 hours (a step of the drawing is 72 s), delivered in time order, and a summary up to 26
    hours after the last: "last day" adds the hour buckets of the current hour and the 23 before it, "last hour" the
    minute buckets of the last 60 minutes; each equals a count of the records and redeliveries by their time."""
    sent = sorted([*as_deliveries(drawn, unit=72), (event("UserCreated", "/widgets/x", at=5), T0 + timedelta(hours=20))],
                  key=lambda delivery: delivery[1])  # a clock only moves forward
    store = delivered(sent)
    now = sent[-1][1] + timedelta(minutes=minutes_later, seconds=17)
    assert_windows_count_the_events(queries_over(store, now)[0].summary(), sent, store, now)


def assert_windows_count_the_events(summary: dict[str, Any], sent: list[tuple[dict[str, Any], datetime]], store: InMemoryStore,
                                    now: datetime) -> None:
    """The summary's windows against a count by time: the records recorded in each, the redeliveries received in it, and
    the one rejected event (the delivery of a `/widgets/` subject) if it came in it."""
    records = history_records(store)
    rejected_at = next(at for payload, at in sent if payload["subject"].startswith("/widgets/"))
    for window, back, unit in (("lastHour", timedelta(minutes=59), timedelta(minutes=1)), ("lastDay", timedelta(hours=23), timedelta(hours=1))):
        start = summary["windows"][window]["from"]
        assert start <= now - back < start + unit
        end = start + back + unit  # the end of the current minute (hour): the buckets are whole minutes (hours)
        recorded = [r for r in records if start <= r["RecordedAt"] < end]
        seen: set[str] = set()
        duplicates = 0
        for payload, at in sent:
            key = (payload["id"], payload["subject"].lower(), payload["time"], payload["source"])  # one event: one record
            duplicates += str(key) in seen and start <= at < end
            seen.add(str(key))
        assert summary["events"][window] == {"applied": sum(not r["Stale"] for r in recorded), "stale": sum(r["Stale"] for r in recorded),
                                             "duplicate": duplicates, "rejected": int(start <= rejected_at < end)}


def summary_store(services: dict[str, ServiceRef]) -> InMemoryStore:
    store = InMemoryStore()
    put(store, Table.STATUS, [marker(), *(status_row(s.key, s.name) for s in services.values())])
    return store


def minute(back: int) -> str:
    return (NOW - timedelta(minutes=back)).strftime("%Y%m%d%H%M")


def hour(back: int) -> str:
    return (NOW - timedelta(hours=back)).strftime("%Y%m%d%H")


def test_summary_adds_the_count_rows_and_their_buckets_in_sliding_windows() -> None:
    store = summary_store(SERVICES)
    users = keys.count_partitions("contoso", (Kind.USER,))
    gateways = keys.count_partitions("fabrikam", (Kind.GATEWAY,))
    put(store, Table.INVENTORY, [
        count_row(users[0], "contoso", Kind.USER, {Kind.USER: 3}, {Kind.USER: 1},
                  events_column({minute(0): [1, 0, 0], minute(59): [2, 1, 0], minute(60): [100, 100, 100]},
                                {hour(0): [3, 1, 0], hour(23): [4, 0, 2], hour(24): [100, 100, 100]})),
        count_row(users[15], "contoso", Kind.USER, {Kind.USER: 2}, {Kind.USER: 0}, events_column({minute(-1): [100, 0, 0]})),
        count_row(gateways[3], "fabrikam", Kind.GATEWAY, {Kind.GATEWAY: 1, Kind.GATEWAY_INSTANCE: 2, Kind.GATEWAY_API: 0},
                  {Kind.GATEWAY: 0, Kind.GATEWAY_INSTANCE: 1, Kind.GATEWAY_API: 0}, events_column()),
        {**keys.with_keys(parse_path(SERVICES["contoso"], "users/alice"), {}), "Kind": "user", "IsDeleted": False},  # a row: never read
    ])
    put(store, Table.REJECTED, [rejected_count(NOW - timedelta(days=1), events_column(hours={hour(23): [5], hour(24): [50]})),
                                rejected_count(NOW, events_column({minute(3): [2]}, {hour(0): [2]}))])
    queries, reader = queries_over(store)
    summary = queries.summary()
    assert summary["resources"] == [
        {"service": "contoso", "kind": "user", "live": 5, "deleted": 1},
        {"service": "fabrikam", "kind": "gateway", "live": 1, "deleted": 0},
        {"service": "fabrikam", "kind": "gatewayInstance", "live": 2, "deleted": 1},
    ]
    assert summary["events"] == {"lastHour": {"applied": 3, "stale": 1, "duplicate": 0, "rejected": 2},
                                 "lastDay": {"applied": 7, "stale": 1, "duplicate": 2, "rejected": 7}}
    assert summary["windows"]["lastHour"]["from"] == (NOW - timedelta(minutes=59)).replace(second=0)
    assert summary["windows"]["lastDay"]["from"] == (NOW - timedelta(hours=23)).replace(minute=0, second=0)
    # the usage table's tracking rows come last (one partition: no service's gateway logs were read here, so no more)
    assert reader.requests == 1 + 1 + len(SERVICES) * len(TOP_LEVEL) * keys.BUCKETS + 2 + 1 + len(SERVICES)  # and a key range of snapshots per service


def test_summary_requests_do_not_grow_with_rows_or_events() -> None:
    requests = []
    for size in (1, 200):
        store = summary_store(SERVICES)
        for n in range(size):
            partition = keys.count_partitions("contoso", TOP_LEVEL)[n % 96]
            put(store, Table.INVENTORY, [count_row(partition, "contoso", Kind.USER, {Kind.USER: n}, {}, events_column({minute(0): [n, 0, 0]})),
                                         {**keys.with_keys(parse_path(SERVICES["contoso"], f"users/u{n}"), {}), "Kind": "user"}])
        queries, reader = queries_over(store)
        queries.summary()
        requests.append(reader.requests)
    assert requests[0] == requests[1]


@pytest.mark.parametrize("stored", [None, 1])
def test_summary_of_layout_1_tables_says_to_migrate(stored: int | None) -> None:
    store = InMemoryStore()
    if stored is not None:
        put(store, Table.STATUS, [marker(stored)])
    with pytest.raises(NotMigrated, match=r"^the inventory is in layout 1: run `apim-inventory migrate`$"):
        queries_over(store)[0].summary()


def test_the_rejected_listing_skips_the_counter_row() -> None:
    store = InMemoryStore()
    put(store, Table.REJECTED, [rejected_count(NOW, events_column({minute(0): [1]})),
                                {"PartitionKey": keys.day_partition(NOW), "RowKey": "ab12", "ReceivedAt": NOW, "Reason": "bad-subject"}])
    queries, _ = queries_over(store)
    assert [r["RowKey"] for r in queries.rejected()] == ["ab12"]
    assert [r["RowKey"] for r in queries.rejected(NOW - timedelta(hours=1))] == ["ab12"]


def test_an_event_recorded_the_day_after_it_happened_has_its_entries_in_two_days_and_is_listed_once() -> None:
    happened = datetime(2026, 11, 2, 23, 59, 50, tzinfo=T0.tzinfo)
    recorded = happened + timedelta(seconds=30)  # after midnight: the next UTC day
    store = delivered([(event("UserCreated", "/users/alice", at=happened, event_id="late"), recorded),
                       (event("UserCreated", "/users/bob", at=recorded, event_id="next-day"), recorded + timedelta(seconds=1))])
    entries = {(e["EventId"], e["RowKey"][0]): e["PartitionKey"] for e in feed_entries(store)}
    assert entries == {("late", "e"): "~feed|contoso|20261102", ("late", "r"): "~feed|contoso|20261103",
                       ("next-day", "e"): "~feed|contoso|20261103", ("next-day", "r"): "~feed|contoso|20261103"}
    queries, _ = queries_over(store, recorded + timedelta(hours=1))
    for by in ("event", "recorded"):
        everything = queries.changes(since=T0, by=by).items
        assert [i["EventId"] for i in everything] == ["next-day", "late"]
        first = queries.changes(since=T0, by=by, top=1)
        rest = queries.changes(since=T0, by=by, top=1, continuation=first.continuation)
        assert [i["EventId"] for i in first.items + rest.items] == [i["EventId"] for i in everything] and rest.continuation is None
    midnight = datetime(2026, 11, 3, tzinfo=T0.tzinfo)
    assert [i["EventId"] for i in queries.changes(since=T0, until=midnight).items] == ["late"]  # by event: on the 2nd
    assert queries.changes(since=T0, until=midnight, by="recorded").items == []  # recorded on the 3rd
    assert [i["EventId"] for i in queries.changes(since=midnight, by="event").items] == ["next-day"]


def test_a_window_over_several_days_pages_across_the_days_and_costs_a_request_a_day() -> None:
    """Events every five hours over four days, pages of three: each page starts in the day its token names, and the
    whole window is every event once, newest first. A window of empty days still reads each day once."""
    moments = [T0 + timedelta(hours=5 * n) for n in range(20)]
    store = delivered([(event("UserUpdated", "/users/alice", at=m, event_id=f"e{n:02d}"), m) for n, m in enumerate(moments)])
    now = moments[-1] + timedelta(minutes=1)
    queries, reader = queries_over(store, now)
    for by in ("event", "recorded"):
        got, token, starts = [], None, []
        for _ in range(10):
            page = queries.changes(since=T0, service="contoso", by=by, top=3, continuation=token)
            got += [i["EventId"] for i in page.items]
            token = page.continuation
            if token is None:
                break
            cursor = decode_cursor(token, by)
            assert cursor is not None
            starts.append(keys.time_of_feed_row(cursor.next).date())
        assert got == [f"e{n:02d}" for n in reversed(range(20))] and token is None
        assert starts == [m.date() for m in reversed(moments)][3::3]  # each token names the day of the next page's first
    days = (now.date() - T0.date()).days + 1
    before = reader.requests
    assert len(queries.changes(since=T0, service="contoso", top=100).items) == 20
    assert reader.requests - before == days  # the page is not full: every day of the window once
    before = reader.requests
    later = datetime(now.year, now.month, now.day, tzinfo=T0.tzinfo) + timedelta(days=1)  # a midnight after every event
    assert queries.changes(since=later, until=later + timedelta(days=7), service="contoso").items == []
    assert reader.requests - before == 7  # seven empty days: seven requests
    before = reader.requests
    assert len(queries.changes(since=T0, service="contoso", top=1).items) == 1
    assert reader.requests - before == 1  # the newest day holds the page and its next entry: older days are not read


def test_a_relative_since_is_resolved_once_and_its_token_keeps_the_window_for_later_pages() -> None:
    """`since=60m` on page 1; page 2 is asked for half an hour later, with `since=60m` given again: the token's window
    stands, so the pages are exactly the changes of the first page's hour, each once."""
    import json

    import azure.functions as func

    from devtools.worker import indexed_function
    from shared import bootstrap

    moments = [T0 + timedelta(minutes=n) for n in range(180)]
    store = delivered([(event("UserUpdated", "/users/alice", at=m, event_id=f"e{n:03d}"), m) for n, m in enumerate(moments)])
    clock = ManualClock(moments[-1] + timedelta(seconds=30))
    window = [f"e{n:03d}" for n in reversed(range(120, 180))]  # the hour before the first page (at 179m 30s)

    def changes(params: dict[str, str]) -> dict[str, Any]:
        request = func.HttpRequest("GET", "http://localhost/api/changes", params=params, route_params={}, body=b"")
        response = indexed_function("changes")(request)
        assert response.status_code == 200, response.get_body()
        body: dict[str, Any] = json.loads(response.get_body())
        return body

    bootstrap.install(bootstrap.in_memory(clock=clock.now, store=store))
    try:
        for by in ("event", "recorded"):
            clock.moment = moments[-1] + timedelta(seconds=30)
            page = changes({"since": "60m", "by": by, "top": "25"})
            got, token = [i["EventId"] for i in page["items"]], page["continuationToken"]
            while token is not None:
                clock.advance(minutes=15)
                page = changes({"since": "60m", "until": "1m", "by": by, "top": "25", "continuationToken": token})
                got, token = got + [i["EventId"] for i in page["items"]], page["continuationToken"]
            assert got == window
    finally:
        bootstrap.install(None)
