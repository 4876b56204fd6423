"""The read side of layout 2, in memory: the change feed (paged, merged across services, newest first, at a cost that
follows the page), one resource's history with its children, and the summary from the count rows alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.errors import InvalidQuery
from shared.domain.kinds import TOP_LEVEL, Kind
from shared.domain.resources import ResourceRef, ServiceRef, parse_path
from shared.queries.inventory import InventoryQueries, NotFound
from shared.queries.summary import NotMigrated
from shared.store import keys
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, StoredRow, Table, Token
from tests.layout2 import Change, count_row, events_column, marker, put, record, rejected_counter, status_row
from tests.support import T0

pytestmark = pytest.mark.unit
NOW = T0 + timedelta(days=1, minutes=30, seconds=15)
SERVICES = {"contoso": ServiceRef("s", "rg", "Contoso"), "fabrikam": ServiceRef("s", "rg", "fabrikam")}
PATHS = ("users/alice", "users/bob", "apis/orders", "apis/orders;rev=2", "apis/orders/releases/r1", "gateways/edge",
         "gateways/edge/apis/orders", "products/gold")


class CountingReader:
    """The store's read side, counting requests and the entities they return."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store, self.requests, self.returned = store, 0, 0

    def get(self, table: Table, partition_key: str, row_key: str) -> Entity | None:
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


def queries_over(store: InMemoryStore) -> tuple[InventoryQueries, CountingReader]:
    reader = CountingReader(store)
    return InventoryQueries(store, reader, lambda: NOW), reader


def ref(service: str, path: str) -> ResourceRef:
    return parse_path(SERVICES[service], path)


def seeded(changes: list[Change]) -> InMemoryStore:
    store = InMemoryStore()
    put(store, Table.STATUS, [status_row(s.key, s.name) for s in SERVICES.values()])
    record(store, changes)
    return store


change_lists = st.lists(st.builds(
    lambda service, path, at, late, n, stale: Change(ref(service, path), "Microsoft.ApiManagement.Updated", T0 + timedelta(seconds=at),
                                                     f"e{n}", T0 + timedelta(seconds=at + late), stale=stale),
    st.sampled_from(sorted(SERVICES)), st.sampled_from(PATHS), st.integers(0, 600), st.integers(0, 900), st.integers(0, 10**6),
    st.booleans()), max_size=30, unique_by=lambda c: (c.ref, c.event_time, c.event_id))


def in_window(c: Change, by: str, since: datetime, until: datetime | None) -> bool:
    moment = c.event_time if by == "event" else c.recorded_at
    return since <= moment and (until is None or moment < until)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_lists, st.sampled_from(["event", "recorded"]), st.integers(0, 700), st.one_of(st.none(), st.integers(0, 1600)),
       st.integers(1, 7), st.sampled_from([None, "contoso", "FABRIKAM"]), st.sampled_from([None, Kind.USER, Kind.API]))
def test_the_pages_of_the_feed_are_every_change_in_the_window_newest_first(
        changes: list[Change], by: str, since_s: int, until_s: int | None, top: int, service: str | None, kind: Kind | None) -> None:
    """Whatever the times (ties included), services and page size: page after page, each change in the window exactly once,
    newest first; each page reads at most top + 1 entries per service, whatever the feed holds."""
    queries, reader = queries_over(seeded(changes))
    since, until = T0 + timedelta(seconds=since_s), T0 + timedelta(seconds=until_s) if until_s is not None else None
    if until is not None and until <= since:
        with pytest.raises(InvalidQuery, match="until must be after since"):
            queries.changes(since=since, until=until, by=by)
        return
    wanted = [c for c in changes if in_window(c, by, since, until) and (service is None or c.ref.service.key == service.lower())
              and (kind is None or c.ref.kind is kind)]
    pages: list[list[dict[str, Any]]] = []
    token = None
    while len(pages) <= len(changes) // top + 1:  # a cursor that does not move would loop: fail instead
        before = reader.returned
        page = queries.changes(since=since, until=until, service=service, kind=kind, by=by, top=top, continuation=token)
        assert len(page.items) <= top and reader.returned - before <= (1 if service else 1 + len(SERVICES)) * (top + 1)
        pages.append(page.items)
        token = page.continuation
        if token is None:
            break
        assert len(page.items) == top
    assert token is None
    got = [item for items in pages for item in items]
    column = "EventTime" if by == "event" else "RecordedAt"
    assert [i[column] for i in got] == sorted((i[column] for i in got), reverse=True)
    assert sorted((i["Service"], i["Path"], i["EventId"], i[column]) for i in got) == sorted(
        (c.ref.service.name, c.ref.path, c.event_id, c.event_time if by == "event" else c.recorded_at) for c in wanted)
    assert all(not ({"PartitionKey", "RowKey", "HistoryPartition", "HistoryRow"} & set(i)) for i in got)


