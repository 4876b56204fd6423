"""Full sync rate: a service of 10k users, 2k API revisions and 5k subscriptions, served by the ARM
stand-in (pages of 100, as ARM pages) and reconciled into Azurite, next to the raw transaction write
rate of the same rows on the same partition layout, measured in the same run."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableServiceClient

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import large_service
from devtools.store_reads import inventory_rows
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher

SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
USERS = int(os.environ.get("BENCH_SYNC_USERS", "10000"))
APIS, REVISIONS = 500, 4  # 2,000 API revisions
SUBSCRIPTIONS = int(os.environ.get("BENCH_SYNC_SUBSCRIPTIONS", "5000"))
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def raw_transactions(service: TableServiceClient, rows: list[dict[str, Any]]) -> float:
    """Seconds to insert `rows`, 100 per transaction per partition, into a fresh table (as a first sync does)."""
    by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_partition[row["PartitionKey"]].append(row)
    client = service.create_table("RawSyncRate")
    start = time.perf_counter()
    for partition in by_partition.values():
        for at in range(0, len(partition), 100):
            client.submit_transaction([("create", row) for row in partition[at:at + 100]])
    return time.perf_counter() - start


def main() -> None:
    with Azurite() as azurite, ArmStandIn(page_size=100) as arm:
        arm.put_many(large_service(SERVICE, USERS, APIS, REVISIONS, SUBSCRIPTIONS))
        os.environ.update(arm.identity_env())
        settings = Settings(arm_endpoint=arm.endpoint)
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        repo = bootstrap.table_store(tables, settings)
        repo.create_tables()
        services = bootstrap.wire(repo, settings, LoggingAlertPublisher(), lambda: NOW,
                                  bootstrap.arm_client(settings))
        assert services.reconciler.syncer is not None
        service = parse_service_id(SERVICE)

        start = time.perf_counter()
        first = services.reconciler.syncer.sync(service)
        first_seconds = time.perf_counter() - start
        lists = sum(1 for r in arm.requests if "/msi/" not in r.path)
        start = time.perf_counter()
        steady = services.reconciler.syncer.sync(service)
        steady_seconds = time.perf_counter() - start

        written = list(inventory_rows(repo))
        raw_seconds = raw_transactions(tables, written)
        sync_rate, raw_rate = first.counts["added"] / first_seconds, len(written) / raw_seconds
        print(f"sync of {USERS} users, {APIS * REVISIONS} API revisions, {SUBSCRIPTIONS} subscriptions "
              f"({first.listed} rows listed in {lists} ARM requests)")
        print(f"  first sync (empty inventory): {first.counts['added']} added in {first_seconds:.2f} s = {sync_rate:.0f} entities/s")
        print(f"  raw transactions, same rows and partitions: {len(written)} in {raw_seconds:.2f} s = {raw_rate:.0f} entities/s")
        print(f"  ratio sync/raw: {sync_rate / raw_rate:.2f} (goal 0.5)")
        print(f"  second sync (nothing changed): {dict(steady.counts)} in {steady_seconds:.2f} s = {steady.listed / steady_seconds:.0f} rows/s")


if __name__ == "__main__":
    main()
