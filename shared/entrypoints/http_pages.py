"""The pages under /ui: anonymous at the host, served only to a signed-in person with an app role (shared.entrypoints.signin),
masked for that role. `page` is the guard every page goes through; GET /ui/whoami is the one page so far."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from shared.domain.personal import Role
from shared.entrypoints.http_api import answer
from shared.entrypoints.page_html import STATIC
from shared.entrypoints.signin import ROLE_HEADER, Principal, Refused, page_principal, refused

log = logging.getLogger("apim_inventory.pages")
# No script, style or image from elsewhere, no framing: the pages are the app's own and nothing else.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True)
class Csv:
    """A page's list as a download: the command's columns, masked for the role the page is served under."""

    text: str
    filename: str


def page(req: func.HttpRequest, render: Callable[[Principal], str | Csv]) -> func.HttpResponse:
    """`render`'s HTML (or CSV) for the signed-in person, or the 401 line that says why not (logged as a warning, no
    traceback)."""
    try:
        principal = page_principal(req)
    except Refused as exc:
        log.warning("page %s refused: %s", req.url.split("?", 1)[0][-200:], exc)
        return refused(str(exc))
    headers = {**SECURITY_HEADERS, ROLE_HEADER: principal.role.value}
    made = render(principal)
    if isinstance(made, Csv):
        return func.HttpResponse(made.text, status_code=200, mimetype="text/csv", charset="utf-8",
                                 headers={**headers, "Content-Disposition": f'attachment; filename="{made.filename}"'})
    return func.HttpResponse(made, status_code=200, mimetype="text/html", charset="utf-8", headers=headers)


def page_json(req: func.HttpRequest, work: Callable[[Principal], Any]) -> func.HttpResponse:
    """JSON for a page's script, under ui/ (a browser holds no function key): the same guard as `page`, then answered
    as the JSON API answers (errors, X-Inventory-Role), masked for the principal's role."""
    try:
        principal = page_principal(req)
    except Refused as exc:
        log.warning("page data %s refused: %s", req.url.split("?", 1)[0][-200:], exc)
        return refused(str(exc))
    return answer(lambda: work(principal), principal.role)


STATIC_FILES = Path(__file__).with_name("static")


def static(req: func.HttpRequest) -> func.HttpResponse:
    """GET /ui/static/{name}: the pages' stylesheet and script (STATIC), the app's own files; any other name is 404.
    Served to anyone: they hold no data, and the host's sign-in already guards ui/ in Azure."""
    name = req.route_params.get("name", "")
    if name not in STATIC:
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain", headers=SECURITY_HEADERS)
    return func.HttpResponse((STATIC_FILES / name).read_bytes(), status_code=200, mimetype=STATIC[name], charset="utf-8",
                             headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})


def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """GET /ui/whoami: who is signed in, with which roles, and what the answers show them."""

    def render(principal: Principal) -> str:
        sees = ("everything, personal data included" if principal.role is Role.PERSONAL_DATA
                else "everything but personal data (users' emails and names, audit callers and their addresses), which is masked")
        roles = "".join(f"<li>{html.escape(r)}</li>" for r in principal.roles)
        return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in: apim-inventory</title>"
                "<link rel=\"icon\" href=\"static/icon.svg\" type=\"image/svg+xml\">"  # else the browser asks /favicon.ico: a 404
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body><main>"
                f"<h1>Signed in as {html.escape(principal.name or '(no name claim)')}</h1>"
                f"<p>Served under the role <strong>{html.escape(principal.role.value)}</strong>: you see {sees}.</p>"
                f"<h2>Role claims</h2><ul>{roles}</ul></main></body></html>")

    return page(req, render)
