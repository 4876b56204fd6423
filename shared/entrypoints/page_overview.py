"""GET /ui/overview: per service its freshness, counts and their trend, what needs attention, the recent changes with
who made them, and the usage with its charts; GET /ui/report: one of the lists the overview links to, as a page or
(`format=csv`) as the command's CSV. Each figure comes from the query the JSON API answers with (summary, health,
expiring, flags, changes, usage, unused, keys), masked for the signed-in role as the JSON is: no page reads the
whole inventory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func

from shared.domain.kinds import Kind
from shared.domain.outcomes import Outcome
from shared.domain.personal import mask
from shared.entrypoints import columns
from shared.entrypoints.http_pages import page
from shared.entrypoints.page_charts import stacked_bars
from shared.entrypoints.page_html import PageReads, definitions, esc, guarded, layout, link, table
from shared.entrypoints.signin import Principal
from shared.queries.expiring import expiring
from shared.queries.inventory import InventoryQueries
from shared.queries.usage import usage
from shared.queries.usage_series import request_series

TOP = 10  # rows of each list on the overview; the report page has them all
CHANGES_DAYS = 7
SOON = (7, 30)  # the expiry horizons the overview counts, in days


def _num(value: Any) -> str:
    return esc(value if value is not None else "")


def freshness(health: Mapping[str, Any], summary: Mapping[str, Any], service: str | None) -> str:
    """The services' freshness (one service's with `service`); the event windows are every service's (the summary's)."""
    rows = [[link("overview", s["service"], service=s["service"]), esc(s.get("lastEventTime")), esc(s.get("lastReceivedAt")),
             esc(s.get("lastCompleteSyncAt")), _num(s.get("idleSeconds")), "yes" if s.get("syncInProgress") else "no"]
            for s in health.get("services", []) if service is None or s["service"] == service]
    events = summary["events"]["lastDay"]
    return ("<section aria-labelledby=\"fresh\"><h2 id=\"fresh\">Freshness</h2>"
            + table("Per service: the last event, the last full sync, how long since an event arrived",
                    ("Service", "Last event", "Last received", "Last full sync", "Idle (s)", "Syncing"), rows, numeric=(4,))
            + definitions({"Events in the last 24 hours (every service)": esc(sum(v for k, v in events.items() if k != Outcome.REJECTED)),
                           "Rejected in the last 24 hours (every service)": esc(events.get(Outcome.REJECTED, 0)),
                           "Inventory last changed": esc(health.get("lastAppliedAt"))})
            + "</section>")


def counts(summary: Mapping[str, Any], service: str | None) -> str:
    def change(item: Mapping[str, Any], key: str) -> str:
        value = item.get(key)
        return "" if value is None else f"{value:+d}"

    items = [{**i, **t} for i, t in zip(summary["resources"], summary["trends"], strict=True) if service is None or i["service"] == service]
    rows = [[esc(i["service"]), link("report", i["kind"], name="inventory", kind=i["kind"], service=i["service"]), _num(i["live"]),
             _num(i["deleted"]), change(i, "liveChange7d"), change(i, "liveChange30d")] for i in items]
    parts = [table("Live and deleted rows per kind, and the change of the live count over 7 and 30 days (daily snapshots)",
                   ("Service", "Kind", "Live", "Deleted", "7 days", "30 days"), rows, numeric=(2, 3, 4, 5))]
    spaces = [w for w in summary.get("workspaces", []) if service is None or w["service"] == service]
    if spaces:
        parts.append(table("Per workspace", ("Service", "Workspace", "Kind", "Live", "Deleted"),
                           ([esc(w["service"]), esc(w[Kind.WORKSPACE.value]), esc(w["kind"]), _num(w["live"]), _num(w["deleted"])] for w in spaces),
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
        ("Events rejected in the last 24 hours", summary["events"]["lastDay"].get(Outcome.REJECTED, 0), Outcome.REJECTED.value),
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
        body = (attention(found, queries.flags(), summary, now) + freshness(fresh, summary, service)
                + "<section aria-labelledby=\"usage\"><h2 id=\"usage\">Usage (last 24 hours)</h2>" + charts
                + usage_table(top["total"], "The busiest APIs") + usage_table(top["failed"], "The most failing APIs")
                + usage_table(subs, "The busiest subscriptions") + link("report", "All usage of 24 hours", name="usage", service=service)
                + "</section>" + counts(summary, service)
                + "<section aria-labelledby=\"changes\"><h2 id=\"changes\">Recent changes</h2>"
                + changes_table(mask(recent.items, role), f"The last {TOP} changes of {CHANGES_DAYS} days, with who made them")
                + link("report", "All changes of 7 days", name="changes", service=service) + "</section>")
        names = sorted({str(s["service"]) for s in fresh.get("services", [])})
        return layout(f"Overview{': ' + service if service else ''}", principal, body, services=names, service=service)

    return page(req, guarded(render))
