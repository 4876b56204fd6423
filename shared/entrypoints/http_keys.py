"""GET /api/keys: the live subscriptions whose keys were not regenerated through Resource Manager in a window
(shared.queries.keys), paged, answered as shared.entrypoints.http_api answers."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.entrypoints.http_api import _params, answer
from shared.queries.inventory import InventoryQueries
from shared.queries.keys import old_keys, parse_older_than
from shared.queries.usage import MAX_TOP, parse_count
from shared.store.ports import TableReader

KEYS_TOP = 100


def get_keys(req: func.HttpRequest, queries: InventoryQueries, reader: TableReader) -> func.HttpResponse:
    """GET /api/keys?olderThan=90d&service=&top=&continuationToken=: `top` (1-1000, default 100) a page."""

    def work() -> dict[str, Any]:
        params = _params(req, {"olderThan", "service", "top", "continuationToken"})
        service = queries.known_service(params["service"]) if params.get("service") else None
        return old_keys(reader, queries.clock(), parse_older_than(params.get("olderThan")), service,
                        top=parse_count(params.get("top"), "top", KEYS_TOP, MAX_TOP), continuation=params.get("continuationToken") or None)

    return answer(work)
