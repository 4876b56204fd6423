"""Ingest benchmark on an in-memory Azurite: events/s through the indexed function, Table requests
per event (counted at the HTTP layer), raw upsert_entity rate. BENCH_SCALE (default 1) scales the
volume; BENCH_TRACE=1 prints every request of the first two events of each counted phase."""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.model import Change, Op, Stamp, merge
from shared.domain.resources import parse_path, parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.keys import with_keys

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
TRACE = os.environ.get("BENCH_TRACE", "") not in ("", "0")
SERVICE = ("/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench"
           "/providers/Microsoft.ApiManagement/service/apim-bench")
KINDS = {"users": "User", "products": "Product", "subscriptions": "Subscription", "apis": "API"}
PER_KIND, WARM_ROUNDS, RAW_UPSERTS = max(1, round(500 * SCALE)), 2, max(8, round(3000 * SCALE))
COUNTED_PER_KIND = max(2, PER_KIND // 4)
GOAL_COLD, GOAL_WARM, GOAL_RATIO = 3.0, 2.0, 0.45
T0 = datetime(2025, 6, 1, tzinfo=UTC)
Function = Callable[..., Any]


class CountingTransport(RequestsTransport):  # type: ignore[misc]  # lazily exported, so Any to mypy
    """Counts the HTTP requests the Table clients send, by method, table and status. Requests to the table
    `aside` (the status rows, written at most once a minute per service) are counted apart from `sent`."""

    def __init__(self, aside: str | None = None) -> None:
        super().__init__()
        self.sent = 0
        self.aside, self.aside_sent = aside, 0
        self.kinds: Counter[str] = Counter()
        self.trace = False

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        table = urlsplit(request.url).path.split("/")[2].split("(")[0]
        if table == self.aside:
            self.aside_sent += 1
        else:
            self.sent += 1
        self.kinds[f"{request.method} {table} -> {response.status_code}"] += 1
        if self.trace:
            print(f"    {request.method} {unquote(request.url)} -> {response.status_code}")
        return response


class Events:
    """Synthetic APIM CloudEvents 1.0 payloads with increasing times and seeded ids."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tick = 0

    def make(self, path: str, verb: str) -> str:
        self.tick += 1
        when = T0 + timedelta(milliseconds=self.tick)
        return json.dumps({
            "specversion": "1.0", "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "source": SERVICE, "type": f"Microsoft.ApiManagement.{KINDS[path.split('/')[0]]}{verb}",
            "subject": f"/{path}", "time": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "datacontenttype": "application/json", "data": {"resourceUri": f"{SERVICE}/{path}"},
        })

    def mixed(self, seen: list[str], new: list[str], size: int) -> tuple[list[str], list[str]]:
        """Creates of new resources and updates of seen ones, with 10% redeliveries of recent events."""
        seen, pending = list(seen), list(new)
        stream: list[tuple[str, str]] = []
        for _ in range(size):
            roll = self.rng.random()
            originals = [payload for payload, label in stream[-200:] if label != "duplicate"]
            if originals and roll < 0.10:
                stream.append((self.rng.choice(originals), "duplicate"))
            elif pending and roll < 0.25:
                seen.append(pending.pop())
                stream.append((self.make(seen[-1], "Created"), "cold"))
            else:
                stream.append((self.make(self.rng.choice(seen), "Updated"), "warm"))
        return [payload for payload, _ in stream], [label for _, label in stream]


def resources(prefix: str, per_kind: int) -> list[str]:
    return [f"{kind}/{prefix}-{kind[:3]}-{i:05d}" for i in range(per_kind) for kind in KINDS]


def deliver(function: Function, payloads: list[str]) -> float:
    """Decode and invoke each event as the worker does; the elapsed seconds."""
    start = time.perf_counter()
    for payload in payloads:
        function(decode_event(payload))
    return time.perf_counter() - start


def counted(function: Function, transport: CountingTransport, payloads: list[str],
            labels: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Requests per event, overall ("all") and per label, and requests per event by kind."""
    transport.kinds.clear()
    counts: list[int] = []
    for i, payload in enumerate(payloads):
        before, transport.trace = transport.sent, TRACE and i < 2
        function(decode_event(payload))
        counts.append(transport.sent - before)
    per_label = {"all": sum(counts) / len(counts)}
    for label in dict.fromkeys(labels):
        mine = [c for c, lab in zip(counts, labels, strict=True) if lab == label]
        per_label[label] = sum(mine) / len(mine)
    return per_label, {kind: n / len(counts) for kind, n in sorted(transport.kinds.items())}


def raw_rows(paths: list[str], count: int) -> list[dict[str, Any]]:
    """Inventory-style rows of the same resources, under the keys the store gives them (shared.store.keys)."""
    service = parse_service_id(SERVICE)
    refs = [parse_path(service, paths[i % len(paths)]) for i in range(count)]
    return [with_keys(ref, merge(None, Change(ref, Op.UPDATED, Stamp(T0 + timedelta(seconds=i), f"raw-{i}"), "raw")))
            for i, ref in enumerate(refs)]


def main() -> None:
    logger = logging.getLogger("apim_inventory")
    previous_level = logger.level
    logger.setLevel(logging.WARNING)
    function = indexed_function("apim_events")
    with Azurite() as azurite:
        print(f"apim-inventory ingest benchmark   BENCH_SCALE={SCALE:g}   Azurite in memory on 127.0.0.1:{azurite.port}")
        print(f"logger 'apim_inventory' set to WARNING for the run (was {logging.getLevelName(previous_level)})")
        events, paths = Events(seed=1), resources("a", PER_KIND)
        cold = [events.make(p, "Created") for p in paths]
        warm = [events.make(p, "Updated") for _ in range(WARM_ROUNDS) for p in paths]
        print(f"{len(paths)} resources ({PER_KIND} each of {', '.join(KINDS)}), 1 service: {len(cold)} Created events, "
              f"then {WARM_ROUNDS} rounds of Updated ({len(warm)}); raw upserts run in 8 blocks between warm blocks")

        os.environ["INVENTORY_STORAGE"] = azurite.connection_string
        bootstrap.install(None)
        production = bootstrap.services().processor  # creates the tables outside the timing
        raw_table = TableServiceClient.from_connection_string(
            azurite.connection_string, retry_total=Settings().storage_retry_total,
        ).create_table_if_not_exists("BenchRawUpsert")
        cold_s, warm_s, raw_s = deliver(function, cold), 0.0, 0.0
        rows = raw_rows(paths, RAW_UPSERTS)
        for block in range(8):
            warm_s += deliver(function, warm[block * len(warm) // 8:(block + 1) * len(warm) // 8])
            start = time.perf_counter()
            for row in rows[block * len(rows) // 8:(block + 1) * len(rows) // 8]:
                raw_table.upsert_entity(row)
            raw_s += time.perf_counter() - start
        outcomes = Counter(production.counts)

        settings = Settings(inventory_table="BenchInventory", history_table="BenchHistory",
                            rejected_table="BenchRejected", outbox_table="BenchAlerts", status_table="BenchStatus")
        transport = CountingTransport(aside=settings.status_table)
        service = TableServiceClient.from_connection_string(
            azurite.connection_string, transport=transport, retry_total=settings.storage_retry_total)
        counted_repo = bootstrap.table_store(service, settings)
        counted_repo.create_tables()
        # Recorded on the events' own day, as Event Grid delivers within seconds; an event recorded after the
        # midnight of its day costs one request more (its two feed entries go to two day partitions).
        counted_services = bootstrap.wire(counted_repo, settings, LoggingAlertPublisher(),
                                          lambda: T0 + timedelta(minutes=10))
        processor = counted_services.processor
        bootstrap.install(counted_services)
        try:
            aside_before, counted_start = transport.aside_sent, time.perf_counter()
            events, counted_paths = Events(seed=2), resources("b", COUNTED_PER_KIND)
            phases = {"cold": [events.make(p, "Created") for p in counted_paths]}
            phases["warm"] = [events.make(p, "Updated") for _ in range(WARM_ROUNDS) for p in counted_paths]
            phases["mixed"], mixed_labels = events.mixed(
                counted_paths, resources("c", COUNTED_PER_KIND // 2), len(counted_paths) * 2)
            results = {}
            for name, payloads in phases.items():
                if TRACE:
                    print(f"trace, first 2 {name} events:")
                results[name] = counted(function, transport, payloads, mixed_labels if name == "mixed" else [name] * len(payloads))
            outcomes.update(processor.counts)
            aside = (transport.aside_sent - aside_before, sum(len(p) for p in phases.values()), time.perf_counter() - counted_start)
        finally:
            bootstrap.install(None)
            logger.setLevel(previous_level)

    cold_rate, warm_rate, raw_rate = len(cold) / cold_s, len(warm) / warm_s, RAW_UPSERTS / raw_s
    req = {name: per_label["all"] for name, (per_label, _) in results.items()}
    verdict = {True: "ok", False: "MISSED", None: ""}
    print(f"\n  {'':<26}{'throughput':<20}{'requests/event':<16}goal")
    for label, rate, per_event, goal, ok in (
        ("cold ingest", f"{cold_rate:8.1f} events/s", req["cold"], f"<= {GOAL_COLD:g} req", req["cold"] <= GOAL_COLD),
        ("warm ingest", f"{warm_rate:8.1f} events/s", req["warm"], f"<= {GOAL_WARM:g} req", req["warm"] <= GOAL_WARM),
        ("mixed, 10% duplicates", "", req["mixed"], "", None),
        ("raw upsert_entity", f"{raw_rate:8.1f} upserts/s", 1.0, "", None),
        ("warm ingest / raw upsert", f"{warm_rate / raw_rate:8.2f}", None, f">= {GOAL_RATIO:g}", warm_rate / raw_rate >= GOAL_RATIO),
    ):
        count = "" if per_event is None else f"{per_event:6.2f}"
        print(f"  {label:<26}{rate:<20}{count:<16}{goal:<12}{verdict[ok]}".rstrip())
    print(f"\nrequests by kind, per event (counting transport, {len(counted_paths)} resources, separate tables)")
    for name, (per_label, kinds) in results.items():
        split = "  ".join(f"{label} {v:.2f}" for label, v in per_label.items() if name == "mixed" and label != "all")
        print(f"  {name} ({len(phases[name])} events){'  by event: ' + split if split else ''}")
        for kind, share in kinds.items():
            print(f"      {kind:<40}{share:6.2f}")
    print(f"\nstatus rows, apart from the figures above: {aside[0]} requests to {settings.status_table} while the counted "
          f"phases ran ({aside[1]} events in {aside[2]:.0f} s; one service; at most one write a minute per service per process)")
    print("\noutcomes of all ingested events: " + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())))


if __name__ == "__main__":
    main()
