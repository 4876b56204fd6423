"""The pages under ui/ through the served app: guarded and masked as the JSON is, their figures the JSON API's, their
CSV the command's columns, and only the app's own files (tests/test_pages_browser.py drives them in Chromium)."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest

from shared.domain.personal import Role
from shared.entrypoints import columns
from shared.entrypoints.page_reports import REPORTS
from tests.served_support import PERSONAL_VALUES, Served, principal, served

__all__ = ["served"]  # the module's fixture

pytestmark = [pytest.mark.azurite]
ALICE = "contoso/users/alice"


class Tables(HTMLParser):
    """Each table of a page: its caption, its header cells and its rows' cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, list[Any]]] = []
        self._cell: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"caption": [], "head": [], "rows": []})
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None and self.tables:
            (self.tables[-1]["head"] if tag == "th" else self.tables[-1]["rows"][-1]).append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_caption and self.tables:
            self.tables[-1]["caption"].append(data)
        elif self._cell is not None:
            self._cell.append(data)


def tables_of(body: bytes) -> dict[str, dict[str, list[Any]]]:
    parser = Tables()
    parser.feed(body.decode())
    return {"".join(t["caption"]): {"head": t["head"], "rows": [r for r in t["rows"] if r]} for t in parser.tables}


@pytest.fixture
def signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")


def page(served: Served, path: str, role: Role = Role.READ, **params: str) -> tuple[int, dict[str, str], bytes]:
    return served.get(f"/ui/{path}" + (f"?{urlencode(params)}" if params else ""), {"X-MS-CLIENT-PRINCIPAL": principal(role.value)}, key=False)


PAGES = [("overview", {}), ("resource", {"id": ALICE}), ("resource", {"id": ALICE, "part": "history", "format": "csv"}),
         *(("report", {"name": name, **({"kind": "user"} if name == "inventory" else {})}) for name in REPORTS),
         *(("report", {"name": name, "format": "csv", **({"kind": "user"} if name == "inventory" else {})}) for name in REPORTS)]


@pytest.mark.usefixtures("signed_in")
@pytest.mark.parametrize(("path", "params"), PAGES)
def test_every_page_is_guarded_and_masked_for_its_role(served: Served, path: str, params: dict[str, str]) -> None:
    status, headers, body = page(served, path, Role.READ, **params)
    assert status == 200, body[:300]
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["X-Inventory-Role"] == Role.READ.value
    assert [v for v in PERSONAL_VALUES if v.encode() in body] == []
    assert b'role="alert"' not in body, body[:300]  # a page, not the short page of a refused parameter
    assert served.get(f"/ui/{path}?{urlencode(params)}", key=False)[0] == 401  # no sign-in: refused


@pytest.mark.usefixtures("signed_in")
def test_personal_data_is_shown_to_its_role_on_the_resources_page(served: Served) -> None:
    status, _, body = page(served, "resource", Role.PERSONAL_DATA, id=ALICE)
    assert status == 200 and all(v.encode() in body for v in PERSONAL_VALUES[:3]), "the email, the names and the caller"
    assert b"user " + PERSONAL_VALUES[0].encode() in body, "history names who made the change"


@pytest.mark.usefixtures("signed_in")
def test_the_overviews_counts_are_the_summarys(served: Served) -> None:
    _, _, body = page(served, "overview")
    counts = next(t for caption, t in tables_of(body).items() if caption.startswith("Live and deleted rows per kind"))
    shown = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in counts["rows"]}
    summary = served.json("/api/summary")[2]
    assert shown == {(i["service"], i["kind"]): (i["live"], i["deleted"]) for i in summary["resources"]}
    assert len(shown) > 3


@pytest.mark.usefixtures("signed_in")
def test_a_reports_csv_has_the_commands_columns_and_the_json_apis_rows(served: Served) -> None:
    status, headers, body = page(served, "report", name="changes", format="csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == columns.CHANGES_CSV_COLUMNS
    api = served.json("/api/changes?" + urlencode({"since": "7d", "top": "1000"}))[2]
    assert [r[columns.CHANGES_CSV_COLUMNS.index("Path")] for r in rows[1:]] == [i["Path"] for i in api["items"]]
    status, _, body = page(served, "report", name="inventory", kind="user")
    listed = next(t for caption, t in tables_of(body).items() if re.fullmatch(r"\d+ rows", caption))
    users = served.json("/api/inventory/user?top=1000")[2]["items"]
    assert [r[2] for r in listed["rows"]] == sorted(u["Path"] for u in users), "the rows, in path order as `list` prints them"


@pytest.mark.usefixtures("signed_in")
def test_a_bad_parameter_is_a_short_page_and_an_unknown_report_a_404(served: Served) -> None:
    status, _, body = page(served, "resource", id="contoso/users/nobody")
    assert status == 200 and b'role="alert"' in body and b"nobody" in body
    assert page(served, "report", name="nope")[0] == 404
    assert page(served, "overview", service="no-such-service")[2].count(b'role="alert"') == 1


def test_static_serves_only_its_own_files(served: Served) -> None:
    status, headers, body = served.get("/ui/static/app.css", key=False)
    assert status == 200 and headers["Content-Type"].startswith("text/css") and b"prefers-color-scheme: dark" in body
    assert served.get("/ui/static/..%2Fpage_html.py", key=False)[0] == 404
    assert served.get("/ui/static/other.js", key=False)[0] == 404


@pytest.mark.usefixtures("signed_in")
@pytest.mark.parametrize(("path", "params", "query"), [
    ("overview", {}, {"service": "contoso"}), ("resource", {"id": "contoso/apis/orders"}, {"service": "contoso", "kind": "api", "id": "orders"})])
def test_a_charts_figures_are_the_requests_route(served: Served, path: str, params: dict[str, str], query: dict[str, str]) -> None:
    _, _, body = page(served, path, Role.READ, **params)
    shown = {caption: t for caption, t in tables_of(body).items() if "requests per" in caption}
    assert len(shown) == 2, list(tables_of(body))
    for span, (caption, figures) in zip(("24h", "30d"), sorted(shown.items(), key=lambda item: "day" in item[0]), strict=True):
        api = served.json("/api/requests?" + urlencode({**query, "span": span}))[2]
        assert [[int(n) for n in row[1:]] for row in figures["rows"]] == [[b[k] for k in ("total", "successful", "failed", "unauthorized", "other")]
                                                                           for b in api["buckets"]], caption
        assert sum(b["total"] for b in api["buckets"]) > 0
