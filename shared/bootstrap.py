"""The composition root: builds the clients once per process and wires the pipeline and the sweeps."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.data.tables import TableServiceClient

from shared.audit.backfill import Backfill, RecordWriter, WindowReport
from shared.audit.ingest import ActivityLogs
from shared.audit.records import AuditWriter
from shared.audit.stream import ActivityLogStream
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.domain.usage import streamed
from shared.ingest.pipeline import EventProcessor
from shared.integrations.activity_log_api import ActivityLogApi
from shared.integrations.alerts import LoggingAlertPublisher, publisher_from_env
from shared.integrations.arm import ArmClient
from shared.integrations.identity import credential
from shared.integrations.log_blobs import BlobArchive
from shared.integrations.storage import blob_service_client, connection_setting, table_service_client
from shared.management.enrichment import Enricher
from shared.management.reconcile import Reconciler
from shared.management.sync import InventorySync
from shared.queries.health import HealthReporter
from shared.queries.inventory import InventoryQueries
from shared.store.access_index import AccessIndex
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox, AlertPublisher
from shared.store.ports import Store
from shared.store.status import StatusTracker
from shared.store.table import TableNames, TableStore
from shared.store.writer import RowWriter
from shared.timers.retention import Purger
from shared.timers.snapshots import take_snapshots
from shared.timers.sweeps import Sweeper
from shared.usage.ingest import GatewayLogs
from shared.usage.stream import GatewayLogStream


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Services:
    """Everything the entry points use, built once per process from one reading of the settings."""

    settings: Settings
    clock: Callable[[], datetime]
    store: Store  # every port; the capabilities below hold only the ports they use
    status: StatusTracker
    processor: EventProcessor
    sweeper: Sweeper
    queries: InventoryQueries
    reconciler: Reconciler
    purger: Purger
    health: HealthReporter


def wire(store: Store, settings: Settings, publisher: AlertPublisher, clock: Callable[[], datetime],
         arm: ArmClient | None = None) -> Services:
    """`arm` is used for enrichment when ENRICH_FROM_ARM is on, and for syncs whenever it is given."""
    outbox = AlertOutbox(store, publisher)
    status = StatusTracker(store)
    writer = RowWriter(store, outbox, settings.flag_policy, clock, settings.conflict_retries, status, index=AccessIndex(store))
    enricher = Enricher(arm, store, writer, outbox, clock) if arm is not None and settings.enrich_from_arm else None
    processor = EventProcessor(store, store, store, writer, outbox, status, clock, enricher=enricher)
    syncer = InventorySync(arm, store, writer, outbox, clock, records=store, deleter=store, status=status,
                           budget=settings.sync_time_budget_seconds, reads_reserve=settings.arm_reads_reserve) if arm is not None else None
    return Services(
        settings, clock, store, status, processor, Sweeper(store, writer, outbox, clock),
        InventoryQueries(store, store, clock, audit_window=timedelta(minutes=settings.audit_join_window_minutes)),
        Reconciler(syncer, enricher, tuple(parse_service_id(s) for s in settings.reconcile_services),
                   timedelta(hours=settings.sync_interval_hours)),
        Purger(store, store, settings, clock), HealthReporter(store, clock),
    )


def in_memory(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock, *,
              store: InMemoryStore | None = None, publisher: AlertPublisher | None = None) -> Services:
    """Services over the in-memory twin, with log-only alerts (tests, the dev tools)."""
    return wire(store if store is not None else InMemoryStore(), settings or Settings(), publisher or LoggingAlertPublisher(), clock)


def table_store(service: TableServiceClient, settings: Settings) -> TableStore:
    """The Table store over the tables the settings name (it sends nothing until used)."""
    names = TableNames(settings.inventory_table, settings.history_table, settings.rejected_table, settings.outbox_table,
                       settings.status_table, settings.usage_table)
    return TableStore(service, names, cache_size=settings.cache_size)


def arm_client(settings: Settings) -> ArmClient:
    return ArmClient(credential(os.environ, "ARM"), settings.arm_endpoint,
                     audience=settings.arm_audience, retry_after_limit=settings.arm_retry_after_limit)


def audit_backfill(settings: Settings, writer: RecordWriter, progress: Callable[[WindowReport], None] | None = None) -> Backfill:
    """The Activity Log backfill: its REST API through the lean ARM client (ARM_ENDPOINT, the ARM identity), into `writer`
    (the audit-record writer)."""
    return Backfill(ActivityLogApi(arm_client(settings)), writer, progress=progress)


def build_services(settings: Settings | None = None, clock: Callable[[], datetime] = system_clock, *,
                   with_arm: bool = False, publisher: AlertPublisher | None = None) -> Services:
    """The production wiring, from these settings or a reading of the app settings of its own (tests, the command);
    creates the tables where missing (once, here, at start-up)."""
    settings = settings or Settings.from_env()
    store = table_store(table_service_client(retry_total=settings.storage_retry_total), settings)
    store.create_tables()
    arm = arm_client(settings) if with_arm or settings.uses_arm else None
    return wire(store, settings, publisher or publisher_from_env(os.environ), clock, arm)


_settings: Settings | None = None
_reading = threading.Lock()


def app_settings() -> Settings:
    """The app settings, read once per process (the worker indexes the app and builds the services from the same
    reading; a changed app setting restarts the app on Azure)."""
    global _settings
    if _settings is None:
        with _reading:
            if _settings is None:
                _settings = Settings.from_env()
    return _settings


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
                _services = build_services(app_settings())
    return _services


GATEWAY_LOGS = ("GATEWAY_LOGS_STORAGE",)


def gateway_logs(settings: Settings, env: Mapping[str, str] | None = None, *, store: Store | None = None,
                 clock: Callable[[], datetime] = system_clock) -> GatewayLogs | None:
    """The gateway logs' ingest over the archive GATEWAY_LOGS_STORAGE names (a connection string or its identity-based
    forms) and the store (the process-wide one unless given); None when GATEWAY_LOGS_STORAGE is not set."""
    env = os.environ if env is None else env
    archived = connection_setting(GATEWAY_LOGS, "blob", env) is not None
    if not archived and not settings.gateway_logs_eventhub:
        return None
    store = store if store is not None else services().store
    archive = None
    if archived:  # without it the stream route brings every record, and a run only rolls up and applies retention
        client = blob_service_client(env, prefixes=GATEWAY_LOGS, retry_total=settings.storage_retry_total)
        archive = BlobArchive(client.get_container_client(settings.gateway_logs_container))
    covered, streaming = settings.streamed_services, bool(settings.gateway_logs_eventhub)
    return GatewayLogs(archive, store, store, store, clock, settings, container=settings.gateway_logs_container,
                       streamed=lambda service: streaming and streamed(service, covered))


def gateway_log_stream(settings: Settings, *, store: Store | None = None, clock: Callable[[], datetime] = system_clock) -> GatewayLogStream:
    """The stream route's counter over the store (the process-wide one unless given)."""
    store = store if store is not None else services().store
    return GatewayLogStream(store, store, store, clock, settings.gateway_logs_container, settings.streamed_services)


