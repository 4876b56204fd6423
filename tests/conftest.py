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
from tests.support import ManualClock

_tables = itertools.count(1)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite(blob=True) as server:
        yield server


def fresh_settings() -> Settings:
    n = next(_tables)
    return Settings(inventory_table=f"Inv{n}", history_table=f"Hist{n}", rejected_table=f"Rej{n}", outbox_table=f"Alerts{n}",
                    status_table=f"Status{n}")


def table_repo(azurite: Azurite, settings: Settings | None = None) -> TableInventoryRepository:
    settings = settings or fresh_settings()
    service = TableServiceClient.from_connection_string(azurite.connection_string, retry_total=0)
    return TableInventoryRepository(service, settings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def memory_processor(clock: ManualClock) -> EventProcessor:
    return EventProcessor(InMemoryInventoryRepository(), clock=clock.now)


@pytest.fixture
def app_services(app_settings: Settings, clock: ManualClock) -> Iterator[bootstrap.Services]:
    """What the indexed functions use: built from app settings (fresh tables) with a manual clock."""
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    yield bootstrap.services()
    bootstrap.install(None)


@pytest.fixture
def app_processor(app_services: bootstrap.Services) -> EventProcessor:
    return app_services.processor


@pytest.fixture
def app_settings(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """App settings that point the function app at Azurite and a fresh set of tables."""
    settings = fresh_settings()
    monkeypatch.setenv("INVENTORY_STORAGE", azurite.connection_string)
    monkeypatch.setenv("INVENTORY_TABLE", settings.inventory_table)
    monkeypatch.setenv("INVENTORY_HISTORY_TABLE", settings.history_table)
    monkeypatch.setenv("INVENTORY_REJECTED_TABLE", settings.rejected_table)
    monkeypatch.setenv("INVENTORY_ALERTS_TABLE", settings.outbox_table)
    monkeypatch.setenv("INVENTORY_STATUS_TABLE", settings.status_table)
    return settings


@pytest.fixture(autouse=True)
def _no_stray_storage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("INVENTORY_", "AzureWebJobsStorage", "ALERTS_", "TOKEN_", "CIRCUIT_BREAKER_", "GATEWAY_TOKEN_",
                            "DEAD_LETTER_", "RETENTION_", "PURGE_")):
            monkeypatch.delenv(name)
