"""The HTTP API's questions of time: GET /api/expiring and GET /api/alerts, answered as shared.entrypoints.http_api
answers (400 for bad parameters, 503 when the store cannot be read)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.entrypoints.http_api import _params, answer
from shared.queries.alerts import outbox_alerts
from shared.queries.expiring import expiring, parse_within
from shared.queries.inventory import parse_bool, parse_when
from shared.store.ports import TableReader

PENDING = "pending"  # GET /api/alerts?pending=true: only the alerts not yet published


def get_expiring(req: func.HttpRequest, reader: TableReader, clock: Callable[[], datetime]) -> func.HttpResponse:
    """GET /api/expiring?within= (default 30d): gateway tokens and subscriptions expiring by now + within, the expired
    first, then the soonest; nothing is written."""

    def work() -> dict[str, Any]:
        params = _params(req, {"within"})
        return expiring(reader, clock(), parse_within(params.get("within") or None, "within"))

    return answer(work)


def get_alerts(req: func.HttpRequest, reader: TableReader, clock: Callable[[], datetime]) -> func.HttpResponse:
    """GET /api/alerts?pending=&since=: the outbox's alerts, newest first, each pending, sent or logged."""

    def work() -> dict[str, Any]:
        params = _params(req, {PENDING, "since"})
        found = outbox_alerts(reader, pending_only=parse_bool(params.get(PENDING), PENDING),
                              since=parse_when(params.get("since"), "since", clock()))
        return {"count": len(found), "items": found}

    return answer(work)
