"""The columns the command prints, in one place: each kind's listing, and each other table. `-o table` and `-o csv`
print the same columns, whether or not rows have the details (empty cells where they don't); `--all-columns` appends
every other column of the rows; `-o json` keeps every column. Later versions only append to these lists (scripts read
them by position too): docs/schema.md, "The command's columns", lists them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain.kinds import IN_WORKSPACE, Kind
from shared.entrypoints.output import when
from shared.store.ports import Entity

_ROW = ("Service", "Kind", "Path", "State")
_EVENT = ("DeletedAt", "LastEventType", "LastEventTime")
# `list KIND`: the identity and state of a row, the kind's own columns (details from ARM included), then its last event.
LIST_COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.USER: (*_ROW, "Email", "UserState", *_EVENT),
    Kind.API: (*_ROW, "Revision", "DisplayName", "ApiPath", "IsCurrent", *_EVENT),
    Kind.API_RELEASE: (*_ROW, "ReleaseApiId", "ReleasedAt", *_EVENT),
    Kind.PRODUCT: (*_ROW, "DisplayName", "ProductState", "ApprovalRequired", *_EVENT),
    Kind.SUBSCRIPTION: (*_ROW, "DisplayName", "SubscriptionState", "ExpirationDate", *_EVENT),
    Kind.GATEWAY: (*_ROW, "LocationCity", *_EVENT),
    Kind.GATEWAY_API: (*_ROW, "DisplayName", "ApiPath", *_EVENT),
    Kind.GATEWAY_HOSTNAME_CONFIGURATION: (*_ROW, "Hostname", *_EVENT),
    Kind.GATEWAY_CERTIFICATE_AUTHORITY: (*_ROW, "IsTrusted", *_EVENT),
    Kind.GATEWAY_INSTANCE: (*_ROW, "TokenStatus", "TokenExpiresAt", *_EVENT),
    Kind.BACKEND: (*_ROW, "Url", *_EVENT),
    Kind.CIRCUIT_BREAKER_RULE: (*_ROW, "BreakerState", "ExpectedCloseAt", "StuckOpen", "ConfiguredTripDuration", *_EVENT),
    Kind.PRODUCT_API: (*_ROW, "Product", "DisplayName", "ApiPath", "LinkedApiId", *_EVENT),
    Kind.PRODUCT_GROUP: (*_ROW, "Product", "DisplayName", "LinkedGroupId", *_EVENT),
    Kind.WORKSPACE: (*_ROW, "DisplayName", "Description", *_EVENT),
}
# A workspace's rows: `Workspace` last in the CSV (columns are only appended); the table shows it after `Service`, and
# only when a row is in a workspace (`for_table`).
WORKSPACE_COLUMN = "Workspace"
for _kind in (*IN_WORKSPACE, Kind.WORKSPACE):
    LIST_COLUMNS[_kind] = (*LIST_COLUMNS[_kind], WORKSPACE_COLUMN)
# Caller: who made the change, from the audit record joined with the event (or the audit record's own entry).
HISTORY_COLUMNS = ("EventTime", "Path", "EventType", "Change", "Stale", "Duplicates", "EventId", "Values", "Caller")
FLAG_COLUMNS = ("Service", "Kind", "Path", "Flag", "Detail")
REJECTED_COLUMNS = ("ReceivedAt", "Reason", "EventId", "EventType", "Subject", "Message")
CHANGES_COLUMNS = ("Service", "Kind", "Path", "Change", "EventType", "Caller")  # after the time column: EventTime or RecordedAt
CHANGES_CSV_COLUMNS = ("EventTime", "RecordedAt", "Service", "ResourceKind", "Path", "Change", "EventType", "EventId", "Stale",
                       WORKSPACE_COLUMN, "Caller")
SUMMARY_CSV_COLUMNS = ("Metric", "Window", "Service", "Kind", "Count", WORKSPACE_COLUMN)  # Workspace: a workspace's counts
PURGE_COLUMNS = ("What", "Table", "Before")  # then Deleted, or WouldDelete for a dry run
# `access --api`: the table's two parts (can call, cannot call by state) share these; the CSV is one list, so it adds CanCall.
GRANT_COLUMNS = ("Subscription", "Owner", "SubscriptionState", "Via", "Product", "ExpirationDate")
GRANT_CSV_COLUMNS = (*GRANT_COLUMNS, "CanCall", WORKSPACE_COLUMN)  # Workspace: the subscription's scope's ("" at the service)
USER_COLUMNS = ("Subscription", "SubscriptionState", "CanCall", "Via", "Product", "Api")  # `access --user`
USER_CSV_COLUMNS = (*USER_COLUMNS, WORKSPACE_COLUMN)
EXPIRING_COLUMNS = ("Service", "Kind", "Path", "ExpiresAt", "Status", "SubscriptionState")
EXPIRING_CSV_COLUMNS = ("Service", "Kind", "Path", "ExpiresAt", "Expired", "SubscriptionState", "ResourceId")
ALERT_COLUMNS = ("DetectedAt", "State", "Type", "Service", "Subject", "SentAt")
ALERT_CSV_COLUMNS = ("id", "type", "state", "detectedAt", "sentAt", "service", "subject")
SWEEP_COLUMNS = ("Sweep", "Rows", "Changed")  # then AlertsSent, or AlertsLogged when no topic is set, then AlertsPending
SWEEP_PREVIEW_COLUMNS = ("Sweep", "Rows", "WouldChange", "WouldRaise")  # `sweep --dry-run`: per sweep, then each change:
SWEEP_CHANGE_COLUMNS = ("Sweep", "Service", "Kind", "Path", "Change", "Alerts")  # the CSV's rows (the table omits Sweep)
# The usage reports (`usage`, `unused`, `usage rejected`): the JSON answer's field names, in the table (as titles) and the CSV.
USAGE_COLUMNS = ("service", "kind", "path", "total", "successful", "failed", "unauthorized", "other", "backendFailed", "failureRate",
                 "averageMs", "maxMs", "lastUsedAt")
USAGE_CSV_COLUMNS = (*USAGE_COLUMNS, "known")  # known: true, false, or empty where the inventory keeps no row (operations)
UNUSED_COLUMNS = ("service", "kind", "path", "displayName", "createdAt", "lastUsedAt", "trackedSince")
UNUSED_CSV_COLUMNS = (*UNUSED_COLUMNS, WORKSPACE_COLUMN.lower())
BAD_LINE_CSV_COLUMNS = ("seenAt", "blob", "offset", "reason", "excerpt")
# `keys --older-than`: the JSON answer's field names.
KEYS_COLUMNS = ("service", "path", "owner", "status", "createdAt", "primaryKeyRegeneratedAt", "secondaryKeyRegeneratedAt")
KEYS_CSV_COLUMNS = (*KEYS_COLUMNS, "primaryKey", "secondaryKey", "displayName", WORKSPACE_COLUMN.lower())


def for_table(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The table's columns: `header` with `Workspace` right after `Service` when a row is in a workspace, else without
    it (an inventory with no workspaces prints as it always has)."""
    rest = [column for column in header if column != WORKSPACE_COLUMN]
    if WORKSPACE_COLUMN not in header or not any(row.get(WORKSPACE_COLUMN) for row in rows):
        return tuple(rest)
    at = rest.index("Service") + 1 if "Service" in rest else len(rest)
    return (*rest[:at], WORKSPACE_COLUMN, *rest[at:])