def test_a_token_serves_only_the_order_it_was_issued_for() -> None:
    changes = [Change(ref("contoso", "users/alice"), "t", T0 + timedelta(seconds=n), f"e{n}", T0 + timedelta(seconds=n)) for n in range(3)]
    queries, _ = queries_over(seeded(changes))
    token = queries.changes(since=T0, top=1).continuation
    assert token is not None
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
    api, revision, release = ref("contoso", "apis/orders"), ref("contoso", "apis/orders;rev=2"), ref("contoso", "apis/orders/releases/r1")
    other = ref("contoso", "apis/orders2")
    changes = [Change(r, "t", T0 + timedelta(seconds=n), f"e{n}", T0 + timedelta(seconds=n))
               for n, r in enumerate([api, revision, release, other, api, ref("fabrikam", "apis/orders")])]
    changes.append(Change(api, "t", T0 + timedelta(seconds=4), "a-tie", T0))  # the same time as e4: EventId breaks the tie
    store = seeded(changes)
    put(store, Table.INVENTORY, [{**keys.with_keys(r, {}), "Service": "Contoso", "Path": r.path} for r in (api, revision, other)])
    queries, reader = queries_over(store)
    assert [r["EventId"] for r in queries.history("contoso/apis/orders")] == ["e4", "a-tie", "e0"]
    before = reader.requests
    assert [r["EventId"] for r in queries.history("contoso/apis/Orders", with_children=True)] == ["e4", "a-tie", "e2", "e1", "e0"]
    assert reader.requests - before == 1
    assert [r["EventId"] for r in queries.history("contoso/apis/orders", T0 + timedelta(seconds=1), with_children=True)] == \
        ["e4", "a-tie", "e2", "e1"]
    assert [r["EventId"] for r in queries.history("contoso/apis/orders;rev=2", with_children=True)] == ["e1"]
    assert queries.history("contoso/apis/orders", T0 + timedelta(hours=1)) == []  # the resource is there: no history since
    with pytest.raises(NotFound):
        queries.history("contoso/apis/nothing", with_children=True)


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
        count_row(users[0], "Contoso", Kind.USER, {Kind.USER: 3}, {Kind.USER: 1},
                  events_column({minute(0): [1, 0, 0], minute(59): [2, 1, 0], minute(60): [100, 100, 100]},
                                {hour(0): [3, 1, 0], hour(23): [4, 0, 2], hour(24): [100, 100, 100]})),
        count_row(users[15], "Contoso", Kind.USER, {Kind.USER: 2}, {Kind.USER: 0}, events_column({minute(-1): [100, 0, 0]})),
        count_row(gateways[3], "fabrikam", Kind.GATEWAY, {Kind.GATEWAY: 1, Kind.GATEWAY_INSTANCE: 2, Kind.GATEWAY_API: 0},
                  {Kind.GATEWAY: 0, Kind.GATEWAY_INSTANCE: 1, Kind.GATEWAY_API: 0}, "not json"),
        {**keys.with_keys(ref("contoso", "users/alice"), {}), "Kind": "user", "IsDeleted": False},  # a row: never read
    ])
    put(store, Table.REJECTED, [rejected_counter(NOW - timedelta(days=1), events_column(hours={hour(23): [5], hour(24): [50]})),
                                rejected_counter(NOW, events_column({minute(3): [2]}, {hour(0): [2]}))])
    queries, reader = queries_over(store)
    summary = queries.summary()
    assert summary["resources"] == [
        {"service": "Contoso", "kind": "user", "live": 5, "deleted": 1},
        {"service": "fabrikam", "kind": "gateway", "live": 1, "deleted": 0},
        {"service": "fabrikam", "kind": "gatewayInstance", "live": 2, "deleted": 1},
    ]
    assert summary["events"] == {"lastHour": {"applied": 3, "stale": 1, "duplicate": 0, "rejected": 2},
                                 "lastDay": {"applied": 7, "stale": 1, "duplicate": 2, "rejected": 7}}
    assert summary["windows"]["lastHour"]["from"] == (NOW - timedelta(minutes=59)).replace(second=0)
    assert summary["windows"]["lastDay"]["from"] == (NOW - timedelta(hours=23)).replace(minute=0, second=0)
    assert reader.requests == 1 + 1 + len(SERVICES) * len(TOP_LEVEL) * keys.BUCKETS + 2


def test_summary_requests_do_not_grow_with_rows_or_events() -> None:
    requests = []
    for size in (1, 200):
        store = summary_store(SERVICES)
        for n in range(size):
            partition = keys.count_partitions("contoso", TOP_LEVEL)[n % 96]
            put(store, Table.INVENTORY, [count_row(partition, "Contoso", Kind.USER, {Kind.USER: n}, {}, events_column({minute(0): [n, 0, 0]})),
                                         {**keys.with_keys(ref("contoso", f"users/u{n}"), {}), "Kind": "user"}])
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
    put(store, Table.REJECTED, [rejected_counter(NOW, events_column({minute(0): [1]})),
                                {"PartitionKey": keys.day_partition(NOW), "RowKey": "ab12", "ReceivedAt": NOW, "Reason": "bad-subject"}])
    queries, _ = queries_over(store)
    assert [r["RowKey"] for r in queries.rejected()] == ["ab12"]
    assert [r["RowKey"] for r in queries.rejected(NOW - timedelta(hours=1))] == ["ab12"]
