"""`expiring` equals a brute-force scan of the rows, for random inventories (subscriptions with and without an
expiry, deleted or not, gateway tokens), whether the count rows know their expiring rows or not; and when they do,
it reads no row it does not list."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.worker import decode_event
from shared import bootstrap
from shared.domain.expiry import expiry_of
from shared.domain.flags import FlagPolicy
from shared.domain.resources import row_ref
from shared.integrations.alerts import LoggingAlertPublisher
from shared.queries.expiring import expiring
from shared.store import expiry_lists
from shared.store.keys import MAX_STRING_CHARS
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, Query, StoredRow, Table, Token
from shared.store.writer import Compute, RowWriter
from tests.support import SERVICE_ID, count_rows, event, inventory_rows, iso

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
OTHER = SERVICE_ID.replace("/contoso", "/fabrikam")


class CountingReads:
    """The twin, counting its point reads and the inventory-table queries."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.gets = 0
        self.inventory_queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, table: Table, pk: str, rk: str) -> StoredRow | None:
        self.gets += 1
        return self._store.get(table, pk, rk)

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        self.inventory_queries += query.table is Table.INVENTORY
        return self._store.page(query, top, continuation)

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        self.inventory_queries += query.table is Table.INVENTORY
        return self._store.scan(query, page_size, select)


# One resource: (service, subscription or token, name, expiry in hours from NOW or None, deleted afterwards)
RESOURCE = st.tuples(st.sampled_from((SERVICE_ID, OTHER)), st.sampled_from(("subscription", "token")), st.integers(0, 12),
                     st.one_of(st.none(), st.integers(-24 * 60, 24 * 60)), st.booleans())


def expiring_at(expiry: datetime | None) -> Compute:
    def compute(current: StoredRow | None, _parent: StoredRow | None) -> Entity:
        assert current is not None
        row = {k: v for k, v in current.entity.items() if k != "ExpirationDate"}
        return {**row, "ExpirationDate": expiry} if expiry is not None else row
    return compute


def build(resources: list[tuple[str, str, int, int | None, bool]]) -> InMemoryStore:
    store = InMemoryStore()
    store.create_tables()
    clock = [NOW - timedelta(days=1)]
    services = bootstrap.in_memory(clock=lambda: clock[0], store=store)
    writer = RowWriter(store, AlertOutbox(store, LoggingAlertPublisher()), FlagPolicy(), lambda: clock[0])
    for service, what, n, hours, deleted in resources:
        clock[0] += timedelta(seconds=1)
        expiry = NOW + timedelta(hours=hours) if hours is not None else None
        if what == "token":
            data = {"gatewayInfo": {"gatewayId": f"{service}/gateways/g1", "instanceId": f"pod-{n}"},
                    "tokenInfo": {"expiresAtUtc": iso(expiry or NOW)}}
            services.processor.handle(decode_event(event("GatewayTokenNearExpiry", f"/gateways/g1/pod-{n}", at=clock[0], service=service,
                                                         data=data)))
            subject = f"/gateways/g1/pod-{n}"
            gone = "GatewayDeleted"
        else:
            subject = f"/subscriptions/s{n}"
            services.processor.handle(decode_event(event("SubscriptionCreated", subject, at=clock[0], service=service)))
            row = next(r for r in inventory_rows(store) if r["ResourceId"] == service + subject)
            writer.apply(row_ref(row), expiring_at(expiry))  # as a read of ARM gives it
            gone = "SubscriptionDeleted"
        if deleted:
            clock[0] += timedelta(seconds=1)
            services.processor.handle(decode_event(event(gone, "/gateways/g1" if what == "token" else subject, at=clock[0], service=service)))
    services.status.flush(clock[0])
    return store


def brute_force(store: InMemoryStore, until: datetime) -> list[tuple[str, str]]:
    """Every live row with an expiry by `until`: the expired (by the time, or by their token's status) first, then the
    soonest."""
    found = sorted((not (moment <= NOW or row.get("TokenStatus") == "expired"), moment, row["Service"].lower(), row["Path"].lower(),
                    row["PartitionKey"], row["RowKey"])
                   for row in inventory_rows(store) if (moment := expiry_of(row)) is not None and moment <= until)
    return [(pk, rk) for *_, pk, rk in found]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RESOURCE, max_size=25), st.integers(0, 40 * 24), st.booleans())
def test_expiring_equals_a_scan_of_the_rows(resources: list[tuple[str, str, int, int | None, bool]], hours: int, forget: bool) -> None:
    store = build(resources)
    if forget:  # count rows written before the list: each partition is read as rows instead
        for count in count_rows(store):
            stored = store.get(Table.INVENTORY, count["PartitionKey"], count["RowKey"])
            assert stored is not None
            store.put(Table.INVENTORY, {k: v for k, v in count.items() if k != expiry_lists.EXPIRING}, stored.etag)
    reads = CountingReads(store)
    until = NOW + timedelta(hours=hours)
    found = expiring(reads, NOW, timedelta(hours=hours))  # type: ignore[arg-type]
    assert [(item["PartitionKey"], item["RowKey"]) for item in found["items"]] == brute_force(store, until)
    assert all(item["ExpiresAt"] <= until for item in found["items"]) and found["until"] == until
    if not forget:  # the layout marker, 32 count rows per service, then only the rows listed
        services = len({service for service, *_ in resources})
        assert reads.inventory_queries == 0 and reads.gets == 1 + 32 * services + found["count"]


def test_a_list_past_the_limit_is_marked_and_read_as_rows_instead() -> None:
    row: Entity = {"Family": "subscription"}
    expiry_lists.moved(row, {f"subscriptions|s{n:06d}": 1_800_000_000 for n in range(MAX_STRING_CHARS // 20)}, new=True)
    assert row.get(expiry_lists.EXPIRING_OVERFLOW) is True and expiry_lists.EXPIRING not in row
    assert expiry_lists.listed(row) is None
    expiry_lists.recounted(row, [{"RowKey": "subscriptions|s1", "Kind": "subscription", "IsDeleted": False,
                                  "ExpirationDate": NOW + timedelta(seconds=0.5)}])
    assert expiry_lists.listed(row) == {"subscriptions|s1": math.floor(NOW.timestamp())}
