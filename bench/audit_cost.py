"""Activity Log benchmark: `N` operations (a Start and a Success each, argv[1], default 1,000) appended to three hour
blobs on Azurite (the Start and the Success of an operation mostly in different blobs, as the worst case: no fold
within a chunk), then one ingest as the `activity_logs` timer runs it, and a second (the archive read through): the
time, the records per second and the Table requests per operation, by kind.

    .venv/bin/python -m bench.audit_cost 1000
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from azure.storage.blob import BlobServiceClient

from devtools.azurite import Azurite
from shared import bootstrap
from shared.audit.ingest import ActivityLogs
from shared.audit.records import AuditWriter
from shared.config import Settings
from shared.integrations.log_blobs import BlobArchive
from tests.audit_support import PIPELINE, blob_name, lines, operation
from tests.support import T0, ManualClock


class Counting:
    """The store, counting the calls of each method."""

    def __init__(self, store: Any) -> None:
        self.store, self.calls = store, Counter[str]()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)
        return counted


def main(n: int) -> None:
    with Azurite(blob=True) as azurite:
        container = BlobServiceClient.from_connection_string(azurite.blob_connection_string).create_container("bench-activity")
        records = [r for i in range(n) for r in operation(f"apis/a{i % 50}", "APIS/WRITE", T0 + timedelta(seconds=i), f"c-{i}",
                                                          PIPELINE if i % 2 else None)]
        for hour in range(3):
            blob = container.get_blob_client(blob_name(T0.replace(minute=0) + timedelta(hours=hour)))
            blob.create_append_blob()
            part = records[hour::3]
            for at in range(0, len(part), 500):
                blob.append_block(lines(*part[at:at + 500]))
        settings = Settings(inventory_table="BenchInv", history_table="BenchHist", rejected_table="BenchRej", outbox_table="BenchAlerts",
                            status_table="BenchStatus", usage_table="BenchUsage")
        from azure.data.tables import TableServiceClient
        table = bootstrap.table_store(TableServiceClient.from_connection_string(azurite.connection_string), settings)
        table.create_tables()
        store: Any = Counting(table)
        clock = ManualClock(T0 + timedelta(hours=4))
        for run in ("first", "again"):
            started = time.perf_counter()
            report = ActivityLogs(BlobArchive(container), store, store, AuditWriter(store, store, store, None, clock.now), clock.now).ingest()
            seconds = time.perf_counter() - started
            print(f"{run}: {n} operations, {report.records} records, {report.bytes} bytes in {seconds:.2f} s "
                  f"({report.records / seconds:.0f} records/s); requests {dict(store.calls)} = {sum(store.calls.values()) / n:.2f} per operation")
            store.calls.clear()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
