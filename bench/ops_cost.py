"""Operations benchmark on an in-memory Azurite (Table and Blob): replaying dead letters (events/s and Table
requests per event, first run and repeat), purging (rows/s, Table requests per 100 rows deleted) and
GET /api/health (Table requests, ms). BENCH_SCALE (default 1) scales the volume."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from bench.bench import CountingTransport
from devtools.azurite import Azurite
from devtools.worker import indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_path, parse_service_id
from shared.ingest import dead_letter
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.ports import HistoryRecord
from shared.store.records import feed_entities, history_entity
from shared.timers.retention import Purger

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
BLOBS, PER_BLOB = max(2, round(40 * SCALE)), 50
PURGE_ROWS, SERVICES = max(200, round(20_000 * SCALE)), 50
NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)
SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/"


def dead_letter_blob(blob: int) -> bytes:
    events = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": SERVICE + "apim-bench", "subject": f"/users/u{blob}-{n}",
               "type": "Microsoft.ApiManagement.UserCreated", "time": (NOW + timedelta(seconds=n)).isoformat(),
               "data": {"resourceUri": f"{SERVICE}apim-bench/users/u{blob}-{n}"}, "deadletterreason": "MaxDeliveryAttemptsExceeded",
               "deliveryattempts": 30, "lastdeliveryoutcome": "TimedOut", "publishtime": NOW.isoformat()} for n in range(PER_BLOB)]
    return json.dumps(events).encode()


def upsert_all(client: Any, rows: list[dict[str, Any]]) -> None:
    partitions: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        partitions.setdefault(row["PartitionKey"], []).append(row)
    for group in partitions.values():
        for at in range(0, len(group), 100):
            client.submit_transaction([("upsert", row) for row in group[at:at + 100]])


def main() -> None:
    with Azurite(blob=True) as azurite:
        print(f"apim-inventory operations benchmark   BENCH_SCALE={SCALE:g}   Azurite in memory (Table and Blob)")
        transport = CountingTransport()
        settings = Settings(inventory_table="OpsInventory", history_table="OpsHistory", rejected_table="OpsRejected",
                            outbox_table="OpsAlerts", status_table="OpsStatus")
        tables = TableServiceClient.from_connection_string(azurite.connection_string, transport=transport)
        repo = bootstrap.table_store(tables, settings)
        repo.create_tables()
        services = bootstrap.wire(repo, settings, LoggingAlertPublisher(), lambda: NOW)
        container = BlobServiceClient.from_connection_string(azurite.blob_connection_string).create_container("deadletters")
        for blob in range(BLOBS):
            container.upload_blob(f"APIM-BENCH/2026/11/2/9/{uuid.uuid4()}.json", dead_letter_blob(blob))

        print(f"\ndead-letter replay: {BLOBS} blobs of {PER_BLOB} CloudEvents (with their delivery metadata), one service")
        for label, delete in (("first run", False), ("again, --delete-after", True)):
            sent, start = transport.sent, time.perf_counter()
            run = dead_letter.replay(container, services.processor, lambda report: None, delete_after=delete)
            seconds = time.perf_counter() - start
            print(f"  {label:<24}{run.events / seconds:8.1f} events/s   {(transport.sent - sent) / run.events:5.2f} Table requests/event"
                  f"   {dict(run.counts)}, {run.deleted} blobs deleted")

        service = parse_service_id(SERVICE + "apim-bench")
        records = [history_entity(HistoryRecord(parse_path(service, f"users/h{n:06d}"), f"h-{n}", "Microsoft.ApiManagement.UserUpdated",
                                                NOW - timedelta(days=400 if n < PURGE_ROWS else 0), SERVICE + "apim-bench",
                                                f"/users/h{n:06d}", "updated", False, "{}", "cloudEvents",
                                                NOW - timedelta(days=400 if n < PURGE_ROWS else 0)))
                   for n in range(PURGE_ROWS + PURGE_ROWS // 10)]
        upsert_all(tables.get_table_client(settings.inventory_table), records)
        upsert_all(tables.get_table_client(settings.history_table), [e for r in records for e in feed_entities(r)])
        repo.save_status(service.key, {"Service": "apim-bench", "LastEventTime": NOW}, None)  # the purge finds services by their status rows
        history = records
        sent, start = transport.sent, time.perf_counter()
        results = {r.what: r.deleted for r in Purger(repo, repo, settings, lambda: NOW).run()}
        seconds = time.perf_counter() - start
        requests = transport.sent - sent
        print(f"\npurge: {PURGE_ROWS} history records past the cutoff of {len(history)} (each beside its row, in 16 partitions; "
              "found through the service's change feed)")
        print(f"  {results['history'] / seconds:8.1f} records/s   {requests} Table requests ({100 * requests / results['history']:.2f} per 100 records)"
              f"   {seconds:.1f} s   {results}")

        now_status = [{"PartitionKey": "service", "RowKey": f"s{n:03d}", "Service": f"s{n:03d}", "LastEventTime": NOW,
                       "LastReceivedAt": NOW, "LastAppliedAt": NOW} for n in range(SERVICES)]
        upsert_all(tables.get_table_client(settings.status_table), now_status)
        upsert_all(tables.get_table_client(settings.rejected_table),
                   [{"PartitionKey": f"{NOW:%Y%m%d}", "RowKey": f"r{n:04d}", "ReceivedAt": NOW, "Payload": "x" * 2000} for n in range(500)])
        bootstrap.install(services)
        try:
            health = indexed_function("health")
            health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))  # warm
            sent, start = transport.sent, time.perf_counter()
            rounds = 20
            for _ in range(rounds):
                response = health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
            seconds = time.perf_counter() - start
        finally:
            bootstrap.install(None)
        body = json.loads(response.get_body())
        print(f"\nGET /api/health: {len(body['services'])} services, {body['rejectedLast24Hours']} rejected in the window")
        print(f"  {(transport.sent - sent) / rounds:.2f} Table requests, {1000 * seconds / rounds:.1f} ms per call")


if __name__ == "__main__":
    main()
