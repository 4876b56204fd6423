"""The demo's gateway logs match the demo's inventory: what `service_of` makes of the rows the demo stream leaves."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools.demo_usage import UNKNOWN, DemoLogs, service_of, usage_problems
from devtools.gateway_log_blobs import Written
from devtools.gateway_logs import MASTER, Generator, Traffic
from devtools.management_plane import busiest_service, replayed
from devtools.worker import split_delivery
from tests.test_gateway_logs import recount

STREAM = "demo/stream.json"


def demo_rows() -> tuple[list[dict[str, object]], str]:
    with open(STREAM, encoding="utf-8") as file:
        payloads = [p for delivery in json.load(file) for p in split_delivery(delivery)]
    return replayed(payloads), busiest_service(payloads)


@pytest.mark.unit
def test_the_traffic_names_the_live_rows_of_the_service() -> None:
    rows, service_id = demo_rows()
    service = service_of(rows, service_id)
    assert service.name == "contoso-apim"
    orders = next(a for a in service.apis if a.name == "orders")
    assert orders.revisions == (1, 2) and orders.current == 1 and orders.backend == "orders-backend"
    assert "legacy" not in {a.name for a in service.apis}  # deleted by the stream
    by_name = {s.name: s for s in service.subscriptions}
    assert by_name["alice-starter"].product == "starter" and by_name["alice-starter"].user == "alice-contoso-com"
    assert {p.name for p in service.products} == {"starter"} and service.backends == ("orders-backend",)


@pytest.mark.unit
def test_generated_traffic_names_only_the_inventory_and_the_unknown_ids() -> None:
    rows, service_id = demo_rows()
    service = service_of(rows, service_id)
    generator = Generator(Traffic((service,), datetime(2026, 11, 2, 16, tzinfo=UTC), 4, 800, unknown=UNKNOWN, unknown_every=50))
    lines = [line.text for line in generator.lines()]
    live = {(str(r["Kind"]), str(r["Name"]).lower()) for r in rows if not r.get("IsDeleted") and not r.get("Workspace")
            and str(r["ResourceId"]).lower().startswith(service_id.lower())}
    named = {(kind, rid) for (_, kind, rid, _) in recount(lines).requests if kind in ("api", "product", "subscription", "user", "backend")}
    assert named - live - {("subscription", MASTER), ("subscription", "(none)")} == set(UNKNOWN)


def fake_command(tmp_path: Path, usage: list[dict[str, object]], unused: list[dict[str, object]]) -> Path:
    """An `apim-inventory` that answers `usage` and `unused` with these entries (as `-o json` pages them)."""
    script = tmp_path / "apim-inventory"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"print(json.dumps({{'items': {usage!r}}} if 'usage' in sys.argv else {unused!r}))\n", encoding="utf-8")
    script.chmod(0o755)
    return script


@pytest.mark.slow
def test_the_demo_checks_the_reports_against_the_logs(tmp_path: Path) -> None:
    rows, service_id = demo_rows()
    service = service_of(rows, service_id)
    start = datetime(2026, 11, 2, 16, tzinfo=UTC)
    generator = Generator(Traffic((service,), start, 2, 300, unknown=UNKNOWN))
    list(generator.lines())
    totals: Counter[str] = Counter()
    for (_, kind, rid, _), n in generator.truth.requests.items():
        if kind == "subscription":
            totals[rid] += n
    live = (("contoso-apim", "alice-starter"), ("contoso-apim", "billing-sub"))
    logs = DemoLogs((service,), ("contoso-apim/billing-sub",), live, generator.truth, Written("c"), start)
    usage = [{"service": "contoso-apim", "kind": "subscription", "path": f"subscriptions/{rid}", "total": n} for rid, n in totals.items()]
    unused: list[dict[str, object]] = [{"service": "contoso-apim", "kind": "subscription", "path": "workspaces/billing/subscriptions/billing-sub"}]
    assert usage_problems(logs, fake_command(tmp_path, usage, unused), "2026-11-04T16:17:08Z") == []
    wrong = [{**e, "total": int(str(e["total"])) + 1} if e["path"] == "subscriptions/alice-starter" else e for e in usage]
    assert usage_problems(logs, fake_command(tmp_path, wrong, [*unused, {"service": "contoso-apim", "path": "subscriptions/alice-starter"}]),
                          "2026-11-04T16:17:08Z") == [
        f"usage counts {totals['alice-starter'] + 1} requests of subscription alice-starter in contoso-apim, the logs hold {totals['alice-starter']}",
        "unused lists contoso-apim/alice-starter, which the logs call"]
    assert usage_problems(logs, fake_command(tmp_path, usage, []), "2026-11-04T16:17:08Z") == [
        "unused does not list contoso-apim/billing-sub, which no record names"]
