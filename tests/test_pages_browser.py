"""Every page in PAGES in a real Chromium over `make serve`'s server: it loads (200, no console error), asks nothing from
elsewhere, weighs under 100 KB, axe finds nothing serious in light and dark, Tab reaches every control, its CSP keeps
it to its own origin; screenshots at 1280 and 390 px go to test-screenshots/. New pages are covered by being in PAGES."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import node_available
from devtools.demo import COMMAND
from devtools.http_host import local_principal
from shared.domain.personal import Role
from shared.entrypoints.openapi import PAGES
from shared.entrypoints.signin import PRINCIPAL_HEADER, ROLE_HEADER
from tests.browser_support import SCREENSHOTS, Serving, browser, served_pages

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.skipif(not node_available(), reason="make serve needs node")]
__all__ = ["browser", "served_pages"]  # the fixtures, used by name

ROUTES = sorted(route for route in PAGES.values() if "{" not in route)  # ui/static/{name} serves files, not pages
MAX_BYTES = 100_000


def _first_resource_id(served: Serving) -> dict[str, str]:
    request = urllib.request.Request(served.url + "api/inventory/api", headers={"x-functions-key": served.key})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: Any = json.loads(response.read())
    rows = body if isinstance(body, list) else next(v for v in body.values() if isinstance(v, list))
    return {"id": f"{rows[0]['Service']}/{rows[0]['Path']}"}


# The query a page needs, found at test time; a page not named here is loaded without one.
PAGE_EXAMPLES: dict[str, Callable[[Serving], dict[str, str]]] = {"ui/resource": _first_resource_id,
                                                                 "ui/report": lambda served: {"name": "changes"}}


def _url(served: Serving, route: str) -> str:
    params = PAGE_EXAMPLES[route](served) if route in PAGE_EXAMPLES else {}
    return served.url + route + ("?" + urllib.parse.urlencode(params) if params else "")


FOCUSABLE = """() => [...document.querySelectorAll('a[href], button, input, select, summary, textarea, [tabindex]')]
  .filter(e => !e.disabled && e.tabIndex >= 0
               && e.checkVisibility({visibilityProperty: true}))  // false inside a closed <details> too
  .map((e, i) => { e.dataset.focusProbe = String(i); return i + ' ' + e.outerHTML.slice(0, 100); })"""
FOCUSED = """() => { const e = document.activeElement;
  return e && e.dataset.focusProbe !== undefined ? e.dataset.focusProbe + ' ' + e.outerHTML.slice(0, 100) : ''; }"""


def _serious(results: Any) -> list[str]:
    violations = results.response.get("violations", [])
    for other in (v for v in violations if v.get("impact") not in ("serious", "critical")):
        print(f"axe ({other.get('impact')}): {other['id']}: {other.get('help')}")
    return [f"{v['id']} ({v['impact']}): {v.get('help')}" for v in violations if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize("route", ROUTES)
def test_the_page_loads_alone_light_and_weighs_little(browser: Any, served_pages: Serving, route: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url = _url(served_pages, route)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    weight: list[int] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda answer: errors.append(f"{answer.status} {answer.url}") if answer.status >= 400 else None)
    page.on("requestfinished", lambda request: weight.append(request.sizes()["responseBodySize"]))
    try:
        response = page.goto(url, wait_until="networkidle")
        assert response is not None and response.status == 200, f"{url}: {response and response.status}"
        assert "default-src 'self'" in response.headers.get("content-security-policy", "")
        assert not errors, f"{url}: console errors {errors}"
        assert all(r.startswith(served_pages.url) for r in requests), f"{url} asked elsewhere: {requests}"
        assert sum(weight) < MAX_BYTES, f"{url}: first screen weighs {sum(weight)} bytes"
        assert not (serious := _serious(Axe().run(page))), f"{url}: {serious}"
        SCREENSHOTS.mkdir(exist_ok=True)
        name = route.replace("/", "_")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-390.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("route", ROUTES)
def test_tab_reaches_every_control(browser: Any, served_pages: Serving, route: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(_url(served_pages, route), wait_until="networkidle")
        wanted = {probe.split(" ", 1)[0]: probe for probe in page.evaluate(FOCUSABLE)}
        reached: set[str] = set()
        for _ in range(2 * len(wanted) + 10):  # room for focusable things the list leaves out (a summary's, a link's)
            page.keyboard.press("Tab")
            reached.add(page.evaluate(FOCUSED).split(" ", 1)[0])
        missed = [probe for index, probe in wanted.items() if index not in reached]
        assert not missed, f"{route}: Tab never reaches {missed}"
    finally:
        context.close()


@pytest.mark.parametrize("route", ROUTES)
def test_the_page_in_dark_mode_has_no_serious_accessibility_problem(browser: Any, served_pages: Serving, route: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(_url(served_pages, route), wait_until="networkidle")
        assert not (serious := _serious(Axe().run(page))), f"{route} (dark): {serious}"
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{route.replace('/', '_')}-1280-dark.png"), full_page=True)
    finally:
        context.close()


def test_the_server_signs_in_every_page_caller_itself_and_trusts_no_principal_sent_from_outside(served_pages: Serving) -> None:
    """--sign-in-as plays App Service Authentication: a plain GET (no sign-in header) is served as Inventory.Read, and a
    principal a caller forges for a higher role is dropped. Without --sign-in-as a page is a 401 (tests/test_pages.py)."""
    forged = {PRINCIPAL_HEADER: local_principal(Role.PERSONAL_DATA)}
    for headers in ({}, forged):
        request = urllib.request.Request(served_pages.url + "ui/whoami", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and response.headers[ROLE_HEADER] == Role.READ.value, headers


def test_the_drill_down_and_the_csv_download_are_the_commands(browser: Any, served_pages: Serving) -> None:
    """From the overview's counts to the list of a kind's rows by its link; that list downloaded as CSV by the page's
    link is what `apim-inventory list api -o csv` prints against the same store (APIs hold no personal data: the page
    masks it for Inventory.Read, the command does not); from the list to a resource's page, with its history."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(served_pages.url + "ui/overview?service=contoso-apim", wait_until="networkidle")
        page.locator("section:has(h2#counts) a", has_text="api").first.click()
        page.wait_for_load_state("networkidle")
        with page.expect_download() as download:
            page.locator("a[download]").click()
        downloaded = Path(download.value.path()).read_text(encoding="utf-8")
        printed = subprocess.run([str(COMMAND), "list", "api", "--service", "contoso-apim", "-o", "csv"], capture_output=True, text=True,
                                 env={**os.environ, **served_pages.env}, timeout=120, check=True).stdout
        assert downloaded == printed and downloaded.count("\n") > 2, (downloaded[:300], printed[:300])
        page.locator("td a[href^='resource?id=']").first.click()
        page.wait_for_load_state("networkidle")
        assert page.locator("h2#details").count() == 1 and page.locator("h2#history").count() == 1, page.url
        assert page.locator("section:has(h2#history) tbody tr").count() >= 1
    finally:
        context.close()
