"""Contention on a partition's count row, on an in-memory Azurite: N threads (as the Python worker's thread pool
runs parallel Event Grid deliveries) deliver distinct events of one inventory partition (users whose names share a
bucket), so every transaction rewrites the same count row under If-Match. Prints events/s and the 412/409 retries
per event for each N. BENCH_SCALE (default 1) scales the events per run."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import ConflictRetriesExhausted, WriteConflict
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.keys import COUNT_SHARDS, bucket
from shared.store.ports import PartitionWrite
from shared.store.table import TableStore

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
EVENTS = max(40, round(400 * SCALE))  # per thread count: half Created, half Updated of the same users
THREADS = (1, 2, 4, 8)
SUBSCRIPTION = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/"
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def same_bucket_users(count: int) -> list[str]:
    """User names that all land in bucket 0, so their rows share one partition and its count row."""
    names: list[str] = []
    n = 0
    while len(names) < count:
        if bucket(f"u{n:06d}") == 0:
            names.append(f"u{n:06d}")
        n += 1
    return names


def payload(service: str, user: str, verb: str, tick: int) -> str:
    return json.dumps({
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": SUBSCRIPTION + service,
        "type": f"Microsoft.ApiManagement.User{verb}", "subject": f"/users/{user}",
        "time": (T0 + timedelta(milliseconds=tick)).isoformat(), "datacontenttype": "application/json",
        "data": {"resourceUri": f"{SUBSCRIPTION}{service}/users/{user}"},
    })


class Conflicts:
    """Counts the transactions of the store that fail on a condition (each is one retry of the writer)."""

    def __init__(self, store: TableStore) -> None:
        self.count = 0
        self._lock = threading.Lock()
        commit: Callable[[PartitionWrite], Any] = store.commit

        def counting(write: PartitionWrite) -> Any:
            try:
                return commit(write)
            except WriteConflict:
                with self._lock:
                    self.count += 1
                raise

        store.commit = counting  # type: ignore[method-assign]


def run(function: Callable[..., Any], service: str, threads: int) -> tuple[float, int]:
    """Deliver the Created, then the Updated events of EVENTS / 2 users of one partition on `threads` threads: the
    seconds, and the deliveries that failed (the writer gave up after its conflict retries; Event Grid would redeliver)."""
    users = same_bucket_users(EVENTS // 2)
    elapsed, failed = 0.0, 0

    def deliver(event: Any) -> bool:
        try:
            function(event)
            return True
        except ConflictRetriesExhausted:
            return False

    for phase, verb in enumerate(("Created", "Updated")):
        events = [decode_event(payload(service, user, verb, phase * EVENTS + i)) for i, user in enumerate(users)]
        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter()
            failed += sum(not ok for ok in pool.map(deliver, events))
            elapsed += time.perf_counter() - start
    return elapsed, failed


def main() -> None:
    logging.getLogger("apim_inventory").setLevel(logging.WARNING)
    function = indexed_function("apim_events")
    with Azurite() as azurite:
        print(f"apim-inventory count-row contention benchmark   BENCH_SCALE={SCALE:g}   Azurite in memory on 127.0.0.1:{azurite.port}")
        print(f"each run: {EVENTS} events of one inventory partition ({EVENTS // 2} users sharing a bucket: UserCreated, "
              "then UserUpdated), delivered by a thread pool; a service per run\n")
        settings = Settings(inventory_table="ContInventory", history_table="ContHistory", rejected_table="ContRejected",
                            outbox_table="ContAlerts", status_table="ContStatus")
        tables = TableServiceClient.from_connection_string(azurite.connection_string, retry_total=settings.storage_retry_total)
        store = bootstrap.table_store(tables, settings)
        store.create_tables()
        conflicts = Conflicts(store)
        services = bootstrap.wire(store, settings, LoggingAlertPublisher(), bootstrap.system_clock)
        bootstrap.install(services)
        try:
            print(f"  {'threads':<10}{'events/s':>10}{'retries/event':>16}{'failed':>8}   outcomes")
            for threads in THREADS:
                before, outcomes_before = conflicts.count, dict(services.processor.counts)
                seconds, failed = run(function, f"apim-contention-{threads}", threads)
                retries = conflicts.count - before
                outcomes = {k: n - outcomes_before.get(k, 0) for k, n in services.processor.counts.items() if n - outcomes_before.get(k, 0)}
                print(f"  {threads:<10}{EVENTS / seconds:10.1f}{retries / EVENTS:16.2f}{failed:8d}   {outcomes}")
            print(f"\n  count rows per partition: the flag row and {COUNT_SHARDS} shards; 'failed': deliveries that ran out of "
                  f"the writer's {settings.conflict_retries} conflict retries (Event Grid redelivers them)")
        finally:
            bootstrap.install(None)


if __name__ == "__main__":
    main()
