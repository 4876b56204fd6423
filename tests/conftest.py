"""Fixtures: one real Azurite per test session, on a free loopback port, stopped by its PID."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from shared import bootstrap
from shared.config import Settings
from shared.pipeline import EventProcessor
from shared.repository import InMemoryInventoryRepository
from shared.table_repository import TableInventoryRepository

_tables = itertools.count(1)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as server:
        yield server


def fresh_settings() -> Settings:
    n = next(_tables)
    return Settings(inventory_table=f"Inv{n}", history_table=f"Hist{n}", rejected_table=f"Rej{n}")


def table_repo(azurite: Azurite, settings: Settings | None = None) -> TableInventoryRepository:
    settings = settings or fresh_settings()
    service = TableServiceClient.from_connection_string(azurite.connection_string, retry_total=0)
    return TableInventoryRepository(service, settings.inventory_table, settings.history_table, settings.rejected_table)


@pytest.fixture
def memory_processor() -> EventProcessor:
    return EventProcessor(InMemoryInventoryRepository())


@pytest.fixture
def app_processor(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventProcessor]:
    """The processor the indexed function uses, configured by app settings to a fresh set of tables."""
    settings = fresh_settings()
    monkeypatch.setenv("INVENTORY_STORAGE", azurite.connection_string)
    monkeypatch.setenv("INVENTORY_TABLE", settings.inventory_table)
    monkeypatch.setenv("INVENTORY_HISTORY_TABLE", settings.history_table)
    monkeypatch.setenv("INVENTORY_REJECTED_TABLE", settings.rejected_table)
    bootstrap.processor.cache_clear()
    yield bootstrap.processor()
    bootstrap.processor.cache_clear()


@pytest.fixture(autouse=True)
def _no_stray_storage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("INVENTORY_", "AzureWebJobsStorage")):
            monkeypatch.delenv(name)
