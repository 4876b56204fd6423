"""The demo's gateway logs match the demo's inventory: what `service_of` makes of the rows the demo stream leaves."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from devtools.demo_usage import UNKNOWN, service_of
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
