"""Query benchmark: listing 10k rows of one kind (through InventoryQueries and page by page through
the HTTP function), and `apim-inventory replay` on a 20k-event file, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.worker import indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.store.keys import with_keys

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
LIST_ROWS, OTHER_ROWS, REPLAY_EVENTS = round(10_000 * SCALE), round(5_000 * SCALE), round(20_000 * SCALE)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def fill(client: TableServiceClient, table: str) -> None:
    """10k subscriptions and 5k users, in transactions of 100 per partition."""
    service = parse_service_id(SERVICE)
    batches: dict[str, list[Any]] = defaultdict(list)
    for kind, count in (("subscriptions", LIST_ROWS), ("users", OTHER_ROWS)):
        for i in range(count):
            ref = parse_path(service, f"{kind}/{kind[:3]}-{i:06d}")
            row = with_keys(ref, merge(None, Change(ref, Op.CREATED, Stamp(T0, f"{kind}{i}"), "fill")))
            batches[row["PartitionKey"]].append(("upsert", row))
    table_client = client.get_table_client(table)
    for ops in batches.values():
        for at in range(0, len(ops), 100):
            table_client.submit_transaction(ops[at:at + 100])


def replay_file(path: Path) -> None:
    """20k events: a Created for each of 5k resources, then three Updated rounds, 1% redelivered."""
    events = []
    for n in range(REPLAY_EVENTS):
        i, verb = n % 5000, ("Created" if n < 5000 else "Updated")
        kind, name = [("User", "users"), ("Product", "products"), ("Subscription", "subscriptions"), ("API", "apis")][i % 4]
        events.append({"specversion": "1.0", "id": f"r-{n}", "source": SERVICE, "type": f"Microsoft.ApiManagement.{kind}{verb}",
                       "subject": f"/{name}/r-{i:05d}", "time": (T0 + timedelta(milliseconds=n)).isoformat(),
                       "data": {"resourceUri": f"{SERVICE}/{name}/r-{i:05d}"}})
    events += events[:: 100]
    path.write_text("\n".join(json.dumps(e) for e in events))


def main() -> None:
    with Azurite() as azurite, tempfile.TemporaryDirectory() as tmp:
        os.environ["INVENTORY_STORAGE"] = azurite.connection_string
        settings = Settings.from_env()
        bootstrap.install(None)
        queries = bootstrap.services().queries
        fill(TableServiceClient.from_connection_string(azurite.connection_string), settings.inventory_table)
        print(f"\nquery benchmark: {LIST_ROWS:,} subscriptions and {OTHER_ROWS:,} users in one service; Azurite in memory")
        start = time.perf_counter()
        rows = queries.list_kind(Kind.SUBSCRIPTION, service="apim-bench", top=None).rows
        seconds = time.perf_counter() - start
        print(f"  list {len(rows):,} subscriptions (InventoryQueries)      {seconds:6.2f} s   {len(rows) / seconds:8.0f} rows/s")
        function, token, listed, pages = indexed_function("inventory"), None, 0, 0
        start = time.perf_counter()
        while True:
            params = {"service": "apim-bench", "top": "1000", **({"continuationToken": token} if token else {})}
            body = json.loads(function(func.HttpRequest("GET", "/api/inventory/subscription", params=params,
                                                        route_params={"kind": "subscription"}, body=b"")).get_body())
            listed, pages, token = listed + body["count"], pages + 1, body["continuationToken"]
            if not token:
                break
        seconds = time.perf_counter() - start
        print(f"  list {listed:,} subscriptions (HTTP, {pages} pages of 1000)  {seconds:6.2f} s   {listed / seconds:8.0f} rows/s")

        path = Path(tmp) / "events.jsonl"
        replay_file(path)
        count = len(path.read_text().splitlines())
        env = {**os.environ, "INVENTORY_TABLE": "ReplayInventory", "INVENTORY_HISTORY_TABLE": "ReplayHistory",
               "INVENTORY_REJECTED_TABLE": "ReplayRejected", "INVENTORY_ALERTS_TABLE": "ReplayAlerts"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "from shared.entrypoints.cli import main; raise SystemExit(main())", "replay", str(path)],
                              env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        print(f"  apim-inventory replay of {count:,} events (JSON Lines)     {seconds:6.2f} s   {count / seconds:8.0f} events/s")
        print("  replay said: " + (done.stdout.strip().splitlines() or ["(nothing)"])[-1] + (f"  [exit {done.returncode}]" if done.returncode else ""))
        bootstrap.install(None)


if __name__ == "__main__":
    main()
