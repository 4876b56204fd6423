"""The daily count snapshots: once a day (COUNT_SNAPSHOT_SCHEDULE) each service's live and deleted counts per kind,
and per workspace, as the summary has them, written to one row per service and UTC day (shared.store.keys,
`snapshot_keys`). Writing the day's row again replaces it: a timer that fires twice, or late, leaves one row per day,
holding that day's last counts. The summary reads them back (shared.queries.summary) for the change over 7 and 30 days."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.kinds import Kind
from shared.store.keys import snapshot_entity
from shared.store.long_text import write_long
from shared.store.ports import Table, TableWriter

log = logging.getLogger("apim_inventory.snapshots")
LIVE, DELETED = "Live_", "Deleted_"


def snapshot_rows(summary: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A row per service of the summary document (`summarize`'s, over every workspace): its counts at `now`."""
    by_service: dict[str, dict[str, Any]] = {}
    for item in summary["resources"]:
        columns = by_service.setdefault(str(item["service"]), {"Service": item["service"], "TakenAt": now})
        columns[LIVE + str(item["kind"])] = int(item["live"])
        columns[DELETED + str(item["kind"])] = int(item["deleted"])
    spaces: dict[str, list[dict[str, Any]]] = {}
    for item in summary.get("workspaces", []):
        spaces.setdefault(str(item["service"]), []).append({k: item[k] for k in (Kind.WORKSPACE.value, "kind", "live", "deleted")})
    rows = []
    for service, columns in sorted(by_service.items()):
        entity = snapshot_entity(service.lower(), now, columns)
        write_long(entity, "Workspaces", json.dumps(spaces.get(service, []), separators=(",", ":")))
        rows.append(entity)
    return rows


def take_snapshots(summary: Mapping[str, Any], writer: TableWriter, now: datetime) -> int:
    """Write today's snapshot of every service (storage errors propagate: the timer runs again); how many."""
    rows = snapshot_rows(summary, now)
    writer.upsert(Table.STATUS, rows)
    log.info("count snapshots: %d services at %s", len(rows), now.isoformat())
    return len(rows)
