"""Access benchmark: the Table requests and entities of `access --api X`, `access --user U` and `list subscription
--owner U` at two inventory sizes, on the in-memory twin behind the scale benchmark's request counter.

The inventory is written through the RowWriter (so the access index is written as in production): BENCH_SCALE × 2,000
and × 20,000 subscriptions over 50 APIs and 20 products of 5 APIs each, half as many users, with one API and one user
whose answers stay the same size at both sizes (25 subscriptions through a product, 5 scoped to the API, the built-in
all-access one; 3 subscriptions of the user, one of them since moved to another scope, so its entry is stale). The
scan a filter on `Scope` or `OwnerId` would need is printed beside them, for comparison."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.scale_cost import CountingReads, QuietPublisher
from shared import bootstrap
from shared.config import Settings
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.access_index import AccessIndex, entries
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, Query, Table
from shared.store.writer import RowWriter

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SIZES = (round(2_000 * SCALE), round(20_000 * SCALE))
SERVICE_ID = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
SERVICE = parse_service_id(SERVICE_ID)
T0 = datetime(2026, 1, 5, tzinfo=UTC)
REPEATS = 3


class CountingIndex(AccessIndex):
    """The access index, counting the entries and the transactions (one per partition and 100) it writes."""

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        self.entries = self.transactions = 0

    def __call__(self, writes: Any) -> None:
        found = [e for before, after in writes for e in entries(before, after)]
        partitions: dict[str, int] = {}
        for entry in found:
            partitions[entry["PartitionKey"]] = partitions.get(entry["PartitionKey"], 0) + 1
        self.entries += len(found)
        self.transactions += sum(-(-n // 100) for n in partitions.values())
        super().__call__(writes)


def as_a_sync_writes(store: InMemoryStore, flush: int = 1600) -> int:
    """The index transactions a first sync would write for these subscriptions: one call per flush of 1,600 rows."""
    rows = [row.entity for page in store.scan(Query(Table.INVENTORY, conditions=())) for row in page if row.entity.get("Kind") == Kind.SUBSCRIPTION]
    transactions = 0
    for at in range(0, len(rows), flush):
        partitions: dict[str, int] = {}
        for entry in (e for row in rows[at:at + flush] for e in entries(None, row)):
            partitions[entry["PartitionKey"]] = partitions.get(entry["PartitionKey"], 0) + 1
        transactions += sum(-(-n // 100) for n in partitions.values())
    return transactions


def fill(subscriptions: int) -> tuple[InMemoryStore, CountingIndex]:
    store = InMemoryStore()
    index = CountingIndex(store)
    writer = RowWriter(store, AlertOutbox(store, LoggingAlertPublisher()), Settings().flag_policy, lambda: T0, index=index)
    n = 0

    def write(path: str, values: dict[str, Any], op: Op = Op.CREATED) -> None:
        nonlocal n
        n += 1
        ref = parse_path(SERVICE, path)
        stamp = Stamp(T0 + timedelta(milliseconds=n), f"b{n}")
        writer.apply(ref, [Change(ref, op, stamp, "bench"), Change(ref, Op.DETAILS, stamp, "bench", values)])

    def sub(name: str, owner: str, scope: str, op: Op = Op.CREATED) -> None:
        write(f"subscriptions/{name}", {"Scope": f"{SERVICE_ID}/{scope}", "OwnerId": f"{SERVICE_ID}/users/{owner}",
                                        "SubscriptionState": "active"}, op)

    for a in range(50):
        write(f"apis/api-{a:03d}", {"DisplayName": f"API {a}", "SubscriptionRequired": True})
    write("apis/target", {"SubscriptionRequired": True})
    for p in range(20):
        write(f"products/p-{p:02d}", {"SubscriptionRequired": True})
        for a in range(5):
            write(f"products/p-{p:02d}/apis/api-{(p * 5 + a) % 50:03d}", {}, Op.OBSERVED)
    write("products/p-target", {"SubscriptionRequired": True})
    write("products/p-target/apis/target", {}, Op.OBSERVED)
    for u in range(subscriptions // 2):
        write(f"users/user-{u:06d}", {"Email": f"u{u}@contoso.example"})
    write("users/target", {"Email": "target@contoso.example"})
    sub("all-access", "1", "apis")
    for i in range(25):
        sub(f"t-product-{i}", f"user-{i:06d}", "products/p-target")
    for i in range(5):
        sub(f"t-api-{i}", f"user-{i:06d}", "apis/target")
    for s in range(subscriptions - 31):
        scope = f"products/p-{s % 20:02d}" if s % 5 else f"apis/api-{s % 50:03d}"
        sub(f"sub-{s:06d}", f"user-{s % (subscriptions // 2):06d}", scope)
    for i in range(3):
        sub(f"t-owned-{i}", "target", "products/p-00")
    sub("t-owned-2", "target", "products/p-01", Op.UPDATED)  # moved: its entry under products/p-00 is stale
    return store, index


def measure(store: InMemoryStore) -> dict[str, tuple[float, int, int]]:
    counting = CountingReads(store)
    queries = bootstrap.wire(counting, Settings(), QuietPublisher(), lambda: T0).queries  # type: ignore[arg-type]
    runs: dict[str, Callable[[], Any]] = {
        "access --api (31 callers)": lambda: queries.access_to_api("apim-bench/apis/target"),
        "access --user (3 subs)": lambda: queries.access_of_user("apim-bench/users/target"),
        "list subscription --owner": lambda: queries.list_kind(Kind.SUBSCRIPTION, owner="apim-bench/users/target", top=None),
        "(a scan of subscriptions)": lambda: queries.list_kind(Kind.SUBSCRIPTION, top=None),
    }
    found: dict[str, tuple[float, int, int]] = {}
    for name, run in runs.items():
        best, requests, entities = float("inf"), 0, 0
        for _ in range(REPEATS):
            before = (counting.requests, counting.entities)
            started = time.perf_counter()
            run()
            best = min(best, (time.perf_counter() - started) * 1000)
            requests, entities = counting.requests - before[0], counting.entities - before[1]
        found[name] = (best, requests, entities)
    return found


def check(store: InMemoryStore) -> None:
    """The figures are of right answers: the target API's callers and the user's subscriptions, as built."""
    queries = bootstrap.wire(store, Settings(), QuietPublisher(), lambda: T0).queries
    callers = {g["Subscription"] for g in queries.access_to_api("apim-bench/apis/target")["callers"]}
    assert len(callers) == 31 and "all-access" in callers, sorted(callers)
    owned: list[Entity] = queries.list_kind(Kind.SUBSCRIPTION, owner="apim-bench/users/target", top=None).rows
    assert sorted(r["Name"] for r in owned) == ["t-owned-0", "t-owned-1", "t-owned-2"]


def main() -> None:
    logging.getLogger("apim_inventory").setLevel(logging.WARNING)
    print(f"apim-inventory access benchmark   BENCH_SCALE={SCALE:g}   best of {REPEATS}   (in-memory twin, Table requests counted)")
    figures = {}
    for size in SIZES:
        started = time.perf_counter()
        store, index = fill(size)
        rows = sum(len(p) for p in store.scan(Query(Table.INVENTORY)))
        print(f"  {size:,} subscriptions: filled in {time.perf_counter() - started:.0f} s, {rows:,} inventory entities; index: "
              f"{index.entries:,} entries in {index.transactions:,} transactions ({index.transactions / size * 1000:.0f} per 1,000 "
              f"subscriptions written one at a time; {as_a_sync_writes(store) / size * 1000:.0f} per 1,000 as a first sync writes "
              "them, 1,600 rows a flush, beside 21 transactions of rows)")
        check(store)
        figures[size] = measure(store)
    small, large = figures[SIZES[0]], figures[SIZES[1]]
    print(f"  {'':<28}{f'{SIZES[0]:,} subscriptions':>26}{f'{SIZES[1]:,} subscriptions':>28}   ratio large/small")
    print(f"  {'':<28}{'ms  requests  entities':>26}{'ms  requests  entities':>28}   requests / entities")
    for name in small:
        (ms0, r0, e0), (ms1, r1, e1) = small[name], large[name]
        print(f"  {name:<28}{ms0:>8.1f}{r0:>10}{e0:>10}{ms1:>12.1f}{r1:>10}{e1:>10}   {r1 / r0:.2f} / {e1 / max(e0, 1):.2f}")


if __name__ == "__main__":
    main()
