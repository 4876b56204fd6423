"""What the usage tests share: gateway-log records and blob names as Azure Monitor writes them, an ingest over
any archive and store, and the two sides every test compares: the counts the usage table holds and a brute-force
count of the records in the blobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import astuple
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.storage.blob import ContainerClient

from shared.domain.usage import BadLine, Counters, read_record
from shared.integrations.log_archive import LogArchive
from shared.integrations.log_blobs import BlobArchive
from shared.store.ports import Query, Table, TableDeleter, TableReader, TableWriter
from shared.store.usage_rows import counters_of, unpack
from shared.usage.ingest import GatewayLogs

SUB = "00000000-0000-0000-0000-000000000001"
NOW = datetime(2026, 12, 2, 14, 30, tzinfo=timezone.utc)
H0 = datetime(2026, 12, 2, 10, tzinfo=timezone.utc)


class Retention:
    usage_hourly_days = 7.0
    usage_retention_days = 400.0
    rejected_retention_days = 30.0


def service_id(name: str = "contoso") -> str:
    return f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/RG-APIM/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/{name.upper()}"


def blob_name(hour: datetime, service: str = "contoso") -> str:
    return f"resourceId={service_id(service)}/y={hour:%Y}/m={hour:%m}/d={hour:%d}/h={hour:%H}/m=00/PT1H.json"


def record(at: datetime, service: str = "contoso", code: int = 200, duration: float = 10.0, **properties: Any) -> dict[str, Any]:
    props = {"method": "GET", "responseCode": code, "backendResponseCode": code, "apiId": "echo-api", "operationId": "get-echo",
             "apimSubscriptionId": "sub-1", **properties}
    return {"time": at.strftime("%Y-%m-%dT%H:%M:%S.1234567Z"), "resourceId": service_id(service), "category": "GatewayLogs",
            "operationName": "Microsoft.ApiManagement/GatewayLogs", "durationMs": duration,
            "properties": {k: v for k, v in props.items() if v is not None}}


def lines(*records: dict[str, Any] | bytes) -> bytes:
    return b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)


def ingest_over(archive: LogArchive, store: Any, clock: Any, chunk_size: int = 4 * 1024 * 1024,
                lease: timedelta | None = None) -> GatewayLogs:
    reader: TableReader = store
    writer: TableWriter = store
    deleter: TableDeleter = store
    return GatewayLogs(archive, reader, writer, deleter, clock, Retention(), chunk_size=chunk_size, lease=lease)


Counts = dict[tuple[str, str, str, str], tuple[Any, ...]]


def _frozen(counters: Counters) -> tuple[Any, ...]:
    values = list(astuple(counters))
    values[6] = round(values[6], 6)  # a sum of floats in another order
    return tuple(values)


def stored_counts(store: TableReader) -> Counts:
    """(service, kind, hour `YYYY-MM-DDTHH`, id) -> the counts the usage table holds: every contribution summed."""
    sums: dict[tuple[str, str, str, str], Counters] = {}
    for page in store.scan(Query(Table.USAGE, low_pk="uh|", high_pk="uh}")):
        for row in page:
            e = row.entity
            for resource, counters in unpack(e):
                key = (str(e["Service"]), str(e["Kind"]), str(e["Hour"])[:13], resource)
                sums.setdefault(key, Counters()).merge(counters)
    return {key: _frozen(c) for key, c in sums.items()}


def stored_last_uses(store: TableReader) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(service, kind, id) -> the last-use row's FirstSeenUsedAt and LastUsedAt, as ISO text to the second."""
    def text(value: Any) -> str:
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)
    return {(str(row.entity["Service"]), str(row.entity["Kind"]), str(row.entity["Id"])):
            (text(row.entity["FirstSeenUsedAt"]), text(row.entity["LastUsedAt"]))
            for page in store.scan(Query(Table.USAGE, low_pk="ul|", high_pk="ul}")) for row in page}


def complete_lines(data: bytes) -> list[bytes]:
    return [line for line in data[:data.rfind(b"\n") + 1].split(b"\n") if line.strip()]


def brute_force(contents: Iterable[bytes]) -> Counts:
    """Every record of every complete line, counted one by one for each (kind, id) it names."""
    sums: dict[tuple[str, str, str, str], Counters] = {}
    for data in contents:
        for line in complete_lines(data):
            try:
                hit = read_record(json.loads(line))
            except (ValueError, RecursionError):
                continue
            if isinstance(hit, BadLine):
                continue
            for kind, resource in hit.names:
                sums.setdefault((hit.service, kind, hit.hour, resource), Counters()).add(hit)
    return {key: _frozen(c) for key, c in sums.items()}


def bad_lines(store: TableReader) -> list[tuple[str, int, str]]:
    """(blob, offset, reason) of every bad line recorded."""
    found = [(str(r.entity["Blob"]), int(r.entity["Offset"]), str(r.entity["Reason"]))
             for page in store.scan(Query(Table.USAGE, low_pk="ub|", high_pk="ub}")) for r in page]
    return sorted(found)


class AzuriteBlobs:
    """Append blobs on Azurite, as the diagnostic setting writes them."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self.archive = BlobArchive(container)

    def append(self, name: str, data: bytes) -> None:
        blob = self.container.get_blob_client(name)
        if not blob.exists():
            blob.create_append_blob()
        if data:
            blob.append_block(data)

    def replace(self, name: str, data: bytes) -> None:
        time.sleep(1.05)  # a creation time is to the second: a blob replaced within the same second is not told apart
        blob = self.container.get_blob_client(name)
        if blob.exists():
            blob.delete_blob()
        blob.create_append_blob()
        if data:
            blob.append_block(data)

    def contents(self) -> list[bytes]:
        return [self.container.download_blob(b.name).readall() for b in self.container.list_blobs()]


def _summed(parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    ints = [sum(p[i] for p in parts) for i in range(6)]
    return (*ints, round(sum(p[6] for p in parts), 6), max(p[7] for p in parts), min(p[8] for p in parts), max(p[9] for p in parts))


def by_day(counts: Counts) -> Counts:
    """Hourly counts summed per day (`YYYY-MM-DD`)."""
    days: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
    for (service, kind, hour, resource), values in counts.items():
        days.setdefault((service, kind, hour[:10], resource), []).append(values)
    return {key: _summed(parts) for key, parts in days.items()}


def stored_by_day(store: TableReader) -> Counts:
    """Daily roll-ups and hourly contributions, summed per day (after a run, a rolled day has no hourly rows left)."""
    parts: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
    for key, values in by_day(stored_counts(store)).items():
        parts.setdefault(key, []).append(values)
    for page in store.scan(Query(Table.USAGE, low_pk="ud|", high_pk="ud}")):
        for row in page:
            e = row.entity
            parts.setdefault((str(e["Service"]), str(e["Kind"]), str(e["Day"]), str(e["Id"])), []).append(_frozen(counters_of(e)))
    return {key: _summed(values) for key, values in parts.items()}


def rows_under(store: TableReader, prefix: str) -> int:
    return sum(len(page) for page in store.scan(Query(Table.USAGE, low_pk=prefix, high_pk=prefix[:-1] + chr(ord(prefix[-1]) + 1))))
