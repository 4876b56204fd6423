"""The composition root: builds the clients once per process and wires the pipeline."""

from __future__ import annotations

import functools

from .config import Settings
from .pipeline import EventProcessor
from .storage import table_service_client
from .table_repository import TableInventoryRepository


def build_processor(settings: Settings | None = None) -> EventProcessor:
    settings = settings or Settings.from_env()
    service = table_service_client(retry_total=settings.storage_retry_total)
    repo = TableInventoryRepository(
        service, settings.inventory_table, settings.history_table, settings.rejected_table,
        cache_size=settings.cache_size,
    )
    return EventProcessor(repo, conflict_retries=settings.conflict_retries)


@functools.cache
def processor() -> EventProcessor:
    """The process-wide pipeline, built on first use so that importing the app stays cheap."""
    return build_processor()
