"""Fixtures: one real Azurite per test session, on a free loopback port, stopped by its PID.

Every test says what it needs (pyproject.toml registers the marks): `unit` (in memory: no Azurite, no
server, no subprocess; `make test-fast` runs these), `azurite` (a real Azurite: set here for every test
that uses the fixture), `standin` (a stand-in server on 127.0.0.1: set here for the ARM stand-in's
fixture) and `slow`. A test with none of them fails the run, and a `unit` test that opens a connection
or starts a process fails."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.management_plane import small_service
from shared import bootstrap
from shared.config import Settings
from shared.ingest.pipeline import EventProcessor
from shared.store.memory import InMemoryStore
from shared.store.table import TableStore
from tests.support import SERVICE_ID, ManualClock, processor_over

_tables = itertools.count(1)
NEEDS = ("unit", "azurite", "standin", "slow")
_BY_FIXTURE = {"azurite": "azurite", "arm": "standin", "served": "standin",  # served: tests/served_support.py
               "browser": "browser"}  # browser: tests/browser_support.py


@pytest.hookimpl(tryfirst=True)  # before -m deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, mark in _BY_FIXTURE.items():
            if fixture in fixtures:
                item.add_marker(mark)
        marks = {mark.name for mark in item.iter_markers()}
        if not marks & set(NEEDS):
            problems.append(f"{item.nodeid}: no mark saying what it needs ({', '.join(NEEDS)})")
        elif "unit" in marks and marks & {"azurite", "standin"}:
            problems.append(f"{item.nodeid}: marked unit, but it uses {', '.join(sorted(marks & {'azurite', 'standin'}))}")
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One loud line when the browser tests could not run, and where their screenshots went when they did."""
    from tests.browser_support import CHROMIUM, MISSING, SCREENSHOTS

    ran = any(report.nodeid.startswith("tests/test_pages_browser.py") for key in ("passed", "failed", "skipped")
              for report in terminalreporter.stats.get(key, []))
    if not ran:
        return
    if not CHROMIUM.exists():
        terminalreporter.write_line(MISSING, red=True, bold=True)
    elif SCREENSHOTS.exists():
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}", bold=True)


@pytest.fixture(autouse=True)
def _unit_tests_do_no_io(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{request.node.nodeid} is marked unit but opens a connection or starts a process")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """The command configures logging for its process (`basicConfig`); a test that runs it in-process must not leave
    the root logger at ERROR (nor the app's at CRITICAL) for the tests after it, whose log lines caplog reads."""
    root, app = logging.getLogger(), logging.getLogger("apim_inventory")
    levels, handlers = (root.level, app.level), list(root.handlers)
    yield
    root.setLevel(levels[0])
    app.setLevel(levels[1])
    root.handlers[:] = handlers


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite(blob=True) as server:
        yield server


def fresh_settings() -> Settings:
    n = next(_tables)
    return Settings(inventory_table=f"Inv{n}", history_table=f"Hist{n}", rejected_table=f"Rej{n}", outbox_table=f"Alerts{n}",
                    status_table=f"Status{n}", usage_table=f"Usage{n}")


def table_repo(azurite: Azurite, settings: Settings | None = None) -> TableStore:
    """A Table store over the settings' tables (created where missing), apart from the app's services."""
    settings = settings or fresh_settings()
    service = TableServiceClient.from_connection_string(azurite.connection_string, retry_total=0)
    store = bootstrap.table_store(service, settings)
    store.create_tables()
    return store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def memory_store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def memory_processor(memory_store: InMemoryStore, clock: ManualClock) -> EventProcessor:
    return processor_over(memory_store, clock.now)


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
    monkeypatch.setenv("INVENTORY_USAGE_TABLE", settings.usage_table)
    return settings


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    """The stand-in management plane, holding one of each kind of resource of service contoso."""
    with ArmStandIn(page_size=1) as server:  # one item a page: every listing of two follows nextLink
        server.put_many(small_service(SERVICE_ID))
        yield server


@pytest.fixture
def arm_settings(app_settings: Settings, arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """App settings with enrichment on, ARM at the stand-in, and the managed identity the Functions way."""
    for name, value in {**arm.identity_env(), "ENRICH_FROM_ARM": "true", "ARM_ENDPOINT": arm.endpoint}.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


@pytest.fixture
def arm_services(arm_settings: Settings, clock: ManualClock) -> Iterator[bootstrap.Services]:
    bootstrap.install(bootstrap.build_services(clock=clock.now))
    yield bootstrap.services()
    bootstrap.install(None)


APP_SETTING_PREFIXES = ("INVENTORY_", "AzureWebJobsStorage", "ALERTS_", "TOKEN_", "CIRCUIT_BREAKER_", "GATEWAY_TOKEN_",
                        "ENRICH_", "ARM_", "RECONCILE_", "IDENTITY_", "AZURE_CLIENT_", "DEAD_LETTER_", "RETENTION_", "PURGE_", "SYNC_",
                        "GATEWAY_LOGS_", "USAGE_")


@pytest.fixture(autouse=True)
def _no_stray_storage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(APP_SETTING_PREFIXES):
            monkeypatch.delenv(name)
