"""The composition root: builds the clients once per process and wires the pipeline and the sweeps."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .alerts import AlertOutbox, publisher_from_env
from .arm import ArmClient
from .config import Settings
from .enrichment import Enricher
from .identity import credential
from .pipeline import EventProcessor
from .queries import InventoryQueries
from .repository import InventoryRepository
from .resources import parse_service_id
from .storage import table_service_client
from .sweeps import Sweeper
from .sync import InventorySync, Reconciler
from .table_repository import TableInventoryRepository
from .writer import RowWriter


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


def arm_client(settings: Settings) -> ArmClient:
    return ArmClient(credential(os.environ, "ARM"), settings.arm_endpoint,
                     audience=settings.arm_audience, retry_after_limit=settings.arm_retry_after_limit)


def build_services(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock, *,
                   with_arm: bool = False) -> Services:
    settings = settings or Settings.from_env()
    repo = TableInventoryRepository(table_service_client(retry_total=settings.storage_retry_total), settings)
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


def install(replacement: Services | None) -> None:
    """Use these services (tests, the demo, the benchmark), or None to build from settings again."""
    global _services
    with _building:
        _services = replacement
