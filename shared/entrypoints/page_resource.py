"""GET /ui/resource?id=: one resource's page: its details, its children, who can call it (an API), its requests of the
last 24 hours and 30 days, and its whole history with who made each change; each list also as the command's CSV
(`part=children|access|history&format=csv`). The reads are the JSON API's for one resource (api/resource, api/access,
api/history) and one kind's usage contributions over the window: none grows with the inventory."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.domain.kinds import Kind
from shared.domain.personal import mask
from shared.domain.usage import COUNTED_KINDS, resource_id
from shared.entrypoints import columns
from shared.entrypoints.http_pages import Csv, page
from shared.entrypoints.output import to_csv
from shared.entrypoints.page_charts import stacked_bars
from shared.entrypoints.page_html import PageReads, definitions, esc, guarded, href, layout, link, table, text
from shared.entrypoints.signin import Principal
from shared.queries.inventory import InventoryQueries, resolve_id
from shared.queries.usage_series import request_series

BOOKKEEPING = ("PartitionKey", "RowKey", "DetailsKey", "LastDeleteEventKey", "etag", "Timestamp")


def _resource_link(row: dict[str, Any]) -> str:
    return link("resource", row.get("Path"), id=f"{row.get('Service')}/{row.get('Path')}")


def _csv_link(ident: str, part: str) -> str:
    return f'<p><a href="{href("resource", id=ident, part=part, format="csv")}" download>Download as CSV</a></p>'


def parts(queries: InventoryQueries, store: PageReads, ident: str, principal: Principal) -> dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """Each list of the page, with the command's CSV columns: children (`list`), access (`access --api`), history."""
    ref = resolve_id(ident)
    kids = [stored.entity for stored in store.children(ref)]
    found: dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]] = {
        "children": (("Service", "Kind", "Path", "State", "LastEventType", "LastEventTime"), kids)}
    if ref.kind is Kind.API:
        access = queries.access_to_api(ident)
        found["access"] = (tuple(columns.GRANT_CSV_COLUMNS), [*access["callers"], *access["notCallable"]])
    # Caller after the masking: its text is made of personal values that the masking names by their keys
    found["history"] = (tuple(columns.HISTORY_COLUMNS), [{**r, "Caller": columns.caller_text(r)} for r in mask(queries.history(ident), principal.role)])
    return {name: (header, mask(rows, principal.role)) for name, (header, rows) in found.items()}


def resource(req: func.HttpRequest, queries: InventoryQueries, store: PageReads) -> func.HttpResponse:
    ident, part, wants_csv = req.params.get("id", ""), req.params.get("part", ""), req.params.get("format") == "csv"
    def render(principal: Principal) -> str | Csv:
        row = mask(queries.resource(ident), principal.role)
        lists = parts(queries, store, ident, principal)
        if wants_csv:
            header, rows = lists.get(part) or ((), [])
            if not header:
                raise LookupError(f"no list {part[:40]!r} on this page; one of: {', '.join(lists)}")
            return Csv(to_csv(rows, header), f"{part}.csv")
        shown = {k: esc(text(v)) for k, v in sorted(row.items()) if k not in BOOKKEEPING and v not in (None, "")}
        body = [f"<section aria-labelledby=\"details\"><h2 id=\"details\">Details</h2>{definitions(shown)}</section>"]
        header, kids = lists["children"]
        body.append("<section aria-labelledby=\"children\"><h2 id=\"children\">Children</h2>"
                    + table("Its children", header, ([esc(k.get("Service")), esc(k.get("Kind")), _resource_link(k), *(esc(k.get(c)) for c in header[3:])]
                                                     for k in kids), empty="no children")
                    + (_csv_link(ident, "children") if kids else "") + "</section>")
        if "access" in lists:
            header, grants = lists["access"]
            body.append("<section aria-labelledby=\"access\"><h2 id=\"access\">Who can call it</h2>"
                        + table("Subscriptions and why they can (or cannot) call it", header, ([esc(g.get(c)) for c in header] for g in grants),
                                empty="no subscription can call it")
                        + _csv_link(ident, "access") + "</section>")
        kind = str(row.get("Kind", ""))
        if kind in COUNTED_KINDS:
            service, name = str(row.get("Service", "")).lower(), resource_id(str(row.get("Name") or ""))
            body.append("<section aria-labelledby=\"usage\"><h2 id=\"usage\">Usage</h2>"
                        + "".join(stacked_bars(f"{row.get('Path')}, {label}",
                                               request_series(store, queries.clock(), service, span, kind=kind, resource_id=name))
                                  for span, label in (("24h", "the last 24 hours"), ("30d", "the last 30 days"))) + "</section>")
        header, history = lists["history"]
        body.append("<section aria-labelledby=\"history\"><h2 id=\"history\">History</h2>"
                    + table("Every change, newest last, with who made it", header, ([esc(text(h.get(c))) for c in header] for h in history),
                            empty="no history")
                    + _csv_link(ident, "history") + "</section>")
        return layout(f"{row.get('Kind')} {row.get('Path')} ({row.get('Service')})", principal, "".join(body))

    return page(req, guarded(render))
