"""The pages' HTML: one layout, real tables with headers, and the cell formats, shared by every page under ui/. Every
value is escaped here; styles and scripts come from the app's own files (ui/static/...), never inline, which the
Content-Security-Policy (`default-src 'self'`) would refuse anyway."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from shared.domain.errors import InvalidQuery
from shared.entrypoints.signin import Principal
from shared.store.ports import InventoryRows, TableReader

_Made = TypeVar("_Made")
STATIC = {"app.css": "text/css", "app.js": "text/javascript", "icon.svg": "image/svg+xml"}  # the only files ui/static/ serves


def esc(value: Any) -> str:
    return html.escape(text(value))


def text(value: Any) -> str:
    """A value as a cell shows it: times to the second in UTC, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def href(path: str, **params: Any) -> str:
    """A link within the app (relative to ui/), its parameters encoded."""
    query = urlencode({k: text(v) for k, v in params.items() if v not in (None, "")})
    return html.escape(f"{path}?{query}" if query else path)


def link(path: str, label: Any, **params: Any) -> str:
    return f'<a href="{href(path, **params)}">{esc(label)}</a>'


def table(caption: str, header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Iterable[int] = (), empty: str = "none") -> str:
    """A sortable table (app.js) of cells already rendered to HTML; `numeric` columns are right-aligned and sort as numbers."""
    right = set(numeric)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in right else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    if not body:
        return f'<p class="empty"><strong>{html.escape(caption)}:</strong> {html.escape(empty)}</p>'
    number = ' class="num" data-sort="num"'
    heads = "".join(f'<th scope="col"{number if i in right else ""}>{html.escape(h)}</th>' for i, h in enumerate(header))
    # A table wider than the screen scrolls in its own region, which the keyboard can reach (tabindex) to scroll it.
    return (f'<div class="scroll" role="region" tabindex="0" aria-label="{html.escape(caption)}">'
            f'<table class="sortable"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></div>")


def cell(row: Mapping[str, Any], column: str) -> str:
    """A list's cell: a resource's path links to its page."""
    if column in ("Path", "path") and row.get(column) and (row.get("Service") or row.get("service")) and row.get("known", True) is not False:
        return link("resource", row[column], id=f"{row.get('Service') or row.get('service')}/{row[column]}")
    return esc(text(row.get(column)))


def definitions(items: Mapping[str, Any]) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in items.items()) + "</dl>"


def layout(title: str, principal: Principal, body: str, *, services: Sequence[str] = (), service: str | None = None) -> str:
    """The whole page: the header with the navigation and the service switch (a form: it works without the script)."""
    options = "".join(f'<option value="{esc(s)}"{" selected" if s == service else ""}>{esc(s)}</option>' for s in services)
    switch = (f'<form class="switch" method="get" action="overview"><label for="service">Service</label> '
              f'<select id="service" name="service"><option value="">all services</option>{options}</select> '
              f'<button type="submit">Show</button></form>') if services else ""
    return ("<!doctype html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: apim-inventory</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark">'
            '<link rel="icon" href="static/icon.svg" type="image/svg+xml"><link rel="stylesheet" href="static/app.css">'
            '<script src="static/app.js" defer></script></head><body>'
            '<header><nav aria-label="Pages"><a href="overview">Overview</a> <a href="whoami">Signed in as '
            f"{esc(principal.name or principal.role.value)}</a></nav>{switch}</header>"
            f'<main id="main"><h1>{html.escape(title)}</h1>{body}</main>'
            f'<footer><p>Served under the role {esc(principal.role.value)}. The same figures: the JSON API under /api '
            "and the <code>apim-inventory</code> command.</p></footer></body></html>")


class PageReads(TableReader, InventoryRows, Protocol):
    """The store's read side and its inventory rows (the app's store is both)."""


def guarded(render: Callable[[Principal], _Made]) -> Callable[[Principal], _Made | str]:
    """A page's bad parameter shown as its own short page (the same message the JSON API gives with 400/404)."""
    def guarded(principal: Principal) -> _Made | str:
        try:
            return render(principal)
        except (InvalidQuery, LookupError) as exc:
            return layout("Not shown", principal, f"<p role=\"alert\">{esc(exc)}</p>")
    return guarded