CALLER_COLUMN = "Caller"


def with_caller(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The table's columns: `Caller` only when a row names one (an inventory with no Activity Log prints as it did)."""
    return tuple(header) if any(row.get(CALLER_COLUMN) for row in rows) else tuple(c for c in header if c != CALLER_COLUMN)


def with_all(header: Sequence[str], rows: Iterable[Mapping[str, Any]], every: bool) -> tuple[str, ...]:
    """`header`, and with `every` (`--all-columns`) the rows' other columns after it, in name order: the bookkeeping
    columns (PartitionKey, RowKey, DetailsKey, LastDeleteEventKey, ...) appear only then."""
    if not every:
        return tuple(header)
    seen = {column for row in rows for column in row}
    return (*header, *sorted(seen.difference(header)))


def caller_text(entry: Mapping[str, Any]) -> str:
    """Who, in one cell: `user alice@contoso.com`, `servicePrincipal app-id`, with `(failed)` for a failed attempt."""
    if not entry.get("callerKind"):
        return ""
    who = entry.get("callerUpn") or entry.get("callerName") or entry.get("callerAppId") or entry.get("callerObjectId") or "?"
    return f"{entry['callerKind']} {who}" + (f" ({entry['result']})" if entry.get("result") not in (None, "", "succeeded") else "")


def flag_row(row: Entity, now: datetime) -> Entity:
    """A flagged row with its Flag and Detail, as the table and the CSV show them."""
    if row.get("Kind") == Kind.GATEWAY_INSTANCE:
        expires = row.get("TokenExpiresAt")
        gone = row.get("TokenStatus") == "expired" or (isinstance(expires, datetime) and expires <= now)
        flag, detail = f"token {row.get('TokenStatus')}", f"{'expired' if gone else 'expires'} {when(expires)}"
    else:
        flag = "breaker stuck open" if row.get("StuckOpen") else "breaker open"
        detail = f"opened {when(row.get('OpenedAt'))}, expected to close {when(row.get('ExpectedCloseAt'))}"
    return {**row, "Flag": flag, "Detail": detail}
