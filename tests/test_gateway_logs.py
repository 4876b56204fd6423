"""The gateway-log generator (devtools/gateway_logs.py) and its blob writer (devtools/gateway_log_blobs.py) make what
they claim: records of Microsoft's shape with the promised mix, a `Truth` a brute-force recount of the lines agrees
with, and append blobs at the archive's paths that hold exactly those lines."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.gateway_log_blobs import blob_name, write_lines
from devtools.gateway_logs import MASTER, Api, Generator, Line, Product, Service, Subscription, Traffic, Truth

START = datetime(2026, 11, 30, 22, tzinfo=UTC)
SERVICE = Service("/subscriptions/s-1/resourceGroups/rg-logs/providers/Microsoft.ApiManagement/service/Contoso-Logs",
                  apis=(Api("orders", ("GetOrder", "CreateOrder", "ListOrders"), (1, 2), backend="orders-backend"),
                        Api("echo-api", ("retrieve-resource",), open=True), Api("billing", ("GetInvoice",))),
                  products=(Product("starter", ("orders", "echo-api")), Product("unlimited", ("orders", "billing"))),
                  subscriptions=(Subscription("sub-alice", "starter", "alice"), Subscription("sub-bob", "unlimited", "bob"),
                                 Subscription("sub-all", None, "carol")),
                  users=("alice", "bob", "carol"), backends=("orders-backend",))
OTHER = Service("/subscriptions/s-2/resourceGroups/rg-2/providers/Microsoft.ApiManagement/service/fabrikam",
                apis=(Api("payments", ("Pay",)),), subscriptions=(Subscription("sub-pay", None, "dave"),), users=("dave",))
UNKNOWN = (("api", "legacy-orders"), ("subscription", "retired-key"), ("backend", "old-backend"))
PATH = re.compile(r"resourceId=/SUBSCRIPTIONS/[^/]+/RESOURCEGROUPS/[^/]+/PROVIDERS/MICROSOFT\.APIMANAGEMENT/SERVICE/[^/a-z]+"
                  r"/y=\d{4}/m=\d{2}/d=\d{2}/h=\d{2}/m=00/PT1H\.json")


def traffic(records: int = 3000, seed: int = 16, hours: int = 3, **more: Any) -> Traffic:
    options: dict[str, Any] = {"unknown": UNKNOWN, "unknown_every": 100, "bad_every": 500, **more}
    return Traffic((SERVICE, OTHER), START, hours, records, seed, **options)


def generated(t: Traffic) -> tuple[list[Line], Truth]:
    generator = Generator(t)
    lines = list(generator.lines())
    return lines, generator.truth


def last(raw: str) -> str:
    return raw.rsplit("/", 1)[-1].lower()


def recount(texts: list[str]) -> Truth:
    """The oracle: what the lines say, counted from scratch (bad lines classified as a reader would)."""
    truth = Truth()
    for text in texts:
        try:
            record = json.loads(text)
        except ValueError:
            truth.bad["not-json"] += 1
            continue
        if not isinstance(record, dict):
            truth.bad["not-an-object"] += 1
        elif "time" not in record:
            truth.bad["no-time"] += 1
        elif "resourceId" not in record:
            truth.bad["no-resource-id"] += 1
        else:
            service = record["resourceId"].rsplit("/", 1)[-1].lower()
            moment = datetime.fromisoformat(record["time"][:26] + "+00:00")
            props = record["properties"]
            named = []
            if "apiId" in props:
                api = last(props["apiId"])
                named += [("api", api)] + ([("api", api.split(";")[0])] if ";rev=" in api else [])
                if "operationId" in props:
                    named.append(("operation", f"{api.split(';')[0]}/{last(props['operationId'])}"))
            named += [(kind, last(props[field])) for kind, field in (("product", "productId"), ("subscription", "apimSubscriptionId"),
                                                                    ("user", "userId"), ("backend", "backendId")) if field in props]
            named += [] if "apimSubscriptionId" in props else [("subscription", "(none)")]
            truth.count(Service(service, ()), moment, props["responseCode"], named)
    return truth


@pytest.mark.unit
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.integers(0, 1500), seed=st.integers(0, 2**32), hours=st.integers(1, 4), bad_every=st.sampled_from([0, 7, 100]))
def test_the_truth_is_what_the_lines_say(records: int, seed: int, hours: int, bad_every: int) -> None:
    lines, truth = generated(Traffic((SERVICE, OTHER), START, hours, records, seed, unknown=UNKNOWN, unknown_every=20,
                                     bad_every=bad_every, late_share=0.05))
    oracle = recount([line.text for line in lines])
    assert truth.records == oracle.records == records
    assert truth.requests == oracle.requests
    assert truth.codes == oracle.codes
    assert truth.bad == oracle.bad
    assert sum(truth.bad_kinds.values()) == (records // bad_every if bad_every else 0)


@pytest.mark.unit
def test_the_same_seed_gives_the_same_lines_and_another_seed_others() -> None:
    first, again, other = (generated(traffic(400, seed))[0] for seed in (16, 16, 17))
    assert [(line.text, line.arrival) for line in first] == [(line.text, line.arrival) for line in again]
    assert [line.text for line in first] != [line.text for line in other]


def good_records(lines: list[Line]) -> list[dict[str, Any]]:
    return [json.loads(line.text) for line in lines if line.bad is None]


def empty_values(value: object) -> list[object]:
    if isinstance(value, dict):
        return [v for v in value.values() if v is None or v == ""] + [e for v in value.values() for e in empty_values(v)]
    return []


@pytest.mark.unit
def test_records_have_microsofts_shape_with_empty_fields_omitted() -> None:
    records = good_records(generated(traffic(3000))[0])
    for record in records:
        assert set(record) == {"Level", "isRequestSuccess", "time", "operationName", "category", "durationMs", "callerIpAddress",
                               "correlationId", "location", "properties", "resourceId"}
        assert record["resourceId"] == record["resourceId"].upper() and record["category"] == "GatewayLogs"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", record["time"])
        assert {"method", "url", "responseCode"} <= set(record["properties"])
        assert empty_values(record) == []
    assert {r["resourceId"].rsplit("/", 1)[-1] for r in records} == {"CONTOSO-LOGS", "FABRIKAM"}


@pytest.mark.unit
def test_the_mix_is_realistic() -> None:
    records = good_records(generated(traffic(20000, hours=2))[0])
    codes = Counter(r["properties"]["responseCode"] for r in records)
    assert codes[200] > 0.7 * len(records)
    assert all(codes[code] for code in (201, 204, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503, 0))
    props = [r["properties"] for r in records]
    assert all("backendResponseCode" not in p for p in props if p["responseCode"] in (401, 403, 429, 503))
    assert all("lastError" in p for p in props if p["responseCode"] in (0, 503))
    subscriptions = Counter(p.get("apimSubscriptionId", "(none)") for p in props)
    assert subscriptions[MASTER] and subscriptions["(none)"]
    ids = [str(p[f]) for p in props for f in ("apiId", "operationId", "productId", "apimSubscriptionId", "userId", "backendId") if f in p]
    paths, revisions = sum(i.startswith("/") for i in ids), sum(";rev=" in i for i in ids)
    assert 0.6 * len(ids) < len(ids) - paths and paths > 0.02 * len(ids) and revisions > 0
    durations = sorted(r["durationMs"] for r in records)
    assert 30 < durations[len(durations) // 2] < 150 and durations[-1] > 10_000


@pytest.mark.unit
def test_ids_the_inventory_lacks_appear_only_as_asked() -> None:
    _, truth = generated(traffic(5000))
    known = {("api", a.name) for s in (SERVICE, OTHER) for a in s.apis} | {("product", p.name) for p in SERVICE.products}
    known |= {("subscription", s.name) for svc in (SERVICE, OTHER) for s in svc.subscriptions} | {("subscription", MASTER)}
    known |= {("user", u) for u in (*SERVICE.users, *OTHER.users)} | {("backend", b) for b in SERVICE.backends}
    named = {(kind, rid.split(";")[0]) for (_, kind, rid, _) in truth.requests if kind not in ("service", "operation")}
    assert named - known - {("subscription", "(none)")} == {(kind, rid) for kind, rid in UNKNOWN}
    assert set(truth.unknown) == set(UNKNOWN) and all(truth.unknown.values())


@pytest.mark.unit
def test_lines_come_in_arrival_order_some_late() -> None:
    lines, truth = generated(traffic(4000, late_share=0.01))
    arrivals = [line.arrival for line in lines]
    assert arrivals == sorted(arrivals)
    times = [(datetime.fromisoformat(r["time"][:26] + "+00:00"), line.arrival) for line in lines if line.bad is None
             for r in [json.loads(line.text)]]
    assert all(t <= a <= t + timedelta(hours=48) for t, a in times)
    later = [t for t, a in times if a.replace(minute=0, second=0, microsecond=0) > t]
    assert len(later) == truth.late and truth.late > 0.03 * len(times)
    assert any(a - t > timedelta(hours=1) for t, a in times)


@pytest.mark.unit
def test_every_kind_of_bad_line_is_there() -> None:
    lines, truth = generated(traffic(3000, bad_every=100))
    assert truth.bad_kinds == Counter(dict.fromkeys(("not-json", "not-an-object", "no-time", "no-resource-id", "cut"), 6))
    assert truth.bad == Counter({"not-json": 18, "not-an-object": 6, "no-time": 6, "no-resource-id": 6})
    assert sum(line.bad is not None for line in lines) == 36


def read_back(blobs: BlobServiceClient, container: str) -> dict[str, bytes]:
    client = blobs.get_container_client(container)
    return {b.name: client.get_blob_client(b.name).download_blob().readall() for b in client.list_blobs()}


def test_the_writer_puts_every_line_in_its_hours_append_blob(azurite: Azurite) -> None:
    blobs = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    lines, truth = generated(traffic(4000, late_share=0.01))
    written = write_lines(blobs, "logs-writer", lines, seed=3)
    found = read_back(blobs, "logs-writer")
    assert set(found) == set(written.blobs) and all(PATH.fullmatch(name) for name in found)
    expected: dict[str, list[str]] = {}
    for line in lines:
        expected.setdefault(blob_name(line.service, line.arrival), []).append(line.text)
    assert {name: data.decode().split("\n") for name, data in found.items()} == {name: [*texts, ""] for name, texts in expected.items()}
    assert recount([t for data in found.values() for t in data.decode().split("\n")[:-1]]).requests == truth.requests
    assert written.records == 4000 and written.lines == len(lines) and written.bytes == sum(len(d) for d in found.values())
    for name, report in written.blobs.items():
        properties = blobs.get_blob_client("logs-writer", name).get_blob_properties()
        assert properties.blob_type == "AppendBlob" and properties.size == report.bytes
        assert properties.append_blob_committed_block_count == report.appends
        assert report.lines == len(expected[name])
    assert max(r.appends for r in written.blobs.values()) > 5 and written.mid_line > 0
    hours = {name.split("/y=")[1] for name in found}
    assert len(hours) > 3  # three hours of records, and the later hours' late arrivals


def test_appends_end_inside_a_line_and_the_next_completes_it(azurite: Azurite) -> None:
    """The blob's size after each append (as a reader polling it would see it) ends inside a line as often as the
    writer says, and the blob ends with a complete line."""
    blobs = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    lines, _ = generated(traffic(600, hours=1, bad_every=0))
    written = write_lines(blobs, "logs-cut", lines, mid_line_share=0.5)
    found = read_back(blobs, "logs-cut")
    inside = sum(found[name][size - 1] != ord("\n") for name, report in written.blobs.items() for size in report.sizes)
    assert inside == written.mid_line > 0
    for name, report in written.blobs.items():
        assert report.sizes[-1] == len(found[name]) and found[name].endswith(b"\n")
        assert all(json.loads(text) for text in found[name].decode().split("\n")[:-1])
