"""The demo's gateway logs: two days of traffic that matches the inventory the demo built (its live APIs, products,
subscriptions, users and backends, service by service), written into the demo Azurite's archive container; then the
app reads them (`usage ingest`) and reports (`usage`, `unused --kind subscription`), and the demo checks the report
against what it wrote.

Workspace resources get no traffic (the demo's workspaces hold a subscription nobody calls: `unused` lists it), a
couple of ids the inventory lacks are called (`usage --unknown`), and some requests use `master` or no key."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from devtools.gateway_log_blobs import Written, write_lines
from devtools.gateway_logs import Api, Generator, Product, Service, Subscription, Traffic, Truth

RECORDS = 3000
HOURS = 48
UNKNOWN = (("api", "orders-v0"), ("subscription", "retired-key"))
OPERATIONS = ("get-{}", "list-{}", "create-{}", "update-{}")
REPORTS: tuple[tuple[str, ...], ...] = (("usage", "ingest"), ("usage",), ("usage", "--kind", "subscription"),
                                        ("unused", "--kind", "subscription"), ("usage", "--unknown"))


@dataclass(frozen=True)
class DemoLogs:
    services: tuple[Service, ...]
    idle: tuple[str, ...]  # live subscriptions (service/name) no record names
    live: tuple[tuple[str, str], ...]  # every live subscription, as (service key, name lower case)
    truth: Truth
    written: Written
    start: datetime


def _last(value: object) -> str:
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


def service_of(rows: list[dict[str, Any]], service_id: str) -> Service:
    """What the traffic of one service can name: its live service-level rows of the counted kinds."""
    live = [r for r in rows if not r.get("IsDeleted") and not r.get("Workspace")
            and str(r.get("ResourceId", "")).lower().startswith(service_id.lower() + "/")]
    of = {kind: [r for r in live if r.get("Kind") == kind] for kind in ("api", "product", "productApi", "subscription", "user", "backend")}
    backends = tuple(sorted(str(r["Name"]) for r in of["backend"]))
    revisions: dict[str, set[int]] = {}
    for r in of["api"]:
        revisions.setdefault(str(r["Api"]), {1}).add(int(r.get("Revision") or 1))
    apis = tuple(Api(name, tuple(op.format(name) for op in OPERATIONS), tuple(sorted(revs)), current=1,
                     backend=next((b for b in backends if b.split("-")[0] == name), None)) for name, revs in sorted(revisions.items()))
    linked: dict[str, list[str]] = {str(r["Path"]).split("/")[1]: [] for r in of["product"]}
    for r in of["productApi"]:
        linked.setdefault(str(r["Path"]).split("/")[1], []).append(_last(r["Path"]))
    products = tuple(Product(name, tuple(links) or tuple(a.name for a in apis)) for name, links in sorted(linked.items()))
    users = tuple(sorted(str(r["Name"]) for r in of["user"]))
    subscriptions = tuple(Subscription(str(r["Name"]), _scope_product(r, linked), _owner(r, users)) for r in
                          sorted(of["subscription"], key=lambda r: str(r["Name"])))
    return Service(service_id, apis, products, subscriptions, users, backends)


def _scope_product(row: dict[str, Any], products: dict[str, Any]) -> str | None:
    scope = str(row.get("Scope") or "")
    if "/products/" in scope:
        return _last(scope)
    return next((p for p in products if str(row["Name"]).endswith(p)), None)


def _owner(row: dict[str, Any], users: tuple[str, ...]) -> str | None:
    if row.get("OwnerId"):
        return _last(row["OwnerId"])
    return next((u for u in users if u.split("-")[0] == str(row["Name"]).split("-")[0]), None)


def demo_logs(rows: list[dict[str, Any]], service_ids: Iterable[str], now: datetime, blob_connection: str, container: str) -> DemoLogs:
    """Write two days of traffic up to `now` (no line arrives later) for each service into `container`."""
    services = tuple(service_of(rows, sid) for sid in service_ids)
    services = tuple(s for s in services if s.apis)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)
    generator = Generator(Traffic(services, start, HOURS, RECORDS, seed=16, unknown=UNKNOWN, unknown_every=100, bad_every=1000, until=now))
    blobs = BlobServiceClient.from_connection_string(blob_connection)
    written = write_lines(blobs, container, generator.lines(), flush_seconds=900)  # a few appends an hour: the demo stays quick
    used = {(service, rid) for (service, kind, rid, _) in generator.truth.requests if kind == "subscription"}
    live_subscriptions = [(str(r["Service"]), str(r["Name"])) for r in rows if r.get("Kind") == "subscription" and not r.get("IsDeleted")]
    idle = tuple(f"{s}/{n}" for s, n in live_subscriptions if (s.lower(), n.lower()) not in used)
    live = tuple((s.lower(), n.lower()) for s, n in live_subscriptions)
    return DemoLogs(services, idle, live, generator.truth, written, start)


def logs_lines(logs: DemoLogs, container: str) -> list[str]:
    t = logs.truth
    return ["", f"Gateway logs: {t.records:,} records of {', '.join(s.name for s in logs.services)} over the {HOURS} hours from "
            f"{logs.start:%Y-%m-%dT%H:%MZ}, in {len(logs.written.blobs)} append blobs of container {container} "
            f"({logs.written.appends} appends, {t.late} records in a later hour's blob, {sum(t.bad.values())} bad lines)",
            f"  calls of ids the inventory lacks: {', '.join(f'{k} {i} ({n})' for (k, i), n in sorted(t.unknown.items()))}",
            f"  live subscriptions no record names: {', '.join(logs.idle) or '-'}"]


def usage_problems(logs: DemoLogs, command: Path, now: str) -> list[str]:
    """Where `usage --kind subscription -o json` disagrees with the records written about the live subscriptions, and
    `unused` with the idle ones."""
    expected = dict.fromkeys(logs.live, 0)
    for (service, kind, rid, _), n in logs.truth.requests.items():
        if kind == "subscription" and (service, rid) in expected:
            expected[(service, rid)] += n
    run: Callable[..., subprocess.CompletedProcess[str]] = lambda *a: subprocess.run(  # noqa: E731
        [str(command), "--now", now, *a, "-o", "json"], capture_output=True, encoding="utf-8", check=False)
    usage = run("usage", "--kind", "subscription", "--since", f"{logs.start:%Y-%m-%dT%H:%M:%SZ}")
    if usage.returncode != 0:
        return [f"apim-inventory usage -o json failed: {usage.stderr.strip()}"]
    found = {(_last(e["service"]).lower(), _last(e["path"]).lower()): int(e["total"]) for e in _entries(json.loads(usage.stdout))}
    problems = [f"usage counts {found.get(key, 0)} requests of subscription {key[1]} in {key[0]}, the logs hold {n}"
                for key, n in expected.items() if found.get(key, 0) != n]
    unused = run("unused", "--kind", "subscription")
    if unused.returncode != 0:
        return [*problems, f"apim-inventory unused -o json failed: {unused.stderr.strip()}"]
    listed = {(_last(e.get("service")).lower(), _last(e.get("path")).lower()) for e in _entries(json.loads(unused.stdout))}
    idle = {(path.split("/")[0].lower(), path.split("/")[-1].lower()) for path in logs.idle}
    problems += [f"unused does not list {s}/{n}, which no record names" for s, n in sorted(idle - listed)]
    problems += [f"unused lists {s}/{n}, which the logs call" for s, n in sorted(listed) if expected.get((s, n))]
    return problems


def _entries(document: Any) -> list[dict[str, Any]]:
    """The entries of a report: the document itself when a list, else its first list (a page's `items`)."""
    if isinstance(document, dict):
        document = document.get("items", next((v for v in document.values() if isinstance(v, list)), []))
    return [e for e in document if isinstance(e, dict)]
