"""GET /ui/overview: per service its freshness, counts and their trend, what needs attention, the recent changes with
who made them, and the usage with its charts; GET /ui/report: one of the lists the overview links to, as a page or
(`format=csv`) as the command's CSV. Each figure comes from the query the JSON API answers with (summary, health,
expiring, flags, changes, usage, unused, keys), masked for the signed-in role as the JSON is: no page reads the
whole inventory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import azure.functions as func

from shared.domain.errors import InvalidQuery
from shared.domain.kinds import Kind
from shared.domain.personal import mask
from shared.entrypoints import columns
from shared.entrypoints.http_pages import SECURITY_HEADERS, page
from shared.entrypoints.output import to_csv
from shared.entrypoints.page_charts import stacked_bars
from shared.entrypoints.page_html import definitions, esc, href, layout, link, table, text
from shared.entrypoints.signin import ROLE_HEADER, Principal
from shared.queries.expiring import expiring
from shared.queries.inventory import InventoryQueries, parse_kind
from shared.queries.keys import old_keys
from shared.queries.unused import unused
from shared.queries.usage import usage
from shared.queries.usage_series import request_series
from shared.store.ports import InventoryRows, TableReader

LIST_TOP = 1000  # the rows of a kind a report page lists (the command pages on with --continuation)
TOP = 10  # rows of each list on the overview; the report page has them all
CHANGES_DAYS = 7
SOON = (7, 30)  # the expiry horizons the overview counts, in days


class PageReads(TableReader, InventoryRows, Protocol):
    """The store's read side and its inventory rows (the app's store is both)."""


def _num(value: Any) -> str:
    return esc(value if value is not None else "")


def freshness(health: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    rows = [[link("overview", s["service"], service=s["service"]), esc(s.get("lastEventTime")), esc(s.get("lastReceivedAt")),
             esc(s.get("lastCompleteSyncAt")), _num(s.get("idleSeconds")), "yes" if s.get("syncInProgress") else "no"]
            for s in health.get("services", [])]
    events = summary["events"]["lastDay"]
    return ("<section aria-labelledby=\"fresh\"><h2 id=\"fresh\">Freshness</h2>"
            + table("Per service: the last event, the last full sync, how long since an event arrived",
                    ("Service", "Last event", "Last received", "Last full sync", "Idle (s)", "Syncing"), rows, numeric=(4,))
            + definitions({"Events in the last 24 hours": esc(sum(v for k, v in events.items() if k != "rejected")),
                           "Rejected in the last 24 hours": esc(events.get("rejected", 0)),
                           "Inventory last changed": esc(health.get("lastAppliedAt"))})
            + "</section>")


def counts(summary: Mapping[str, Any], service: str | None) -> str:
    def change(item: Mapping[str, Any], key: str) -> str:
        value = item.get(key)
        return "" if value is None else f"{value:+d}"

    items = [i for i in summary["resources"] if service is None or i["service"] == service]
    rows = [[esc(i["service"]), link("report", i["kind"], name="inventory", kind=i["kind"], service=i["service"]), _num(i["live"]),
             _num(i["deleted"]), change(i, "liveChange7d"), change(i, "liveChange30d")] for i in items]
    parts = [table("Live and deleted rows per kind, and the change of the live count over 7 and 30 days (daily snapshots)",
                   ("Service", "Kind", "Live", "Deleted", "7 days", "30 days"), rows, numeric=(2, 3, 4, 5))]
    spaces = [w for w in summary.get("workspaces", []) if service is None or w["service"] == service]
    if spaces:
        parts.append(table("Per workspace", ("Service", "Workspace", "Kind", "Live", "Deleted"),
                           ([esc(w["service"]), esc(w["workspace"]), esc(w["kind"]), _num(w["live"]), _num(w["deleted"])] for w in spaces),
                           numeric=(3, 4)))
    return "<section aria-labelledby=\"counts\"><h2 id=\"counts\">Inventory</h2>" + "".join(parts) + "</section>"


def attention(found: Mapping[str, Any], flags: Mapping[str, Sequence[Mapping[str, Any]]], summary: Mapping[str, Any], now: datetime) -> str:
    items = found["items"]

    def soon(kind: Kind, days: int) -> int:
        return sum(1 for i in items if i.get("Kind") == kind and not i["Expired"] and i["ExpiresAt"] <= now + timedelta(days=days))

    breakers = flags.get("breakers", [])
    rows = [
        ("Gateway tokens expired", sum(1 for i in items if i.get("Kind") == Kind.GATEWAY_INSTANCE and i["Expired"]), "expiring"),
        *((f"Gateway tokens expiring within {d} days", soon(Kind.GATEWAY_INSTANCE, d), "expiring") for d in SOON),
        ("Subscriptions expired", sum(1 for i in items if i.get("Kind") == Kind.SUBSCRIPTION and i["Expired"]), "expiring"),
        *((f"Subscriptions expiring within {d} days", soon(Kind.SUBSCRIPTION, d), "expiring") for d in SOON),
        ("Circuit breakers open", sum(1 for b in breakers if not b.get("StuckOpen")), "flags"),
        ("Circuit breakers stuck open", sum(1 for b in breakers if b.get("StuckOpen")), "flags"),
        ("Events rejected in the last 24 hours", summary["events"]["lastDay"].get("rejected", 0), "rejected"),
    ]
    body = [[link("report", what, name=report), str(n)] for what, n, report in rows]
    body += [[link("report", what, name=report), "list"] for what, report in (
        ("Subscriptions whose keys were not regenerated in 90 days", "keys"), ("Subscriptions to all APIs", "all-apis"),
        ("Unused subscriptions (90 days)", "unused-subscriptions"),
        ("Unused APIs (90 days)", "unused-apis"))]
    stuck = table("Open circuit breakers, since when", ("Path", "Service", "State", "Opened", "Expected to close", "Stuck open"),
                  ([link("resource", b.get("Path"), id=f"{b.get('Service')}/{b.get('Path')}"),
                    *(esc(b.get(c)) for c in ("Service", "BreakerState", "OpenedAt", "ExpectedCloseAt", "StuckOpen"))] for b in breakers),
                  empty="none open")
    return ("<section aria-labelledby=\"attention\"><h2 id=\"attention\">Needs attention</h2>"
            + table("What needs attention (expiry within 30 days)", ("What", "How many"), body, numeric=(1,)) + stuck + "</section>")


def changes_table(items: Sequence[Mapping[str, Any]], caption: str) -> str:
    rows = [[esc(i.get("EventTime")), esc(i.get("Service")), esc(i.get("ResourceKind")),
             link("resource", i.get("Path"), id=f"{i.get('Service')}/{i.get('Path')}") if i.get("Path") else "",
             esc(i.get("Change")), esc(columns.caller_text(i))] for i in items]
    return table(caption, ("When", "Service", "Kind", "Path", "Change", "Who"), rows, empty="no change")


def cell(row: Mapping[str, Any], column: str) -> str:
    """A report's cell: a resource's path links to its page."""
    if column in ("Path", "path") and row.get(column) and (row.get("Service") or row.get("service")) and row.get("known", True) is not False:
        return link("resource", row[column], id=f"{row.get('Service') or row.get('service')}/{row[column]}")
    return esc(text(row.get(column)))


def usage_table(answer: Mapping[str, Any], caption: str) -> str:
    rows = [[esc(i["service"]), esc(i["kind"]), link("resource", i["path"], id=f"{i['service']}/{i['path']}") if i.get("known") else esc(i["path"]),
             _num(i["total"]), _num(i["failed"]), esc(f"{i['failureRate']:.1%}"), _num(i["averageMs"]), esc(i.get("lastUsedAt"))]
            for i in answer["items"]]
    return table(caption, ("Service", "Kind", "Path", "Requests", "Failed", "Failure rate", "Average ms", "Last used"), rows,
                 numeric=(3, 4, 5, 6), empty="no request in the window")


def overview(req: func.HttpRequest, queries: InventoryQueries, store: PageReads, health: Callable[[], dict[str, Any]]) -> func.HttpResponse:
    def render(principal: Principal) -> str:
        service = req.params.get("service") or None
        if service:
            service = queries.known_service(service)
        now = queries.clock()
        role = principal.role
        summary = mask(queries.summary(), role)
        fresh = mask(health(), role)
        found = expiring(store, now, timedelta(days=max(SOON)))
        found["items"] = [i for i in found["items"] if service is None or i.get("Service") == service]
        recent = queries.changes(since=now - timedelta(days=CHANGES_DAYS), service=service, top=TOP)
        top = {sort: mask(usage(store, store, now, service=service, kind=Kind.API.value, sort=sort, top=TOP // 2), role) for sort in ("total", "failed")}
        subs = mask(usage(store, store, now, service=service, kind=Kind.SUBSCRIPTION.value, top=TOP // 2), role)
        charted = [r["service"] for r in summary.get("requests", []) if service is None or r["service"] == service][:1]
        charts = "".join(stacked_bars(f"{name}, {label}", request_series(store, now, name.lower(), span))
                         for name in charted for span, label in (("24h", "the last 24 hours"), ("30d", "the last 30 days")))
        body = (freshness(fresh, summary) + counts(summary, service) + attention(found, queries.flags(), summary, now)
                + "<section aria-labelledby=\"changes\"><h2 id=\"changes\">Recent changes</h2>"
                + changes_table(mask(recent.items, role), f"The last {TOP} changes of {CHANGES_DAYS} days, with who made them")
                + link("report", "All changes of 7 days", name="changes", service=service) + "</section>"
                + "<section aria-labelledby=\"usage\"><h2 id=\"usage\">Usage (last 24 hours)</h2>" + charts
                + usage_table(top["total"], "The busiest APIs") + usage_table(top["failed"], "The most failing APIs")
                + usage_table(subs, "The busiest subscriptions") + link("report", "All usage of 24 hours", name="usage", service=service)
                + "</section>")
        names = sorted({str(s["service"]) for s in fresh.get("services", [])})
        return layout(f"Overview{': ' + service if service else ''}", principal, body, services=names, service=service)

    return page(req, guarded(render))


def guarded(render: Callable[[Principal], str]) -> Callable[[Principal], str]:
    """A page's bad parameter shown as its own short page (the same message the JSON API gives with 400/404)."""
    def guarded(principal: Principal) -> str:
        try:
            return render(principal)
        except (InvalidQuery, LookupError) as exc:
            return layout("Not shown", principal, f"<p role=\"alert\">{esc(exc)}</p>")
    return guarded


