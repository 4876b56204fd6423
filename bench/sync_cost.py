"""The large sync: 200,000 users and 50,000 subscriptions (and 50 APIs of 4 revisions) served by the ARM stand-in
(pages of 100, as ARM pages; the users and subscriptions generated when served), synced into Azurite through
budgeted invocations that resume from the checkpoint, next to the raw insert transactions of the same rows on the
same partitions, in the same run. BENCH_SCALE scales it (1 = the 250,000 resources); BENCH_SYNC_SCALE, when set,
overrides it for this benchmark alone (0.02 for a quick check). SYNC_TIME_BUDGET_SECONDS is the budget of each
invocation (default the app's). Azurite's inserts slow down as its table grows: docs/design.md has the figures."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableServiceClient

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import put_large_service
from devtools.store_reads import inventory_rows
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher

SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
SCALE = float(os.environ.get("BENCH_SYNC_SCALE") or os.environ.get("BENCH_SCALE") or "1")
USERS, SUBSCRIPTIONS = max(1, round(200_000 * SCALE)), max(1, round(50_000 * SCALE))
APIS, REVISIONS = 50, 4
BUDGET = float(os.environ.get("SYNC_TIME_BUDGET_SECONDS", Settings.sync_time_budget_seconds))
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
        put_large_service(arm, SERVICE, USERS, APIS, REVISIONS, SUBSCRIPTIONS)
        os.environ.update(arm.identity_env())
        settings = Settings(arm_endpoint=arm.endpoint, sync_time_budget_seconds=BUDGET)
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        repo = bootstrap.table_store(tables, settings)
        repo.create_tables()
        moment = [NOW]
        services = bootstrap.wire(repo, settings, LoggingAlertPublisher(), lambda: moment[0], bootstrap.arm_client(settings))
        syncer = services.reconciler.syncer
        assert syncer is not None
        service = parse_service_id(SERVICE)

        def run() -> tuple[Any, float, int, list[float]]:
            """One whole sync, invocation by invocation (as the timer would run them): report, seconds, ARM requests."""
            before, steps, start = len(arm.requests), [], time.perf_counter()
            while True:
                began = time.perf_counter()
                report = syncer.step(service)
                steps.append(time.perf_counter() - began)
                print(f"  invocation {len(steps)}: {steps[-1]:.1f} s, {len(arm.requests) - before} ARM requests so far, "
                      f"finished={report.finished}", flush=True)
                moment[0] += timedelta(minutes=10)  # the next timer firing
                if report.finished:
                    return report, time.perf_counter() - start, len(arm.requests) - before, steps

        first, first_seconds, first_requests, first_steps = run()
        moment[0] += timedelta(hours=6)
        steady, steady_seconds, steady_requests, steady_steps = run()

        written = list(inventory_rows(repo))
        raw_seconds = raw_transactions(tables, written)
        sync_rate, raw_rate = first.counts["added"] / first_seconds, len(written) / raw_seconds
        print(f"large sync (BENCH_SYNC_SCALE={SCALE:g}): {USERS} users, {SUBSCRIPTIONS} subscriptions, {APIS * REVISIONS} API "
              f"revisions ({first.listed} rows listed); budget {BUDGET:g} s an invocation, ARM pages of 100")
        print(f"  first sync (empty inventory): {first.counts['added']} added in {first_seconds:.1f} s = {sync_rate:.0f} entities/s, "
              f"{first_requests} ARM requests, {first.invocations} invocation(s), longest {max(first_steps):.1f} s")
        print(f"  raw insert transactions, same rows and partitions: {len(written)} in {raw_seconds:.1f} s = {raw_rate:.0f} entities/s")
        print(f"  ratio sync/raw: {sync_rate / raw_rate:.2f}")
        print(f"  second sync (nothing changed): {dict(steady.counts)} in {steady_seconds:.1f} s = {steady.listed / steady_seconds:.0f} "
              f"rows/s, {steady_requests} ARM requests, {steady.invocations} invocation(s), "
              f"longest {max(steady_steps):.1f} s")


if __name__ == "__main__":
    main()
