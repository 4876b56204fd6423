"""GET /api/health: is the store reachable, when did the inventory last change, when did each APIM
service last send an event (a silent instance shows as an old time), how many events were rejected in
the last 24 hours. Two queries: the status rows (one partition), and the rejected records of
yesterday's and today's partitions, filtered on ReceivedAt. Every answer names the Python and the
`azure-functions` library this process runs, so an operator can see that the pinned library is in use."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import azure.functions as func

from .errors import one_line
from .output import to_json
from .repository import Condition, InventoryRepository, Query
from .status import STATUS_PARTITION

if TYPE_CHECKING:
    from .bootstrap import Services

log = logging.getLogger("apim_inventory.health")
DAY = timedelta(hours=24)
# The imported module's own version: a worker's bundled copy, if it were loaded instead of the pinned one, shows
# here, where the installed distribution's metadata (importlib.metadata) would still name the pin.
RUNTIME = {"python": platform.python_version(), "azureFunctions": func.__version__}


def report(repo: InventoryRepository, now: datetime) -> dict[str, Any]:
    """The health document; storage errors propagate."""
    rows = [row.entity for page in repo.scan(Query("status", conditions=(Condition("PartitionKey", "eq", STATUS_PARTITION),)))
            for row in page]
    services = sorted(({"service": r["Service"], "lastEventTime": r.get("LastEventTime"),
                        "lastReceivedAt": r.get("LastReceivedAt"), "lastAppliedAt": r.get("LastAppliedAt"),
                        "lastSyncAt": r.get("LastSyncAt"), "lastCompleteSyncAt": r.get("LastCompleteSyncAt"),
                        "idleSeconds": int((now - r["LastReceivedAt"]).total_seconds()) if r.get("LastReceivedAt") else None}
                       for r in rows), key=lambda s: str(s["service"]).lower())
    applied = [s["lastAppliedAt"] for s in services if s["lastAppliedAt"] is not None]
    window = Query("rejected", f"{now - DAY:%Y%m%d}", f"{now + DAY:%Y%m%d}", (Condition("ReceivedAt", "ge", now - DAY),))
    rejected = sum(len(page) for page in repo.scan(window, select=("ReceivedAt",)))
    return {"status": "ok", "checkedAt": now, "storage": {"reachable": True}, "lastAppliedAt": max(applied, default=None),
            "rejectedLast24Hours": rejected, "services": services}


def get_health(req: func.HttpRequest, services: Callable[[], Services]) -> func.HttpResponse:
    """200 with the report, or 503 with the reason when the store cannot be used. Never raises."""
    try:
        built = services()
        status, body = 200, report(built.processor.repo, built.queries.clock())
    except Exception as exc:
        log.warning("health: the inventory store cannot be used: %s: %s", type(exc).__name__, one_line(exc))
        status, body = 503, {"status": "unavailable", "checkedAt": datetime.now(timezone.utc),
                             "storage": {"reachable": False, "error": f"{type(exc).__name__}: {one_line(exc, 300)}"}}
    body["runtime"] = RUNTIME
    return func.HttpResponse(to_json(body), status_code=status, mimetype="application/json", charset="utf-8")
