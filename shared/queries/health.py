"""The health report behind GET /api/health: is the store reachable, when did the inventory last change, when did each APIM
service last send an event (a silent instance shows as an old time), how many events were rejected in
the last 24 hours, and each sync in progress. Three queries: the status rows (one partition), the sync
checkpoints (one partition), and the rejected records of
yesterday's and today's partitions, filtered on ReceivedAt. Every answer names the Python and the
`azure-functions` library this process runs, so an operator can see that the pinned library is in use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.outcomes import SyncPhase
from shared.store.keys import rejected_from, status_rows, sync_rows
from shared.store.ports import Condition, TableReader

log = logging.getLogger("apim_inventory.health")
DAY = timedelta(hours=24)


class HealthReporter:
    """GET /api/health's document over the store's read side, at the clock's time."""

    def __init__(self, reader: TableReader, clock: Callable[[], datetime]) -> None:
        self._reader = reader
        self._clock = clock

    def report(self) -> dict[str, Any]:
        return report(self._reader, self._clock())


def in_progress(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """What the health document shows of a sync whose checkpoint row is not done."""
    if checkpoint.get("Phase") == SyncPhase.DONE:
        return None
    return {"startedAt": checkpoint.get("StartedAt"), "phase": checkpoint.get("Phase"), "listed": checkpoint.get("Listed"),
            "invocations": checkpoint.get("Invocations"), "leaseUntil": checkpoint.get("LeaseUntil")}


def report(reader: TableReader, now: datetime) -> dict[str, Any]:
    """The health document; storage errors propagate."""
    rows = [row.entity for page in reader.scan(status_rows()) for row in page]
    services = sorted(({"service": r["Service"], "lastEventTime": r.get("LastEventTime"),
                        "lastReceivedAt": r.get("LastReceivedAt"), "lastAppliedAt": r.get("LastAppliedAt"),
                        "lastSyncAt": r.get("LastSyncAt"), "lastCompleteSyncAt": r.get("LastCompleteSyncAt"),
                        "idleSeconds": int((now - r["LastReceivedAt"]).total_seconds()) if r.get("LastReceivedAt") else None}
                       for r in rows), key=lambda s: str(s["service"]).lower())
    syncing = {str(r.entity["Service"]): state for page in reader.scan(sync_rows()) for r in page if (state := in_progress(r.entity))}
    for entry in services:
        entry["syncInProgress"] = syncing.pop(str(entry["service"]), None)
    services += [{"service": name, "syncInProgress": state} for name, state in sorted(syncing.items())]  # a first sync
    applied = [s["lastAppliedAt"] for s in services if s["lastAppliedAt"] is not None]
    window = rejected_from(now - DAY, now + DAY, (Condition("ReceivedAt", "ge", now - DAY),))
    rejected = sum(len(page) for page in reader.scan(window, select=("ReceivedAt",)))
    return {"status": "ok", "checkedAt": now, "storage": {"reachable": True}, "lastAppliedAt": max(applied, default=None),
            "rejectedLast24Hours": rejected, "services": services}
