"""Scale benchmark: does each question cost what its answer holds, not what the tables hold?

For a small (1,000 resources) and a large (100,000 x BENCH_SCALE) inventory, each with about ten events per
resource (bench.scale_data: the mix and the events), it times `summary`, one resource's history, `changes` over a
window holding 1,000 changes, the first page of a kind, `flags` and `expiring --within 30d` (every tenth subscription
has an ExpirationDate, as a read of ARM gives it; the same rows expire within the window at every size), and counts the
Table requests and the entities they returned; then prints the ratio large / small of each. `expiring` is measured
twice: as built (the count rows' `Expiring` lists, then the rows listed), and as a scan of the subscription and
gateway families would answer it, returning what a server-side filter on the expiry column would have to read.

Two stores:
- the in-memory twin, filled through the app's own event path (every event decoded by the library's converter and
  processed as the function does). Its reads go through a sorted key index, so a key-range read costs what it
  returns, as on Azure: the figures show what the key design costs at 100,000 resources and a million records.
- Azurite, holding a copy of the twin's tables (the same entities, written by Table transactions) at 1,000 and
  BENCH_AZURITE_ROWS (default 5,000) resources. Azurite answers every query by scanning the whole table
  (LokiTableMetadataStore.queryTableEntities), and its inserts slow down as a table grows, so its large size is
  kept smaller and its times grow with the table whatever the keys: its request and entity counts are the figures
  that carry over to Azure.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableServiceClient

from bench.bench import CountingTransport
from bench.scale_data import NOW, SERVICE, events, mix, subscription_expiry
from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.domain.expiry import EXPIRY_COLUMNS, expiry_of
from shared.domain.flags import Alert, FlagPolicy
from shared.domain.kinds import Kind
from shared.domain.resources import parse_path, parse_service_id
from shared.domain.times import parse_time
from shared.queries.expiring import expiring
from shared.store.expiry_lists import EXPIRING
from shared.store.keys import COUNT_ROW, bucket, of_kind
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, Query, StoredRow, Table, TableReader, Token
from shared.store.writer import Compute, RowWriter

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SMALL, LARGE = 1_000, round(100_000 * SCALE)
AZURITE_LARGE = int(os.environ.get("BENCH_AZURITE_ROWS", "5000"))
WINDOW_CHANGES = 1_000
WITHIN = timedelta(days=30)
REPEATS = 3
WORKERS = int(os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 2)))
SERVICE_NAME = SERVICE.rsplit("/", 1)[1]


class QuietPublisher:
    """Alerts are not what this benchmark measures."""

    def publish(self, alerts: list[Alert]) -> None:
        del alerts


class CountingReads:
    """The twin behind a counter of what its reads would cost on Table Storage: a request per page of at most
    1,000 entities (a point read: one), and the entities returned."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.requests = 0
        self.entities = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _count(self, found: int) -> None:
        self.requests += max(1, math.ceil(found / 1000))
        self.entities += found

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        rows, token = self._store.page(query, top, continuation)
        self._count(len(rows))
        return rows, token

    def scan(self, query: Query, page_size: int = 1000, select: tuple[str, ...] | None = None) -> Iterator[list[StoredRow]]:
        found = 0
        for rows in self._store.scan(query, page_size, select):
            found += len(rows)
            self.requests += 1
            self.entities += len(rows)
            yield rows
        if not found:
            self.requests += 1

    def get(self, table: Table, pk: str, rk: str) -> StoredRow | None:
        row = self._store.get(table, pk, rk)  # type: ignore[attr-defined]
        self.requests += 1
        self.entities += row is not None
        return row  # type: ignore[no-any-return]

    def load(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self._store.load(*args, **kwargs)


class EntityCountingTransport(CountingTransport):
    """Counts requests, and the entities each query's response returned."""

    def __init__(self) -> None:
        super().__init__()
        self.entities = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        if request.method == "GET" and response.status_code == 200:
            try:
                body = json.loads(response.text())
            except ValueError:
                body = {}
            self.entities += len(body["value"]) if isinstance(body.get("value"), list) else 1
        return response


def _fill_share(rows: int, share: int, shares: int) -> tuple[dict[Table, list[Entity]], list[str]]:
    """The tables after the events of the resources whose partition bucket falls to `share`, and their times. The
    buckets split the inventory's partitions, so each count row lives in one share and the shares' tables add up."""
    store = InMemoryStore()
    store.create_tables()
    services = bootstrap.in_memory(Settings(), lambda: NOW, store=store, publisher=QuietPublisher())
    times: list[str] = []
    for payload in events(mix(rows)):
        event = json.loads(payload)
        if bucket(event["subject"].split("/")[2].split(";")[0].lower()) % shares == share:
            services.processor.handle(decode_event(payload))
            times.append(event["time"])
    _add_expiries(store, rows, share, shares)
    return {table: [row.entity for page in store.scan(Query(table)) for row in page] for table in Table}, times


def _add_expiries(store: InMemoryStore, rows: int, share: int, shares: int) -> None:
    """The ExpirationDate of the share's live subscriptions that have one, written as enrichment writes details."""
    writer = RowWriter(store, AlertOutbox(store, QuietPublisher()), FlagPolicy(), lambda: NOW)
    service = parse_service_id(SERVICE)
    for n in range(round(rows * 0.30)):
        name = f"s-{n:07d}"
        expiry = subscription_expiry(n)
        if expiry is None or bucket(name) % shares != share:
            continue
        ref = parse_path(service, f"/subscriptions/{name}")
        row, _ = store.load(ref)
        if row is not None and not row.entity.get("IsDeleted"):
            writer.apply(ref, _with_expiry(expiry), loaded=(row, None))


def _with_expiry(expiry: datetime) -> Compute:
    def compute(current: StoredRow | None, _parent: StoredRow | None) -> Entity | None:
        return {**current.entity, "ExpirationDate": expiry} if current else None
    return compute


def expiring_by_scan(reader: TableReader, within: timedelta) -> list[Entity]:
    """The same answer from the rows of every subscription and gateway-family row of the kinds that expire: what a
    query filtered on the expiry column would have the server read."""
    until = NOW + within
    rows = [row.entity for kind in EXPIRY_COLUMNS for page in reader.scan(of_kind(kind)) for row in page]
    return sorted((r for r in rows if (moment := expiry_of(r)) is not None and moment <= until), key=lambda r: expiry_of(r) or NOW)


def fill(rows: int) -> tuple[InMemoryStore, list[str], str]:
    """The twin after every event of the mix, processed in WORKERS processes, each for its share of the partitions;
    the events' times (newest first) and one user's id."""
    store = InMemoryStore()
    store.create_tables()
    times: list[str] = []
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        for tables, share_times in pool.starmap(_fill_share, [(rows, n, WORKERS) for n in range(WORKERS)]):
            for table, entities in tables.items():
                store.upsert(table, entities)
            times += share_times
    times.sort(reverse=True)
    return store, times, f"{SERVICE_NAME}/users/u-0000001"


def questions(queries: Any, reader: TableReader, times: list[str], user: str) -> dict[str, Callable[[], Any]]:
    since = parse_time(times[WINDOW_CHANGES - 1], "time")  # the window [since, now] holds WINDOW_CHANGES events
    return {
        "summary": queries.summary,
        "one resource's history": lambda: queries.history(user),
        f"changes, {WINDOW_CHANGES:,} in window": lambda: queries.changes(since=since, until=None, top=WINDOW_CHANGES),
        "first page of user": lambda: queries.list_kind(Kind.USER, top=100),
        "flags": queries.flags,
        "expiring, 30 days": lambda: expiring(reader, NOW, WITHIN),
        "expiring by a scan": lambda: expiring_by_scan(reader, WITHIN),
    }


def _one_run(run: Callable[[], Any], counter: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
    """The seconds, requests and entities of one run."""
    before = counter()
    started = time.perf_counter()
    run()
    once = time.perf_counter() - started
    after = counter()
    return once, after[0] - before[0], after[1] - before[1]


def _round_ms(run: Callable[[], Any], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        run()
    return (time.perf_counter() - started) * 1000 / runs


def timed(runs: list[tuple[Callable[[], Any], Callable[[], tuple[int, int]]]]) -> list[tuple[float, int, int]]:
    """For each (run, counter): the requests and entities of one run, and its time in ms, the best of REPEATS
    rounds of enough runs to last about 50 ms (as timeit's autorange), so a question of tens of microseconds is not
    timed by the clock's noise. The sizes' rounds alternate, so a change in the machine's load meets them alike."""
    firsts = [_one_run(run, counter) for run, counter in runs]
    counts = [max(1, min(1000, int(0.05 / max(once, 1e-6)))) for once, _, _ in firsts]
    best = [math.inf] * len(runs)
    for _ in range(REPEATS):
        for at, ((run, _), count) in enumerate(zip(runs, counts, strict=True)):
            best[at] = min(best[at], _round_ms(run, count))
    return [(ms, requests, entities) for ms, (_, requests, entities) in zip(best, firsts, strict=True)]


def measured(readers: list[tuple[Any, Callable[[], tuple[int, int]]]], inputs: list[tuple[list[str], str]]
             ) -> list[dict[str, tuple[float, int, int]]]:
    """Every question on each (reader, counter) of `readers`, the sizes side by side."""
    asked = [questions(bootstrap.wire(reader, Settings(), QuietPublisher(), lambda: NOW).queries, reader, times, user)
             for (reader, _), (times, user) in zip(readers, inputs, strict=True)]
    figures: list[dict[str, tuple[float, int, int]]] = [{} for _ in readers]
    for name in asked[0]:
        for at, figure in enumerate(timed([(ask[name], counter) for ask, (_, counter) in zip(asked, readers, strict=True)])):
            figures[at][name] = figure
    return figures


def on_twins(stores: list[InMemoryStore], inputs: list[tuple[list[str], str]]) -> list[dict[str, tuple[float, int, int]]]:
    counting = [CountingReads(store) for store in stores]
    return measured([(c, lambda c=c: (c.requests, c.entities)) for c in counting], inputs)  # type: ignore[misc]


def copy_to_azurite(store: InMemoryStore, client: TableServiceClient, settings: Settings) -> int:
    """Every entity of the twin's tables, in transactions of up to 100 upserts of one partition."""
    written = 0
    names = {Table.INVENTORY: settings.inventory_table, Table.HISTORY: settings.history_table,
             Table.REJECTED: settings.rejected_table, Table.OUTBOX: settings.outbox_table, Table.STATUS: settings.status_table}
    for table, name in names.items():
        target = client.get_table_client(name)
        batch: list[Any] = []
        for page in store.scan(Query(table)):
            for row in page:
                if batch and (len(batch) == 100 or batch[0][1]["PartitionKey"] != row.entity["PartitionKey"]):
                    target.submit_transaction(batch)
                    written += len(batch)
                    batch = []
                batch.append(("upsert", row.entity))
        if batch:
            target.submit_transaction(batch)
            written += len(batch)
    return written


def on_azurite(stores: list[InMemoryStore], inputs: list[tuple[list[str], str]]) -> tuple[list[dict[str, tuple[float, int, int]]], list[float], list[int]]:
    """Each twin copied into its own tables of one Azurite, then every question on both, side by side."""
    readers, loads, counts = [], [], []
    with Azurite() as azurite:
        for n, store in enumerate(stores):
            settings = Settings(inventory_table=f"ScaleInventory{n}", history_table=f"ScaleHistory{n}", rejected_table=f"ScaleRejected{n}",
                                outbox_table=f"ScaleAlerts{n}", status_table=f"ScaleStatus{n}", usage_table=f"ScaleUsage{n}")
            transport = EntityCountingTransport()
            client = TableServiceClient.from_connection_string(azurite.connection_string, transport=transport)
            repo = bootstrap.table_store(client, settings)
            repo.create_tables()
            started = time.perf_counter()
            counts.append(copy_to_azurite(store, client, settings))
            loads.append(time.perf_counter() - started)
            readers.append((repo, lambda t=transport: (t.sent, t.entities)))
        return measured(readers, inputs), loads, counts  # type: ignore[arg-type]


def table(title: str, small: dict[str, tuple[float, int, int]], large: dict[str, tuple[float, int, int]],
          sizes: tuple[int, int]) -> None:
    print(f"\n{title}")
    print(f"  {'':<28}{f'{sizes[0]:,} resources':>24}{f'{sizes[1]:,} resources':>26}   ratio large/small")
    print(f"  {'':<28}{'ms  requests  entities':>24}{'ms  requests  entities':>26}   ms / requests / entities")
    for name in small:
        (ms0, r0, e0), (ms1, r1, e1) = small[name], large[name]
        ratios = " / ".join(f"{b / a:.2f}" if a else "-" for a, b in ((ms0, ms1), (r0, r1), (e0, e1)))
        print(f"  {name:<28}{ms0:>8.1f}{r0:>10}{e0:>10}{ms1:>10.1f}{r1:>10}{e1:>10}   {ratios}")


def main() -> None:
    logging.getLogger("apim_inventory").setLevel(logging.WARNING)
    print(f"apim-inventory scale benchmark   BENCH_SCALE={SCALE:g}   best of {REPEATS} rounds of about 50 ms each, "
          "the sizes' rounds alternating")
    filled: dict[int, tuple[InMemoryStore, list[str], str]] = {}
    sizes = {SMALL, LARGE} | ({AZURITE_LARGE} if AZURITE_LARGE > SMALL else set())  # BENCH_AZURITE_ROWS=0: twin only
    for rows in sorted(sizes):
        started = time.perf_counter()
        store, times, _ = filled[rows] = fill(rows)
        records = sum(len(p) for p in store.scan(Query(Table.INVENTORY)))
        lists = [len(r.entity.get(EXPIRING) or "") for p in store.scan(Query(Table.INVENTORY, low_rk=COUNT_ROW, high_rk=COUNT_ROW + "\0"))
                 for r in p if r.entity.get("Family") == Kind.SUBSCRIPTION]
        print(f"  {rows:,} resources: {len(times):,} events through the event path ({WORKERS} processes) in "
              f"{time.perf_counter() - started:.0f} s; "
              f"{records:,} entities in the inventory table; the subscription count rows' Expiring lists hold "
              f"{min(lists, default=0):,} to {max(lists, default=0):,} characters (the limit: 32,768)")
    twin = on_twins([filled[SMALL][0], filled[LARGE][0]], [filled[SMALL][1:], filled[LARGE][1:]])
    table("in-memory twin (reads through a sorted key index)", twin[0], twin[1], (SMALL, LARGE))
    if AZURITE_LARGE > SMALL:
        pair = [filled[SMALL], filled[AZURITE_LARGE]]
        azurite, loads, written = on_azurite([p[0] for p in pair], [p[1:] for p in pair])
        for n, s in enumerate(loads):
            print(f"  copied to Azurite: {written[n]:,} entities in {s:.0f} s ({written[n] / s:,.0f}/s)")
        table("Azurite (every query scans its whole table)", azurite[0], azurite[1], (SMALL, AZURITE_LARGE))

if __name__ == "__main__":
    main()
