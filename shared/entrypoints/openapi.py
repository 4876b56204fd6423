"""GET /api/openapi.json: the OpenAPI 3.1 description of the JSON API, built from ROUTES, the one table of the JSON
routes' paths, methods, parameters and answers. tests/test_openapi.py holds it to the indexed app (every HTTP function
of function_app.py is here, with the same route, methods and auth level, or is a page) and to the handlers (each
takes exactly the parameters listed: one more is refused as unknown)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import azure.functions as func

from shared.domain.kinds import Kind
from shared.domain.personal import PERSONAL_KEYS, Role
from shared.domain.usage import COUNTED_KINDS
from shared.entrypoints.http_api import answer
from shared.entrypoints.http_expiry import PENDING
from shared.entrypoints.signin import ROLE_HEADER
from shared.queries.changes import ORDERS
from shared.queries.unused import MAX_DAYS, UNUSED_KINDS
from shared.queries.usage import SORTS
from shared.queries.usage_series import SPANS

KEY_LEVEL = "FUNCTION"  # every JSON route needs a function key (the host checks it)
PAGES = {"ui_whoami": "ui/whoami", "ui_overview": "ui/overview", "ui_report": "ui/report", "ui_resource": "ui/resource",
         "ui_static": "ui/static/{name}"}  # HTML, anonymous at the host, guarded by the app: not part of the JSON description


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    where: str = "query"


@dataclass(frozen=True)
class Route:
    path: str  # the route template, as function_app.py gives it (routePrefix is "")
    summary: str
    params: tuple[Param, ...]
    answer: dict[str, Any]  # the 200 answer's JSON schema
    errors: tuple[int, ...] = (400, 404, 503)
    personal: bool = False  # may hold personal data: masked for Inventory.Read (x-personal-data)


def _obj(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {"type": "object", "required": sorted(required), "properties": {**required, **optional}}


ROWS = {"type": "array", "items": {"type": "object"}}
COUNT = {"type": "integer", "minimum": 0}
TOKEN = {"type": ["string", "null"], "description": "pass it back as continuationToken for the next page; null on the last"}
TIME = {"type": "string", "description": "ISO 8601, UTC"}
NULLABLE_TIME = {"type": ["string", "null"]}
WHEN = "an ISO 8601 time (2026-11-02T09:00:00Z) or a time ago (24h, 7d, 90m, 30s, 2w)"
BOOL = {"type": "string", "enum": ["true", "false", "1", "0"]}
KINDS = {"type": "string", "enum": [k.value for k in Kind]}


def _top(default: int) -> Param:
    return Param("top", f"page size, 1-1000 (default {default})", {"type": "integer", "minimum": 1, "maximum": 1000})


CONTINUATION = Param("continuationToken", "the previous page's continuationToken: the next page")
SERVICE = Param("service", "a service's name or ARM id (404 names the known ones)")
WORKSPACE = Param(Kind.WORKSPACE.value, "one workspace's rows; `-` the service level's")

ROUTES: dict[str, Route] = {
    "inventory": Route("api/inventory/{kind}", "One kind's rows, a page at a time", (
        Param("kind", "the kind (case-insensitive)", KINDS, required=True, where="path"), SERVICE,
        Param("includeDeleted", "tombstones too", BOOL), Param("deletedSince", "tombstones deleted since: " + WHEN),
        Param("changedSince", "rows changed since: " + WHEN), _top(100), CONTINUATION,
        Param("owner", "subscriptions of this owner (a user id); one page from the access index"),
        Param("scope", "subscriptions of this scope (a product, an API, or the service); one page from the access index"),
        Param("state", "users, products and subscriptions in this state"), Param("approvalRequired", "products", BOOL), WORKSPACE,
    ), _obj({"kind": {"type": "string"}, "count": COUNT, "items": ROWS, "continuationToken": TOKEN}), personal=True),
    "resource": Route("api/resource", "One row", (Param("id", "an ARM id or SERVICE/PATH", required=True),),
                      {"type": "object"}, personal=True),
    "history": Route("api/history", "A resource's history, newest first", (
        Param("id", "an ARM id or SERVICE/PATH", required=True), Param("since", "records since: " + WHEN),
        Param("withChildren", "the children's history too", BOOL),
    ), _obj({"count": COUNT, "items": ROWS}), personal=True),  # the callers (audit records); "changed" for personal columns, never values
    "changes": Route("api/changes", "The change feed, newest first across services", (
        Param("since", "changes since: " + WHEN, required=True), Param("until", "changes before (default now): " + WHEN), SERVICE,
        Param("kind", "one kind", KINDS), Param("by", "event time or recorded time", {"type": "string", "enum": list(ORDERS)}),
        _top(100), CONTINUATION, WORKSPACE,
    ), _obj({"by": {"type": "string"}, "count": COUNT, "items": ROWS, "continuationToken": TOKEN}), personal=True),
    "access": Route("api/access", "Who can call an API (api=), or what a user's subscriptions reach (user=): one of the two", (
        Param(Kind.API.value, "an API's id"), Param(Kind.USER.value, "a user's id"), WORKSPACE,
    ), _obj({"name": {"type": "string"}, "service": {"type": "string"}, "membershipAsOf": NULLABLE_TIME})),
    "flags": Route("api/flags", "Gateway tokens near expiry or expired, breakers open", (),
                   _obj({"tokens": ROWS, "breakers": ROWS}), errors=(400, 503)),
    "summary": Route("api/summary", "Counts by service and kind, events and requests in the last hour and day", (WORKSPACE,),
                     _obj({"generatedAt": TIME, "resources": ROWS, "workspaces": ROWS, "events": {"type": "object"},
                           "windows": {"type": "object"}, "requests": ROWS, "requestWindows": {"type": "object"},
                           "trends": ROWS, "snapshots": ROWS})),
    "expiring": Route("api/expiring", "Gateway tokens and subscriptions expiring soon, the expired first", (
        Param("within", "a window ahead: 30d (default), 24h, 2w, 90m"),
    ), _obj({"now": TIME, "until": TIME, "count": COUNT, "items": ROWS}), errors=(400, 503)),
    "alerts": Route("api/alerts", "The alerts raised, newest first", (
        Param(PENDING, "only those not yet published", BOOL), Param("since", "raised since: " + WHEN),
    ), _obj({"count": COUNT, "items": ROWS}), errors=(400, 503)),
    "usage": Route("api/usage", "Requests per resource in a window (default: the last 24 hours)", (
        SERVICE, Param("kind", "one kind of resource counted", {"type": "string", "enum": sorted(COUNTED_KINDS)}),
        Param("since", "from: " + WHEN), Param("until", "until: " + WHEN),
        _top(50), Param("sort", "the order", {"type": "string", "enum": list(SORTS)}),
        Param("unknown", "only the ids the inventory has no row of", BOOL), CONTINUATION,
    ), _obj({"since": TIME, "until": TIME, "window": {"type": "object"}, "sort": {"type": "string"}, "count": COUNT, "items": ROWS,
             "continuationToken": TOKEN})),
    "unused": Route("api/unused", "Live resources with no request in the last days", (
        Param("kind", "the kind of resource", {"type": "string", "enum": [k.value for k in UNUSED_KINDS]}, required=True),
        Param("days", "no request since now − days (default 90)", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}), SERVICE,
        _top(100), CONTINUATION,
    ), _obj({"kind": {"type": "string"}, "days": COUNT, "since": TIME, "services": ROWS, "count": COUNT, "items": ROWS,
             "continuationToken": TOKEN})),
    "keys": Route("api/keys", "Live subscriptions whose keys were not regenerated through Resource Manager in a window (a lower bound)", (
        Param("olderThan", "the window: 90d (default), 24h, 2w"), SERVICE, _top(100), CONTINUATION,
    ), _obj({"olderThanDays": {"type": "number"}, "since": TIME, "lowerBound": {"type": "boolean"}, "note": {"type": "string"},
             "count": COUNT, "items": ROWS, "continuationToken": TOKEN})),
    "requests": Route("api/requests", "A service's or one resource's requests by category, per hour of the last 24 hours or per day of the last 30 days", (
        Param("service", "a service's name (404 names the known ones; logsRead false: its logs were never read)", required=True),
        Param("span", "24h (per hour, default) or 30d (per day)", {"type": "string", "enum": list(SPANS)}),
        Param("kind", "with id: one resource of this counted kind", {"type": "string", "enum": list(COUNTED_KINDS)}),
        Param("id", "with kind: the resource's id as the logs name it (echo-api, a subscription's name)"),
    ), _obj({"service": {"type": "string"}, "logsRead": {"type": "boolean"}, "span": {"type": "string"}, "step": {"type": "string"},
             "buckets": ROWS})),
    "health": Route("api/health", "Whether the store answers, and how fresh each service's data is", (),
                    _obj({"status": {"type": "string"}, "checkedAt": TIME, "storage": {"type": "object"}, "runtime": {"type": "object"}}),
                    errors=(503,)),
    "openapi": Route("api/openapi.json", "This description", (), {"type": "object"}, errors=()),
}

_ERRORS = {400: "a parameter refused (unknown, malformed, out of range), with the reason",
           404: "an unknown resource or service, with the reason",
           503: "the store cannot be read now, or the tables need `apim-inventory migrate`, with the reason"}


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": {ROLE_HEADER: {"$ref": "#/components/headers/Role"}},
            "content": {"application/json": {"schema": schema}}}


def _operation(name: str, route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _response("the answer", route.answer)}
    for status in route.errors:
        schema = route.answer if name == "health" else {"$ref": "#/components/schemas/Error"}  # health's 503 is its report
        responses[str(status)] = _response(_ERRORS[status], schema)
    responses["401"] = {"description": "no valid function key (the host answers, with no body)"}
    operation: dict[str, Any] = {
        "operationId": name, "summary": route.summary, "responses": responses,
        "parameters": [{"name": p.name, "in": p.where, "required": p.required or p.where == "path", "description": p.description,
                        "schema": p.schema} for p in route.params],
    }
    if route.personal:
        operation["x-personal-data"] = sorted(PERSONAL_KEYS)
    return operation


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "apim-inventory", "version": "1",
                 "description": "The live inventory of Azure API Management instances. Every answer is JSON and says in the "
                                f"{ROLE_HEADER} header the role it was served under; for {Role.READ.value} personal data "
                                "(x-personal-data lists the keys) is replaced by \"(masked)\". Paged lists take `top` and pass "
                                "`continuationToken` back."},
        "servers": [{"url": "/"}],
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": {"/" + route.path: {"get": _operation(name, route)} for name, route in ROUTES.items()},
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "headers": {"Role": {"description": "the role the answer was served under", "required": True,
                                 "schema": {"type": "string", "enum": [r.value for r in Role]}}},
            "schemas": {"Error": _obj({"error": {"type": "string"}})},
        },
    }


def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/openapi.json"""
    return answer(lambda: json.loads(json.dumps(document())))  # a copy: masking never meets the cached document