def activity_log_stream(services_: Services | None = None) -> ActivityLogStream:
    wired = services_ if services_ is not None else services()
    return ActivityLogStream(wired.store, wired.store, audit_writer(wired), wired.clock)


ACTIVITY_LOGS = ("ACTIVITY_LOGS_STORAGE",)


def audit_writer(services: Services) -> AuditWriter:
    """The one writer of audit records (the archive's sink and the backfill), over the services' store and row writer."""
    s = services.settings
    rows = RowWriter(services.store, AlertOutbox(services.store, LoggingAlertPublisher()), s.flag_policy, services.clock, s.conflict_retries,
                     services.status, index=AccessIndex(services.store))
    return AuditWriter(services.store, services.store, services.store, rows, services.clock, ids_only=s.audit_caller_details == "object-id",
                       bad_container=s.activity_logs_container, status=services.status)


def activity_logs(settings: Settings, env: Mapping[str, str] | None = None, *, services_: Services | None = None,
                  clock: Callable[[], datetime] | None = None) -> ActivityLogs | None:
    """The Activity Log archive's ingest over ACTIVITY_LOGS_STORAGE (a connection string or its identity-based forms)
    and the services (the process-wide ones unless given); None when ACTIVITY_LOGS_STORAGE is not set."""
    env = os.environ if env is None else env
    if connection_setting(ACTIVITY_LOGS, "blob", env) is None:
        return None
    client = blob_service_client(env, prefixes=ACTIVITY_LOGS, retry_total=settings.storage_retry_total)
    wired = services_ if services_ is not None else services()
    archive = BlobArchive(client.get_container_client(settings.activity_logs_container))
    return ActivityLogs(archive, wired.store, wired.store, audit_writer(wired), clock or wired.clock)


_activity_logs: list[ActivityLogs | None] = []
_gateway_logs: list[GatewayLogs | None] = []  # built once per process: [] until then
_building_logs = threading.Lock()  # not _building: the build asks services() for the store


def _once(cache: list[Any], build: Callable[[], Any]) -> Any:
    """What `build` gives, built on first use and kept in `cache` for the process's later runs."""
    if not cache:
        with _building_logs:
            if not cache:
                cache.append(build())
    return cache[0]


def process_activity_logs() -> ActivityLogs | None:
    """The activity_logs timer's ingest, built on first use from the process's settings and services, and reused."""
    built: ActivityLogs | None = _once(_activity_logs, lambda: activity_logs(app_settings()))
    return built


def process_gateway_logs() -> GatewayLogs | None:
    """The timer's ingest, built on first use from the process's settings and services, and reused."""
    built: GatewayLogs | None = _once(_gateway_logs, lambda: gateway_logs(app_settings()))
    return built


_gateway_log_stream: list[GatewayLogStream] = []
_activity_log_stream: list[ActivityLogStream] = []


def process_gateway_log_stream() -> GatewayLogStream:
    built: GatewayLogStream = _once(_gateway_log_stream, lambda: gateway_log_stream((wired := services()).settings, clock=wired.clock))
    return built


def process_activity_log_stream() -> ActivityLogStream:
    built: ActivityLogStream = _once(_activity_log_stream, activity_log_stream)
    return built


def ingest(logs: GatewayLogs | ActivityLogs | None) -> None:
    """One run of a log timer: nothing when its storage setting is not set."""
    if logs is not None:
        logs.ingest()


def health_report() -> dict[str, Any]:
    """GET /api/health's document over the process-wide services; raises when they cannot be built or
    the store cannot be read (the HTTP handler answers 503)."""
    return services().health.report()


def take_count_snapshots() -> int:
    """The `count_snapshots` timer's work: today's counts of every service (the summary) into its snapshot row."""
    built = services()
    return take_snapshots(built.queries.summary(), built.store, built.clock())


def install(replacement: Services | None) -> None:
    """Use these services (tests, the demo, the benchmark), or None to build from settings again (read again too)."""
    global _services, _settings
    with _building:
        _services = replacement
        _gateway_logs.clear()
        _activity_logs.clear()
        _gateway_log_stream.clear()
        _activity_log_stream.clear()
        if replacement is None:
            with _reading:
                _settings = None
