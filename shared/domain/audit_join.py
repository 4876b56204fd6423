"""Who made each change: a resource's history events joined with its audit records when reading, as a pure function
of the two sets, so the order in which events and Activity Log records arrived never changes the answer.

An event (Created or Updated: `write`; Deleted: `delete`) is explained by a succeeded audit record of the same
resource (its path, without regard to case) and operation whose completion is within the window of the event's
time. Each record explains at most one event and each event has at most one record: of all such pairs, the nearest
in time are taken first (ties: the earlier event, then its id, then the record's correlation id), which is the same
whatever the input order. Records that explain no event (failed attempts, kinds with no events, changes made before
the event subscription) become entries of their own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.domain.audit import DELETE, SUCCEEDED, WRITE
from shared.domain.model import Op

EVENT_TYPE = "activityLog"  # an audit record's own entry, in history and changes
# The audit row's columns as history, changes, `-o json` and the API name them.
KEYS = {"AuditOperation": "operation", "AuditResult": "result", "AuditTime": "time", "CorrelationId": "correlationId",
        "CallerKind": "callerKind", "CallerName": "callerName", "CallerUpn": "callerUpn", "CallerAppId": "callerAppId",
        "CallerObjectId": "callerObjectId", "ClientIp": "clientIp"}
_EXPLAINED = {Op.CREATED.value: WRITE, Op.UPDATED.value: WRITE, Op.DELETED.value: DELETE}


def audit_fields(audit: Mapping[str, Any]) -> dict[str, Any]:
    return {key: audit.get(column) if audit.get(column) is not None else "" for column, key in KEYS.items()}


def own_entry(audit: Mapping[str, Any]) -> dict[str, Any]:
    """An audit record that explains no event, as a history entry (EventTime, Path, Change as events have them)."""
    return {"EventTime": audit["AuditTime"], "EventType": EVENT_TYPE, "EventId": f"{EVENT_TYPE}:{audit.get('CorrelationId', '')}",
            "Path": audit.get("Path", ""), "ResourceKind": audit.get("ResourceKind", ""), "Service": audit.get("Service", ""),
            "Change": f"{audit.get('AuditOperation', '')} {audit.get('AuditResult', '')}", "Workspace": audit.get("Workspace", ""),
            "OperationName": audit.get("OperationName", ""), "StatusCode": audit.get("StatusCode", ""), **audit_fields(audit), "auditJoined": False}


def _audit_id(audit: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(audit.get("Path", "")).lower(), str(audit.get("OperationName", "")).lower(), str(audit.get("CorrelationId", "")).lower()


def matches(events: Sequence[Mapping[str, Any]], audits: Sequence[Mapping[str, Any]], window: timedelta) -> dict[int, int]:
    """Event index → audit index, nearest pairs first, each side used once."""
    pairs: list[tuple[timedelta, datetime, str, tuple[str, str, str], int, int]] = []
    for j, audit in enumerate(audits):
        if audit.get("AuditResult") != SUCCEEDED or audit.get("AuditTime") is None:
            continue
        for i, event in enumerate(events):
            if _EXPLAINED.get(str(event.get("Change"))) != audit.get("AuditOperation"):
                continue
            if str(event.get("Path", "")).lower() != str(audit.get("Path", "")).lower():
                continue
            gap = abs(event["EventTime"] - audit["AuditTime"])
            if gap <= window:
                pairs.append((gap, event["EventTime"], str(event.get("EventId", "")), _audit_id(audit), i, j))
    found: dict[int, int] = {}
    used: set[int] = set()
    for *_, i, j in sorted(pairs):
        if i not in found and j not in used:
            found[i] = j
            used.add(j)
    return found


def joined(events: Sequence[Mapping[str, Any]], audits: Sequence[Mapping[str, Any]], window: timedelta) -> list[dict[str, Any]]:
    """The events, each explained one with its audit record's keys and `auditJoined` true, and the unmatched records as entries of their
    own, newest first (ties by id). Duplicate audit rows (one operation read twice) are one row already: natural keys."""
    unique = list({_audit_id(a): a for a in sorted(audits, key=_audit_id)}.values())
    found = matches(events, unique, window)
    # An event no record explains stays as it was (no audit keys): history without an Activity Log reads as before.
    out = [{**event, **audit_fields(unique[found[i]]), "auditJoined": True} if i in found else dict(event) for i, event in enumerate(events)]
    used = set(found.values())
    out += [own_entry(a) for j, a in enumerate(unique) if j not in used]
    return sorted(out, key=lambda e: (e["EventTime"], str(e.get("EventId", ""))), reverse=True)
