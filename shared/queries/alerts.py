"""`alerts`: the alert outbox as it is: the alerts still pending, and those published (to the topic, or only to the log
when no topic is configured), newest first.

Requests: one query of the pending partition, and (unless only the pending are asked for) one key range over the
sent partitions of the UTC days from `since`'s on: what it returns is the answer, bar the alerts of `since`'s own
day raised before it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.store.keys import PENDING_ALERTS, pending_alerts, sent_alerts_from
from shared.store.outbox import LOG
from shared.store.ports import Condition, Entity, TableReader

PENDING, SENT, LOGGED = PENDING_ALERTS, "sent", "logged"  # an alert's state: its partition's name while pending


def outbox_alerts(reader: TableReader, *, pending_only: bool = False, since: datetime | None = None) -> list[dict[str, Any]]:
    """The alerts raised at or after `since` (all that the outbox keeps when None), newest first; each with its
    `state`: pending, sent (to the topic) or logged."""
    raised = (Condition("DetectedAt", "ge", since),) if since is not None else ()
    queries = [pending_alerts()] if pending_only else [pending_alerts(), sent_alerts_from(since)]
    queries = [replace(query, conditions=(*query.conditions, *raised)) for query in queries]
    found = [alert for query in queries for alert in map(_alert, reader.page(query, None)[0])]
    return sorted(found, key=lambda a: (a["detectedAt"], a["id"]), reverse=True)


def _alert(entity: Entity) -> dict[str, Any]:
    pending = entity["PartitionKey"] == PENDING_ALERTS
    state = PENDING if pending else LOGGED if entity.get("SentTo") == LOG else SENT
    try:
        data = json.loads(entity.get("Data") or "{}")
    except ValueError:
        data = {}
    return {"id": entity["RowKey"], "type": entity.get("AlertType"), "state": state, "detectedAt": entity.get("DetectedAt"),
            "sentAt": None if pending else entity.get("SentAt"), "source": entity.get("Source"), "subject": entity.get("Subject"),
            "service": data.get("service"), "data": data}