def _service_names(queries: InventoryQueries) -> list[str]:
    """Every service's name (the summary's services): a report of a service-level question asks each of them."""
    return sorted({str(item["service"]) for item in queries.summary()["resources"]})


# name -> (title, the command's CSV columns, the rows: reads, now, service -> list of rows)
REPORTS: dict[str, tuple[str, Sequence[str], Callable[[InventoryQueries, PageReads, datetime, str | None], list[dict[str, Any]]]]] = {
    "inventory": ("", (), lambda q, s, now, svc: []),  # one kind's first rows: built per request (`kind`)
    "expiring": ("Expiring within 30 days: apim-inventory expiring --within 30d", columns.EXPIRING_CSV_COLUMNS,
                 lambda q, s, now, svc: [i for i in expiring(s, now, timedelta(days=30))["items"] if svc is None or i.get("Service") == svc]),
    "keys": ("Keys not regenerated in 90 days: apim-inventory keys --older-than 90d", columns.KEYS_CSV_COLUMNS,
             lambda q, s, now, svc: list(old_keys(s, now, timedelta(days=90), svc)["items"])),
    "unused-subscriptions": ("Unused subscriptions: apim-inventory unused subscription", columns.UNUSED_CSV_COLUMNS,
                             lambda q, s, now, svc: list(unused(s, now, Kind.SUBSCRIPTION, 90, svc, top=1000)["items"])),
    "unused-apis": ("Unused APIs: apim-inventory unused api", columns.UNUSED_CSV_COLUMNS,
                    lambda q, s, now, svc: list(unused(s, now, Kind.API, 90, svc, top=1000)["items"])),
    "usage": ("Usage of the last 24 hours: apim-inventory usage", columns.USAGE_CSV_COLUMNS,
              lambda q, s, now, svc: list(usage(s, s, now, service=svc, top=1000)["items"])),
    "all-apis": ("Subscriptions to all APIs: apim-inventory list subscription --scope SERVICE/apis", columns.LIST_COLUMNS[Kind.SUBSCRIPTION],
                 lambda q, s, now, svc: [row for name in ([svc] if svc else _service_names(q)) for row in
                                         q.list_kind(Kind.SUBSCRIPTION, scope=f"{name}/apis", top=LIST_TOP).rows]),
    "flags": ("Flagged: apim-inventory flags", columns.FLAG_COLUMNS,
              lambda q, s, now, svc: [columns.flag_row(r, now) for rows in q.flags().values() for r in rows if svc is None or r.get("Service") == svc]),
    "rejected": ("Rejected events of 24 hours: apim-inventory rejected --since 24h", columns.REJECTED_COLUMNS,
                 lambda q, s, now, svc: q.rejected(now - timedelta(hours=24))),
    "changes": ("Changes of 7 days: apim-inventory changes --since 7d", columns.CHANGES_CSV_COLUMNS,
                lambda q, s, now, svc: q.changes(since=now - timedelta(days=7), service=svc, top=1000).items),
}


