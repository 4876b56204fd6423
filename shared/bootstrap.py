"""The composition root: builds the clients once per process and wires the pipeline and the sweeps."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .alerts import AlertOutbox, publisher_from_env
from .config import Settings
from .pipeline import EventProcessor
from .queries import InventoryQueries
from .repository import InventoryRepository
from .storage import table_service_client
from .sweeps import Sweeper
from .table_repository import TableInventoryRepository
from .writer import RowWriter


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Services:
    processor: EventProcessor
    sweeper: Sweeper
    queries: InventoryQueries


def wire(repo: InventoryRepository, settings: Settings, outbox: AlertOutbox, clock: Callable[[], datetime]) -> Services:
    writer = RowWriter(repo, outbox, settings.flag_policy, clock, settings.conflict_retries)
    return Services(EventProcessor(repo, writer=writer), Sweeper(writer, outbox), InventoryQueries(repo, clock))


def build_services(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock) -> Services:
    settings = settings or Settings.from_env()
    repo = TableInventoryRepository(table_service_client(retry_total=settings.storage_retry_total), settings)
    return wire(repo, settings, AlertOutbox(repo, publisher_from_env(os.environ)), clock)


_services: Services | None = None


def services() -> Services:
    """The process-wide services, built on first use so that importing the app stays cheap."""
    global _services
    if _services is None:
        _services = build_services()
    return _services


def install(replacement: Services | None) -> None:
    """Use these services (tests, the demo, the benchmark), or None to build from settings again."""
    global _services
    _services = replacement
