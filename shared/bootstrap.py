"""The composition root: builds the clients once per process and wires the pipeline and the sweeps."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from azure.data.tables import TableServiceClient

from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.ingest.pipeline import EventProcessor
from shared.integrations.alerts import publisher_from_env
from shared.integrations.arm import ArmClient
from shared.integrations.identity import credential
from shared.integrations.storage import table_service_client
from shared.management.enrichment import Enricher
from shared.management.reconcile import Reconciler
from shared.management.sync import InventorySync
from shared.queries import health
from shared.queries.inventory import InventoryQueries
from shared.store.outbox import AlertOutbox
from shared.store.ports import InventoryRepository
from shared.store.table import TableInventoryRepository, TableNames
from shared.store.writer import RowWriter
from shared.timers.retention import Purger
from shared.timers.sweeps import Sweeper


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Services:
    processor: EventProcessor
    sweeper: Sweeper
    queries: InventoryQueries
    reconciler: Reconciler


def wire(repo: InventoryRepository, settings: Settings, outbox: AlertOutbox, clock: Callable[[], datetime],
         arm: ArmClient | None = None) -> Services:
    """`arm` is used for enrichment when ENRICH_FROM_ARM is on, and for syncs whenever it is given."""
    writer = RowWriter(repo, outbox, settings.flag_policy, clock, settings.conflict_retries)
    enricher = Enricher(arm, writer, clock) if arm is not None and settings.enrich_from_arm else None
    processor = EventProcessor(repo, writer=writer, enricher=enricher)
    syncer = InventorySync(arm, writer, clock, status=processor.status) if arm is not None else None
    return Services(
        processor, Sweeper(writer, outbox), InventoryQueries(repo, clock),
        Reconciler(syncer, enricher, tuple(parse_service_id(s) for s in settings.reconcile_services)),
    )


def table_repository(service: TableServiceClient, settings: Settings) -> TableInventoryRepository:
    """The Table repository over the tables the settings name."""
    names = TableNames(settings.inventory_table, settings.history_table, settings.rejected_table, settings.outbox_table,
                       settings.status_table)
    return TableInventoryRepository(service, names, cache_size=settings.cache_size)


def arm_client(settings: Settings) -> ArmClient:
    return ArmClient(credential(os.environ, "ARM"), settings.arm_endpoint,
                     audience=settings.arm_audience, retry_after_limit=settings.arm_retry_after_limit)


def build_services(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock, *,
                   with_arm: bool = False) -> Services:
    settings = settings or Settings.from_env()
    repo = table_repository(table_service_client(retry_total=settings.storage_retry_total), settings)
    arm = arm_client(settings) if with_arm or settings.uses_arm else None
    return wire(repo, settings, AlertOutbox(repo, publisher_from_env(os.environ)), clock, arm)


_services: Services | None = None
_building = threading.Lock()


def services() -> Services:
    """The process-wide services, built on first use so that importing the app stays cheap. The worker's first
    invocations can ask at the same moment, on its threads: one builds, the others wait for it and share its
    clients and cache. A build that raises leaves nothing behind; the next call tries again."""
    global _services
    if _services is None:
        with _building:
            if _services is None:
                _services = build_services()
    return _services


def health_report() -> dict[str, Any]:
    """GET /api/health's document over the process-wide services; raises when they cannot be built or
    the store cannot be read (the HTTP handler answers 503)."""
    built = services()
    return health.report(built.processor.repo, built.queries.clock())


def purger() -> Purger:
    """What the `purge` timer and command run: the retention settings as they are now, the services' clock."""
    built = services()
    return Purger(built.processor.repo, Settings.from_env(), built.processor.clock)


def install(replacement: Services | None) -> None:
    """Use these services (tests, the demo, the benchmark), or None to build from settings again."""
    global _services
    with _building:
        _services = replacement
