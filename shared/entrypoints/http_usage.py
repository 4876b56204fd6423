"""The HTTP API's usage reports: GET /api/usage and GET /api/unused, answered as shared.entrypoints.http_api answers
(400 for bad parameters, 404 for a service it has no logs or rows of, 503 when the store cannot be read)."""

from __future__ import annotations

from typing import Any, Protocol

import azure.functions as func

from shared.entrypoints.http_api import _params, _required, answer
from shared.queries.inventory import InventoryQueries, parse_bool, parse_when, service_name
from shared.queries.unused import parse_days, parse_unused_kind, unused
from shared.queries.usage import DEFAULT_TOP, MAX_TOP, parse_count, usage
from shared.queries.usage_series import requests_of
from shared.store.ports import InventoryRows, TableReader


class Reads(TableReader, InventoryRows, Protocol):
    """The store's read side and its inventory rows: what the usage report reads."""

UNUSED_TOP = 100


def get_usage(req: func.HttpRequest, queries: InventoryQueries, store: Reads) -> func.HttpResponse:
    """GET /api/usage?service=&kind=&since=&until=&top=&sort=&unknown=&continuationToken=: one page of the resources'
    requests in the window (default: the last 24 hours), `top` (1-1000, default 50) at most."""

    def work() -> dict[str, Any]:
        params = _params(req, {"service", "kind", "since", "until", "top", "sort", "unknown", "continuationToken"})
        now = queries.clock()
        return usage(store, store, now, service=service_name(params["service"]) if params.get("service") else None,
                     kind=params.get("kind") or None, since=parse_when(params.get("since"), "since", now),
                     until=parse_when(params.get("until"), "until", now), top=parse_count(params.get("top"), "top", DEFAULT_TOP, MAX_TOP),
                     sort=params.get("sort") or "total", unknown=parse_bool(params.get("unknown"), "unknown"),
                     continuation=params.get("continuationToken") or None)

    return answer(work)


def get_unused(req: func.HttpRequest, queries: InventoryQueries, reader: TableReader) -> func.HttpResponse:
    """GET /api/unused?kind=&days=&service=&top=&continuationToken=: the live resources of a kind with no request in the
    last `days` (default 90), the never-used too, `top` (1-1000, default 100) a page, and since when each service's
    logs were read."""

    def work() -> dict[str, Any]:
        params = _params(req, {"kind", "days", "service", "top", "continuationToken"})
        service = queries.known_service(params["service"]) if params.get("service") else None
        return unused(reader, queries.clock(), parse_unused_kind(_required(params, "kind")), parse_days(params.get("days")), service,
                      top=parse_count(params.get("top"), "top", UNUSED_TOP, MAX_TOP), continuation=params.get("continuationToken") or None)

    return answer(work)


def get_requests(req: func.HttpRequest, queries: InventoryQueries, reader: TableReader) -> func.HttpResponse:
    """GET /api/requests?service=&span=24h|30d&kind=&id=: what the pages' charts draw."""

    def work() -> dict[str, Any]:
        params = _params(req, {"service", "span", "kind", "id"})
        return requests_of(reader, queries.clock(), _required(params, "service"), params.get("span") or "24h",
                           params.get("kind") or None, params.get("id") or None, queries.known_service)

    return answer(work)
