"""Sweep cost: Table requests (counted at the HTTP layer) and time per sweep, with the inventory at
1k and 100k rows. A sweep reads only gateway instances and breaker rules, so the figures should
not move with the inventory's size."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableServiceClient

from bench.bench import CountingTransport
from devtools.azurite import Azurite
from devtools.store_reads import inventory_rows
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.keys import with_keys

SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
SIZES = [int(s) for s in os.environ.get("BENCH_SWEEP_SIZES", "1000,100000").split(",")]
INSTANCES, RULES = 20, 10
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def watched_events() -> list[str]:
    events: list[dict[str, Any]] = []
    for i in range(INSTANCES):
        events.append({"specversion": "1.0", "id": f"tok-{i}", "source": SERVICE, "type": "Microsoft.ApiManagement.GatewayTokenNearExpiry",
                       "subject": f"/gateways/gw-{i % 4}/pod-{i}", "time": T0.isoformat(),
                       "data": {"gatewayInfo": {"gatewayId": f"gw-{i % 4}", "instanceId": f"pod-{i}"},
                                "tokenInfo": {"expiresAtUtc": (T0 + timedelta(days=10 + i % 3)).isoformat()}}})
    for i in range(RULES):
        events.append({"specversion": "1.0", "id": f"cb-{i}", "source": SERVICE, "type": "Microsoft.ApiManagement.CircuitBreaker.Opened",
                       "subject": f"/backends/be-{i}/circuit-breaker/rules/r{i}", "time": (T0 + timedelta(minutes=59)).isoformat(),
                       "data": {"backendName": f"be-{i}", "circuitBreaker": {"rules": {f"r{i}": {"tripDuration": "00:10:00"}}}}})
    return [json.dumps(e) for e in events]


def fill(service: TableServiceClient, table: str, count: int) -> float:
    """`count` user rows, written in transactions of 100 per partition; the seconds it took."""
    ref_service = parse_service_id(SERVICE)
    by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in range(count):
        ref = parse_path(ref_service, f"users/user-{i:06d}")
        row = with_keys(ref, merge(None, Change(ref, Op.CREATED, Stamp(T0, f"u{i}"), "fill")))
        by_partition[row["PartitionKey"]].append(row)
    client, start = service.get_table_client(table), time.perf_counter()
    for rows in by_partition.values():
        for at in range(0, len(rows), 100):
            client.submit_transaction([("upsert", row) for row in rows[at:at + 100]])
    return time.perf_counter() - start


def measure(size: int) -> dict[str, Any]:
    moment = [T0 + timedelta(hours=1)]
    with Azurite() as azurite:
        settings = Settings(inventory_table="SweepInventory", history_table="SweepHistory",
                            rejected_table="SweepRejected", outbox_table="SweepAlerts")
        transport = CountingTransport()
        counted = TableServiceClient.from_connection_string(azurite.connection_string, transport=transport, retry_total=0)
        repo = bootstrap.table_store(counted, settings)
        repo.create_tables()
        services = bootstrap.wire(repo, settings, LoggingAlertPublisher(), lambda: moment[0])
        for payload in watched_events():
            services.processor.handle(decode_event(payload))
        fill_s = fill(TableServiceClient.from_connection_string(azurite.connection_string), settings.inventory_table,
                      size - INSTANCES - RULES - RULES)  # minus instances, rules and their backend rows
        figures: dict[str, Any] = {"rows": sum(1 for _ in inventory_rows(repo)), "fill_s": fill_s}
        for label, advance in (("flagging", timedelta(days=5)), ("steady", timedelta(minutes=1))):
            moment[0] += advance
            for name, run in (("tokens", services.sweeper.sweep_gateway_tokens), ("breakers", services.sweeper.sweep_circuit_breakers)):
                before, start = transport.sent, time.perf_counter()
                result = run()
                figures[f"{label} {name}"] = (transport.sent - before, time.perf_counter() - start, result.changed, result.alerts_sent)
    return figures


def main() -> None:
    logging.getLogger("apim_inventory.alerts").setLevel(logging.ERROR)  # the alerts themselves are not the figures
    print(f"\nsweep cost: {INSTANCES} gateway instances and {RULES} breaker rules, the rest users; Azurite in memory")
    print(f"  {'inventory rows':<16}{'sweep':<20}{'requests':>9}{'ms':>9}{'changed':>9}{'alerts':>8}")
    for size in SIZES:
        figures = measure(size)
        for key, value in figures.items():
            if isinstance(value, tuple):
                requests, seconds, changed, alerts = value
                print(f"  {figures['rows']:<16,}{key:<20}{requests:>9}{seconds * 1000:>9.1f}{changed:>9}{alerts:>8}")
        print(f"  ({figures['rows']:,} rows written in {figures['fill_s']:.1f} s)")


if __name__ == "__main__":
    main()
