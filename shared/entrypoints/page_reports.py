"""GET /ui/report?name=&service=&kind=&format=csv: one of the lists the overview links to, whole, as a page or as the
command's CSV (the columns of shared/entrypoints/columns.py that `-o csv` prints), masked for the signed-in role."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func

from shared.domain.kinds import Kind
from shared.domain.outcomes import Outcome
from shared.domain.personal import mask
from shared.entrypoints import columns
from shared.entrypoints.http_pages import SECURITY_HEADERS, Csv, page
from shared.entrypoints.output import by_path, to_csv
from shared.entrypoints.page_html import PageReads, cell, guarded, href, layout, table
from shared.entrypoints.signin import Principal
from shared.queries.expiring import expiring
from shared.queries.inventory import InventoryQueries, parse_kind
from shared.queries.keys import old_keys
from shared.queries.unused import unused
from shared.queries.usage import usage

LIST_TOP = 1000  # the rows of a kind a report page lists (the command pages on with --continuation)


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
    Outcome.REJECTED.value: ("Rejected events of 24 hours: apim-inventory rejected --since 24h", columns.REJECTED_COLUMNS,
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
    def render(principal: Principal) -> str | Csv:
        service = req.params.get("service") or None
        if service:
            service = queries.known_service(service)
        if name == "inventory":
            rows = sorted(queries.list_kind(parse_kind(req.params.get("kind", "")), service=service, top=LIST_TOP).rows, key=by_path)  # as `list` prints
        else:
            rows = rows_of(queries, store, queries.clock(), service)
        rows = mask(rows, principal.role)
        if name == "changes":  # who, after the masking: the text is made of the personal values it masks
            rows = [{**r, "Caller": columns.caller_text(r)} for r in rows]
        if wants_csv:
            return Csv(to_csv(rows, header), f"{name}.csv")
        csv = href("report", name=name, format="csv", service=service, kind=req.params.get("kind"))
        body = (f'<p><a href="{csv}" download>Download as CSV</a> (the command&#39;s columns)</p>'
                + table(f"{len(rows)} rows", header, ([cell(r, c) for c in header] for r in rows)))
        return layout(title, principal, body)

    return page(req, guarded(render))
