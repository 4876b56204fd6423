"""The HTTP API's handlers: validate the request, ask InventoryQueries, answer JSON.

Bad parameters get 400 with a message, a missing resource 404, an unreachable store 503, and so does a summary of tables
still in layout 1 (with the message to run `apim-inventory migrate`).
GET /api/health answers 200 with the health report, or 503 when the store cannot be used.
Every answer is masked for the role it is served under (shared.domain.personal.mask) and says which in the header
X-Inventory-Role: a function key's caller gets FUNCTION_KEY_ROLE (shared.entrypoints.signin)."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.domain.errors import InvalidQuery, one_line
from shared.domain.kinds import Kind
from shared.domain.personal import Role, mask
from shared.entrypoints.output import to_json
from shared.entrypoints.signin import ROLE_HEADER, SettingRefused, key_role
from shared.queries.changes import parse_by
from shared.queries.inventory import InventoryQueries, NotFound, parse_bool, parse_kind, parse_top, parse_when
from shared.queries.summary import NotMigrated

log = logging.getLogger("apim_inventory.http")
# The imported module's own version: a worker's bundled copy, if it were loaded instead of the pinned one, shows
# here, where the installed distribution's metadata (importlib.metadata) would still name the pin.
RUNTIME = {"python": platform.python_version(), "azureFunctions": func.__version__}
health_log = logging.getLogger("apim_inventory.health")


def _answer(status: int, body: Any, role: Role) -> func.HttpResponse:
    return func.HttpResponse(to_json(mask(body, role)), status_code=status, mimetype="application/json", charset="utf-8",
                             headers={ROLE_HEADER: role.value})


def _params(req: func.HttpRequest, allowed: set[str]) -> Mapping[str, str]:
    unknown = sorted(set(req.params) - allowed - {"code"})  # `code` is the function key, which the host checks
    if unknown:
        raise InvalidQuery(f"unknown parameter {unknown[0][:60]!r}; allowed: {', '.join(sorted(allowed))}")
    params: Mapping[str, str] = req.params
    return params


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise InvalidQuery(f"parameter {name} is required")
    return value


def _service(params: Mapping[str, str], queries: InventoryQueries) -> str | None:
    """`service` as the name of a service the inventory knows, given its name or ARM id (404 naming the known ones)."""
    service = params.get("service")
    return queries.known_service(service) if service else None


def answer(work: Callable[[], Any], role: Role | None = None) -> func.HttpResponse:
    """`work`'s document as JSON, masked for `role` (a signed-in person's); None: a function key's caller's."""
    try:
        role = role or key_role()
    except SettingRefused as exc:
        log.error("%s", exc)
        return _answer(503, {"error": str(exc)}, Role.READ)
    try:
        return _answer(200, work(), role)
    except InvalidQuery as exc:
        return _answer(400, {"error": str(exc)}, role)
    except NotFound as exc:
        return _answer(404, {"error": str(exc)}, role)
    except NotMigrated as exc:
        return _answer(503, {"error": str(exc)}, role)
    except AzureError as exc:
        log.error("inventory store unavailable: %s", exc)
        return _answer(503, {"error": "the inventory store is unavailable; try again"}, role)


def list_inventory(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/inventory/{kind}?service=&includeDeleted=&deletedSince=&changedSince=&top=&continuationToken=
    &owner=&scope=&state=&approvalRequired=&workspace="""

    def work() -> dict[str, Any]:
        params = _params(req, {"service", "includeDeleted", "deletedSince", "changedSince", "top", "continuationToken",
                               "owner", "scope", "state", "approvalRequired", "workspace"})
        approval = params.get("approvalRequired")
        kind = parse_kind(req.route_params.get("kind", ""))
        page = queries.list_kind(
            kind, service=_service(params, queries), include_deleted=parse_bool(params.get("includeDeleted"), "includeDeleted"),
            deleted_since=parse_when(params.get("deletedSince"), "deletedSince", queries.clock()),
            changed_since=parse_when(params.get("changedSince"), "changedSince", queries.clock()),
            top=parse_top(params.get("top")), continuation=params.get("continuationToken") or None,
            owner=params.get("owner") or None, scope=params.get("scope") or None, state=params.get("state") or None,
            approval_required=parse_bool(approval, "approvalRequired") if approval else None,
            workspace=params.get("workspace") or None,
        )
        return {"kind": kind, "count": len(page.rows), "items": page.rows, "continuationToken": page.continuation}

    return answer(work)


def get_resource(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/resource?id= (an ARM id or SERVICE/PATH)"""
    return answer(lambda: queries.resource(_required(_params(req, {"id"}), "id")))


def get_history(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/history?id=&since=&withChildren="""

    def work() -> dict[str, Any]:
        params = _params(req, {"id", "since", "withChildren"})
        records = queries.history(_required(params, "id"), parse_when(params.get("since"), "since", queries.clock()),
                                  with_children=parse_bool(params.get("withChildren"), "withChildren"))
        return {"count": len(records), "items": records}

    return answer(work)


def get_changes(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/changes?since=&until=&service=&kind=&by=&top=&continuationToken=&workspace="""

    def work() -> dict[str, Any]:
        params = _params(req, {"since", "until", "service", "kind", "by", "top", "continuationToken", "workspace"})
        now = queries.clock()
        by = parse_by(params.get("by"))
        page = queries.changes(
            since=parse_when(_required(params, "since"), "since", now), until=parse_when(params.get("until"), "until", now),
            service=_service(params, queries), kind=parse_kind(params["kind"]) if params.get("kind") else None, by=by,
            top=parse_top(params.get("top")), continuation=params.get("continuationToken") or None,
            workspace=params.get("workspace") or None,
        )
        return {"by": by, "count": len(page.items), "items": page.items, "continuationToken": page.continuation}

    return answer(work)


def get_access(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/access?api= (who can call an API) or ?user= (what a user's subscriptions give access to), &workspace="""

    def work() -> dict[str, Any]:
        api, user = Kind.API.value, Kind.USER.value  # the parameters are named after the kinds
        params = _params(req, {api, user, "workspace"})
        if bool(params.get(api)) == bool(params.get(user)):
            raise InvalidQuery(f"give one of the parameters {api} and {user}")
        workspace = params.get("workspace") or None
        return queries.access_to_api(params[api], workspace) if params.get(api) else queries.access_of_user(params[user], workspace)

    return answer(work)


def get_flags(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/flags"""
    return answer(lambda: (_params(req, set()), queries.flags())[1])


def get_summary(req: func.HttpRequest, queries: InventoryQueries) -> func.HttpResponse:
    """GET /api/summary?workspace="""
    return answer(lambda: queries.summary(_params(req, {"workspace"}).get("workspace") or None))


def get_health(req: func.HttpRequest, check: Callable[[], dict[str, Any]]) -> func.HttpResponse:
    """200 with the report `check` makes, or 503 with the reason when the store cannot be used
    (the services cannot even be built, say). Never raises."""
    try:
        status, body = 200, check()
    except Exception as exc:
        health_log.warning("health: the inventory store cannot be used: %s: %s", type(exc).__name__, one_line(exc))
        status, body = 503, {"status": "unavailable", "checkedAt": datetime.now(timezone.utc),
                             "storage": {"reachable": False, "error": f"{type(exc).__name__}: {one_line(exc, 300)}"}}
    body["runtime"] = RUNTIME
    try:
        role = key_role()
    except SettingRefused:
        role = Role.READ  # the health report still answers: it holds no personal data, and the setting's error is its own
    return _answer(status, body, role)