def report(req: func.HttpRequest, queries: InventoryQueries, store: PageReads) -> func.HttpResponse:
    """GET /ui/report?name=&service=&format=csv"""
    name, wants_csv = req.params.get("name", ""), req.params.get("format") == "csv"
    if name not in REPORTS:
        return func.HttpResponse(f"unknown report {name[:60]!r}; one of: {', '.join(REPORTS)}", status_code=404, mimetype="text/plain",
                                 headers=SECURITY_HEADERS)
    title, header, rows_of = REPORTS[name]
    if name == "inventory":
        kind = parse_kind(req.params.get("kind", ""))
        title, header = f"{kind.value}: apim-inventory list {kind.value} (the first {LIST_TOP})", columns.LIST_COLUMNS[kind]
    rendered: list[tuple[str, str]] = []  # the CSV and the role it was masked for

    def render(principal: Principal) -> str:
        service = req.params.get("service") or None
        if service:
            service = queries.known_service(service)
        if name == "inventory":
            rows = queries.list_kind(parse_kind(req.params.get("kind", "")), service=service, top=LIST_TOP).rows
        else:
            rows = rows_of(queries, store, queries.clock(), service)
        rows = mask(rows, principal.role)
        if name == "changes":  # who, after the masking: the text is made of the personal values it masks
            rows = [{**r, "Caller": columns.caller_text(r)} for r in rows]
        if wants_csv:
            rendered.append((to_csv(rows, header), principal.role.value))
            return ""
        csv = href("report", name=name, format="csv", service=service, kind=req.params.get("kind"))
        body = (f'<p><a href="{csv}" download>Download as CSV</a> (the command&#39;s columns)</p>'
                + table(f"{len(rows)} rows", header, ([cell(r, c) for c in header] for r in rows)))
        return layout(title, principal, body)

    answer = page(req, guarded(render))
    if wants_csv and rendered and answer.status_code == 200:
        return func.HttpResponse(rendered[0][0], status_code=200, mimetype="text/csv", charset="utf-8",
                                 headers={**SECURITY_HEADERS, ROLE_HEADER: rendered[0][1], "Content-Disposition": f'attachment; filename="{name}.csv"'})
    return answer
