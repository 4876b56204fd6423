"""App settings, read once. docs/settings.md lists every one."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from shared.domain.booleans import SETTING_FALSE, SETTING_TRUE, parse_bool
from shared.domain.errors import InvalidSettings, PermanentEventError
from shared.domain.flags import FlagPolicy
from shared.domain.resources import parse_service_id
from shared.integrations.arm import DEFAULT_ENDPOINT, LOOPBACK

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
# Settings that hold a URL, checked when the settings are read; the storage ones under each connection prefix.
URL_SETTINGS = ("ARM_ENDPOINT", "ARM_AUDIENCE", "ALERTS_TOPIC_ENDPOINT")
STORAGE_PREFIXES = ("INVENTORY_STORAGE", "AzureWebJobsStorage", "DEAD_LETTER_STORAGE", "GATEWAY_LOGS_STORAGE")
STORAGE_URL_SUFFIXES = ("__tableServiceUri", "__blobServiceUri", "__serviceUri")


@dataclass(frozen=True)
class Settings:
    inventory_table: str = "ApimInventory"
    history_table: str = "ApimInventoryHistory"
    rejected_table: str = "ApimInventoryRejected"
    outbox_table: str = "ApimInventoryAlerts"
    storage_retry_total: int = 3
    conflict_retries: int = 10
    cache_size: int = 10_000
    token_sweep_schedule: str = "0 */15 * * * *"
    breaker_sweep_schedule: str = "0 */5 * * * *"
    token_warning_days: float = 7.0
    breaker_grace_minutes: float = 5.0
    enrich_from_arm: bool = False
    arm_endpoint: str = DEFAULT_ENDPOINT
    arm_audience: str = DEFAULT_ENDPOINT
    arm_retry_after_limit: float = 30.0
    reconcile_schedule: str = "0 30 */6 * * *"
    reconcile_services: tuple[str, ...] = ()
    status_table: str = "ApimInventoryStatus"
    purge_schedule: str = "0 0 3 * * *"
    count_snapshot_schedule: str = "0 55 23 * * *"  # near the day's end: a day's snapshot holds its last counts
    tombstone_retention_days: float = 90.0
    history_retention_days: float = 365.0
    rejected_retention_days: float = 30.0
    sent_alerts_retention_days: float = 30.0
    sync_time_budget_seconds: float = 480.0
    sync_interval_hours: float = 0.0
    arm_reads_reserve: int = 100
    usage_table: str = "ApimInventoryUsage"
    gateway_logs_container: str = "insights-logs-gatewaylogs"
    gateway_logs_schedule: str = "0 */5 * * * *"
    usage_hourly_days: float = 7.0
    usage_retention_days: float = 400.0
    activity_logs_container: str = "insights-activity-logs"
    activity_logs_schedule: str = "0 */10 * * * *"
    audit_join_window_minutes: float = 5.0
    audit_retention_days: float = 365.0
    audit_caller_details: str = "full"  # full | object-id (only the caller's kind and ids: no name, UPN or IP)
    gateway_logs_eventhub: str = ""  # the hub the stream route reads; empty: no stream route
    gateway_logs_streamed_services: tuple[str, ...] = ("*",)  # whose gateway logs the stream route counts (the archive the rest)
    logs_eventhub_namespace: str = ""  # names the stream checkpoints' hub, with the hub's name and the consumer group

    @property
    def streamed_services(self) -> frozenset[str] | None:
        """The services whose gateway logs the stream route counts (lower case), None for every service (`*`). The
        archive route leaves them out while GATEWAY_LOGS_EVENTHUB is set."""
        names = {name.lower() for name in self.gateway_logs_streamed_services}
        return None if "*" in names else frozenset(names)

    def __post_init__(self) -> None:
        tables = (self.inventory_table, self.history_table, self.rejected_table, self.outbox_table)
        for name in tables:
            if not _TABLE_NAME.match(name):
                raise InvalidSettings(f"table name {name!r}: Table Storage wants 3-63 letters and digits, starting with a letter")
        if len({name.lower() for name in tables}) != len(tables):
            raise InvalidSettings("the inventory, history, rejected and alert tables must have different names")
        if self.token_warning_days < 0 or self.breaker_grace_minutes < 0:
            raise InvalidSettings("TOKEN_WARNING_DAYS and CIRCUIT_BREAKER_GRACE_MINUTES must not be negative")
        if not _TABLE_NAME.match(self.status_table) or self.status_table.lower() in {name.lower() for name in tables}:
            raise InvalidSettings(f"INVENTORY_STATUS_TABLE {self.status_table!r} must be a valid table name, different from the others")
        if not _TABLE_NAME.match(self.usage_table) or self.usage_table.lower() in {n.lower() for n in (*tables, self.status_table)}:
            raise InvalidSettings(f"INVENTORY_USAGE_TABLE {self.usage_table!r} must be a valid table name, different from the others")
        if not _CONTAINER_NAME.match(self.gateway_logs_container):
            raise InvalidSettings(f"GATEWAY_LOGS_CONTAINER {self.gateway_logs_container!r}: Blob Storage wants 3-63 lower-case letters, "
                                  "digits and single hyphens")
        if self.usage_hourly_days < 2:  # the summary's last day reads 25 hourly partitions: none of them may be rolled
            raise InvalidSettings("USAGE_HOURLY_DAYS must be at least 2")
        if not _CONTAINER_NAME.match(self.activity_logs_container):
            raise InvalidSettings(f"ACTIVITY_LOGS_CONTAINER {self.activity_logs_container!r}: Blob Storage wants 3-63 lower-case letters, digits "
                                  "and hyphens")
        if self.audit_caller_details not in ("full", "object-id"):
            raise InvalidSettings(f"AUDIT_CALLER_DETAILS must be full or object-id, not {self.audit_caller_details[:40]!r}")
        if self.audit_join_window_minutes <= 0:
            raise InvalidSettings("AUDIT_JOIN_WINDOW_MINUTES must be positive")
        if min(self.retention_days.values()) < 1:
            raise InvalidSettings("the RETENTION_*_DAYS settings must be at least 1")
        if self.sync_time_budget_seconds <= 0 or self.sync_interval_hours < 0 or self.arm_reads_reserve < 0:
            raise InvalidSettings("SYNC_TIME_BUDGET_SECONDS must be positive; SYNC_INTERVAL_HOURS and ARM_READS_RESERVE not negative")
        for service in self.reconcile_services:
            try:
                parse_service_id(service)
            except PermanentEventError as exc:
                raise InvalidSettings(f"RECONCILE_SERVICES: {exc.message}") from None

    @property
    def uses_arm(self) -> bool:
        return self.enrich_from_arm or bool(self.reconcile_services)

    @property
    def flag_policy(self) -> FlagPolicy:
        return FlagPolicy(timedelta(days=self.token_warning_days), timedelta(minutes=self.breaker_grace_minutes))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        check_urls(env)
        return cls(
            inventory_table=env.get("INVENTORY_TABLE", cls.inventory_table),
            history_table=env.get("INVENTORY_HISTORY_TABLE", cls.history_table),
            rejected_table=env.get("INVENTORY_REJECTED_TABLE", cls.rejected_table),
            outbox_table=env.get("INVENTORY_ALERTS_TABLE", cls.outbox_table),
            storage_retry_total=_whole(env, "INVENTORY_STORAGE_RETRY_TOTAL", cls.storage_retry_total),
            conflict_retries=_whole(env, "INVENTORY_CONFLICT_RETRIES", cls.conflict_retries),
            cache_size=_whole(env, "INVENTORY_CACHE_SIZE", cls.cache_size),
            token_sweep_schedule=env.get("GATEWAY_TOKEN_SWEEP_SCHEDULE", cls.token_sweep_schedule),
            breaker_sweep_schedule=env.get("CIRCUIT_BREAKER_SWEEP_SCHEDULE", cls.breaker_sweep_schedule),
            token_warning_days=_number(env, "TOKEN_WARNING_DAYS", cls.token_warning_days),
            breaker_grace_minutes=_number(env, "CIRCUIT_BREAKER_GRACE_MINUTES", cls.breaker_grace_minutes),
            enrich_from_arm=_flag(env.get("ENRICH_FROM_ARM", "false"), "ENRICH_FROM_ARM"),
            arm_endpoint=env.get("ARM_ENDPOINT", cls.arm_endpoint),
            arm_audience=env.get("ARM_AUDIENCE", cls.arm_audience),
            arm_retry_after_limit=_number(env, "ARM_RETRY_AFTER_LIMIT_SECONDS", cls.arm_retry_after_limit),
            reconcile_schedule=env.get("RECONCILE_SCHEDULE", cls.reconcile_schedule),
            reconcile_services=tuple(s for s in re.split(r"[\s,;]+", env.get("RECONCILE_SERVICES", "")) if s),
            status_table=env.get("INVENTORY_STATUS_TABLE", cls.status_table),
            purge_schedule=env.get("PURGE_SCHEDULE", cls.purge_schedule),
            count_snapshot_schedule=env.get("COUNT_SNAPSHOT_SCHEDULE", cls.count_snapshot_schedule),
            tombstone_retention_days=_number(env, "RETENTION_TOMBSTONE_DAYS", cls.tombstone_retention_days),
            history_retention_days=_number(env, "RETENTION_HISTORY_DAYS", cls.history_retention_days),
            rejected_retention_days=_number(env, "RETENTION_REJECTED_DAYS", cls.rejected_retention_days),
            sent_alerts_retention_days=_number(env, "RETENTION_SENT_ALERTS_DAYS", cls.sent_alerts_retention_days),
            sync_time_budget_seconds=_number(env, "SYNC_TIME_BUDGET_SECONDS", cls.sync_time_budget_seconds),
            sync_interval_hours=_number(env, "SYNC_INTERVAL_HOURS", cls.sync_interval_hours),
            arm_reads_reserve=_whole(env, "ARM_READS_RESERVE", cls.arm_reads_reserve),
            usage_table=env.get("INVENTORY_USAGE_TABLE", cls.usage_table),
            gateway_logs_container=env.get("GATEWAY_LOGS_CONTAINER", cls.gateway_logs_container),
            gateway_logs_schedule=env.get("GATEWAY_LOGS_SCHEDULE", cls.gateway_logs_schedule),
            usage_hourly_days=_number(env, "USAGE_HOURLY_DAYS", cls.usage_hourly_days),
            usage_retention_days=_number(env, "RETENTION_USAGE_DAYS", cls.usage_retention_days),
            activity_logs_container=env.get("ACTIVITY_LOGS_CONTAINER", cls.activity_logs_container),
            activity_logs_schedule=env.get("ACTIVITY_LOGS_SCHEDULE", cls.activity_logs_schedule),
            audit_join_window_minutes=_number(env, "AUDIT_JOIN_WINDOW_MINUTES", cls.audit_join_window_minutes),
            audit_retention_days=_number(env, "RETENTION_AUDIT_DAYS", cls.audit_retention_days),
            audit_caller_details=env.get("AUDIT_CALLER_DETAILS", cls.audit_caller_details).strip().lower(),
            gateway_logs_eventhub=env.get("GATEWAY_LOGS_EVENTHUB", "").strip(),
            gateway_logs_streamed_services=tuple(s for s in re.split(r"[\s,;]+", env.get("GATEWAY_LOGS_STREAMED_SERVICES", "*")) if s)
            or cls.gateway_logs_streamed_services,
            logs_eventhub_namespace=(env.get("GATEWAY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace")
                                     or env.get("ACTIVITY_LOGS_EVENTHUB_CONNECTION__fullyQualifiedNamespace") or "").strip().lower(),
        )

    @property
    def retention_days(self) -> dict[str, float]:
        """Days each kind of record is kept by the purge."""
        return {"tombstones": self.tombstone_retention_days, "history": self.history_retention_days,
                "rejected": self.rejected_retention_days, "sentAlerts": self.sent_alerts_retention_days,
                "usage": self.usage_retention_days, "audit": self.audit_retention_days}


def _flag(text: str, name: str) -> bool:
    value = parse_bool(text, SETTING_TRUE, SETTING_FALSE)
    if value is None:
        raise InvalidSettings(f"{name} must be true or false, not {text!r}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidSettings(f"{name} must be a whole number such as {default}, not {text[:60]!r}") from None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):  # NaN and infinities are no setting's value
        raise InvalidSettings(f"{name} must be a number such as {default:g}, not {text[:60]!r}")
    return value


def check_urls(env: Mapping[str, str]) -> None:
    """Every URL setting that is set must be an absolute http(s) URL, and plain http only to this machine: a token or
    a key never travels unencrypted (docs/settings.md)."""
    names = (*URL_SETTINGS, *(prefix + suffix for prefix in STORAGE_PREFIXES for suffix in STORAGE_URL_SUFFIXES))
    for name in names:
        text = env.get(name, "").strip()
        if text:
            check_url(name, text)


def check_url(name: str, text: str) -> None:
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:  # an unbalanced [ in the host, say
        parts, host = urlsplit(""), ""
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidSettings(f"{name} must be a URL such as {_example(name)}, not {text[:100]!r}")
    if parts.scheme == "http" and host not in LOOPBACK:
        raise InvalidSettings(f"{name} {text[:100]!r} uses plain http, which is allowed for a loopback address "
                              f"({', '.join(sorted(LOOPBACK))}) only: use https")


def _example(name: str) -> str:
    if name.startswith("ARM_"):
        return DEFAULT_ENDPOINT
    if name.startswith("ALERTS_"):
        return "https://TOPIC.REGION-1.eventgrid.azure.net/api/events"
    return f"https://ACCOUNT.{'blob' if 'blob' in name or name.startswith(('DEAD_LETTER', 'GATEWAY_LOGS')) else 'table'}.core.windows.net"
