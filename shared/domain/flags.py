"""Flags the clock keeps current: token status and stuck circuit breakers, and the alerts their
transitions raise. Pure functions of a row and the time, shared by the event path and the sweeps."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.kinds import Kind
from shared.domain.times import json_time, parse_duration

ALERT_PREFIX = "ApimInventory."


@dataclass(frozen=True)
class FlagPolicy:
    token_warning: timedelta = timedelta(days=7)
    breaker_grace: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Alert:
    """One flag transition, published as a CloudEvent. The id is stable for the transition, so a
    receiver can drop repeats."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)


TOKEN, BREAKER = "token", "breaker"  # what a flagged row is flagged for
FLAGGED_KINDS: dict[Kind, str] = {Kind.GATEWAY_INSTANCE: TOKEN, Kind.CIRCUIT_BREAKER_RULE: BREAKER}
FLAGGED_FAMILIES: tuple[Kind, ...] = tuple(kind.family for kind in FLAGGED_KINDS)  # the partitions flagged rows live in
FLAG_COLUMNS = ("TokenStatus", "BreakerState", "StuckOpen")  # what `flag_of` reads besides Kind and IsDeleted


def flag_of(row: dict[str, Any] | None) -> str | None:
    """What a row is flagged for now (a live gateway instance whose token is near expiry or expired, a live
    circuit-breaker rule that is open or stuck open), else None: what `flags` lists and the count rows keep."""
    if not row or row.get("IsDeleted"):
        return None
    kind = row.get("Kind")
    if kind == Kind.GATEWAY_INSTANCE and row.get("TokenStatus") in ("nearExpiry", "expired"):
        return TOKEN
    if kind == Kind.CIRCUIT_BREAKER_RULE and (row.get("BreakerState") == "open" or row.get("StuckOpen")):
        return BREAKER
    return None


def token_status(expires_at: datetime, now: datetime, warning: timedelta) -> str:
    if expires_at <= now:
        return "expired"
    return "nearExpiry" if expires_at <= now + warning else "valid"


def evaluate(row: dict[str, Any], now: datetime, policy: FlagPolicy) -> dict[str, Any]:
    """The row with its clock-driven columns brought up to `now`."""
    kind = row.get("Kind")
    if kind == Kind.GATEWAY_INSTANCE and row.get("TokenExpiresAt") is not None and row.get("TokenStatus") != "expired":
        # "expired" stays until a newer token event: an Expired event is believed even if its time is odd.
        return {**row, "TokenStatus": token_status(row["TokenExpiresAt"], now, policy.token_warning)}
    if kind == Kind.CIRCUIT_BREAKER_RULE:
        out = dict(row)
        # The event's trip duration, else the rule's configuration as read from ARM.
        trip = parse_duration(row.get("TripDuration") or row.get("ConfiguredTripDuration"))
        if row.get("BreakerState") == "open" and row.get("OpenedAt") is not None and trip is not None:
            out["ExpectedCloseAt"] = row["OpenedAt"] + trip
        else:
            out.pop("ExpectedCloseAt", None)
        expected = out.get("ExpectedCloseAt")
        out["StuckOpen"] = bool(row.get("BreakerState") == "open" and expected is not None and now > expected + policy.breaker_grace)
        return out
    return row


def transitions(old: dict[str, Any] | None, new: dict[str, Any], now: datetime) -> list[Alert]:
    """The alerts raised by going from `old` to `new`. Tombstones raise none."""
    if new.get("IsDeleted"):
        return []
    before = old or {}
    alerts: list[Alert] = []
    if new.get("Kind") == Kind.GATEWAY_INSTANCE:
        status = new.get("TokenStatus")
        if status != before.get("TokenStatus") and status in ("nearExpiry", "expired"):
            name = "GatewayTokenNearExpiry" if status == "nearExpiry" else "GatewayTokenExpired"
            alerts.append(_alert(name, new, now, new["TokenExpiresAt"], before.get("TokenStatus"), status))
    elif new.get("Kind") == Kind.CIRCUIT_BREAKER_RULE:
        was_open = before.get("BreakerState") == "open"
        state = "stuckOpen" if before.get("StuckOpen") else before.get("BreakerState")
        if new.get("BreakerState") == "open" and (not was_open or before.get("OpenedAt") != new.get("OpenedAt")):
            alerts.append(_alert("CircuitBreakerOpened", new, now, new["OpenedAt"], state, "open"))
        if new.get("StuckOpen") and not before.get("StuckOpen"):
            alerts.append(_alert("CircuitBreakerStuckOpen", new, now, new["OpenedAt"], "open", "stuckOpen"))
        if new.get("BreakerState") == "closed" and was_open:
            alerts.append(_alert("CircuitBreakerClosed", new, now, new["ClosedAt"], state, "closed"))
    return alerts


_DATA_COLUMNS = {
    "Gateway": "gateway", "Instance": "instance", "TokenExpiresAt": "tokenExpiresAt", "Backend": "backend",
    "Rule": "rule", "OpenedAt": "openedAt", "ExpectedCloseAt": "expectedCloseAt", "ClosedAt": "closedAt",
    "TripDuration": "tripDuration", "LastEventId": "lastEventId", "LastEventTime": "lastEventTime",
}


def _alert(name: str, row: dict[str, Any], now: datetime, anchor: datetime, old: Any, new: str) -> Alert:
    path, resource_id = str(row["Path"]), str(row["ResourceId"])
    source = resource_id[: -len(path) - 1] if resource_id.endswith("/" + path) else resource_id
    identity = f"{name}|{row['PartitionKey']}|{row['RowKey']}|{anchor.isoformat()}"
    data: dict[str, Any] = {
        "resourceId": resource_id, "service": row.get("Service"), "kind": row.get("Kind"), "path": path,
        "oldState": old, "newState": new, "detectedAt": json_time(now),
    }
    data.update({key: json_time(row[column]) for column, key in _DATA_COLUMNS.items() if row.get(column) is not None})
    return Alert(hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32], ALERT_PREFIX + name, source, path, now, data)
