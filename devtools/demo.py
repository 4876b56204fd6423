"""`make demo`: start Azurite and a local ARM stand-in, deliver demo/stream.json to the indexed function as the
Functions worker would, with enrichment from ARM on, then print the inventory it built, the events it rejected, the
flags, and what a full sync from the management plane changes; and run the command's questions at the stream's clock
(README.md, "What `make demo` shows", says what it prints: tests/test_demo.py holds the two to each other)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devtools import demo_audit
from devtools.arm_standin import ArmStandIn
from devtools.azurite import ROOT, Azurite
from devtools.demo_usage import REPORTS, demo_logs, logs_lines, usage_problems
from devtools.management_plane import SECRET, DemoPlane, busiest_service, demo_plane, replayed
from devtools.store_reads import history_records, inventory_rows, pending_entities, rejected_records
from devtools.worker import decode_event, fire_timer, indexed_function, split_delivery
from shared import bootstrap
from shared.config import Settings
from shared.domain.details import FIELDS
from shared.domain.flags import Alert
from shared.domain.kinds import Kind
from shared.domain.times import parse_time
from shared.entrypoints.output import cell, short_type, table, when
from shared.integrations.alerts import LoggingAlertPublisher
from shared.integrations.storage import table_service_client
from shared.store.counts import WINDOWS, window_start
from shared.store.table import TableStore

STREAM = ROOT / "demo" / "stream.json"
COMMAND = Path(sys.executable).parent / "apim-inventory"
OUTCOMES = ("applied", "stale", "duplicate", "rejected")
REJECTED_FIELDS = (("id", "EventId"), ("type", "EventType"), ("subject", "Subject"))
# The detail columns shown, by the ARM property each is read from (docs/schema.md names the columns).
SHOWN_PROPERTIES = {"user": ("email", "state"), "api": ("displayName", "path", "apiRevision", "isCurrent"), "apiRelease": ("notes",),
                    "product": ("displayName", "approvalRequired"), "subscription": ("ownerId", "state", "expirationDate"),
                    "gateway": ("locationData.city", "locationData.countryOrRegion"), "gatewayHostnameConfiguration": ("hostname",),
                    "backend": ("url",), "circuitBreakerRule": ("tripDuration",)}


def extra(row: dict[str, Any]) -> str:
    if row.get("Revision") is not None:
        return f"revision {row['Revision']}"
    if row.get("TokenStatus"):
        verb = "expired at" if row["TokenStatus"] == "expired" else "expires"
        return f"token {row['TokenStatus']}, {verb} {when(row.get('TokenExpiresAt'))}"
    if row.get("BreakerState"):
        trip = f" (trip {row['TripDuration']})" if row.get("TripDuration") else ""
        return f"breaker {row['BreakerState']}{trip}"
    return ""


def service_id(row: dict[str, Any]) -> str:
    resource_id, path = str(row.get("ResourceId", "")), str(row.get("Path", ""))
    return resource_id[: -len(path) - 1] if path and resource_id.endswith("/" + path) else resource_id


def inventory_lines(rows: list[dict[str, Any]]) -> list[str]:
    order = {kind: i for i, kind in enumerate(Kind)}
    rows.sort(key=lambda r: (service_id(r).lower(), order.get(r.get("Kind", ""), len(order)), str(r.get("Path", "")).lower()))
    lines: list[str] = []
    for service in dict.fromkeys(service_id(r) for r in rows):
        group = [r for r in rows if service_id(r) == service]
        live = sum(not r.get("IsDeleted") for r in group)
        lines += ["", f"{service.rsplit('/', 1)[-1]}  ({len(group)} rows, {live} live)  {service}"]
        cells, previous = [], None
        for r in group:
            kind = str(r.get("Kind", ""))
            cells.append([
                kind if kind != previous else "", str(r.get("Path", "")), "deleted" if r.get("IsDeleted") else "live",
                extra(r), short_type(r.get("LastEventType")), when(r.get("LastEventTime")),
            ])
            previous = kind
        lines += table(("Kind", "Path", "State", "Extra", "LastEventType", "LastEventTime"), cells)
    return lines


def rejected_lines(records: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"Rejected events ({len(records)})"]
    for r in sorted(records, key=lambda r: (str(r.get("Reason")), str(r.get("EventId")))):
        fields = (f"{name}={r.get(key) or '-'}" for name, key in REJECTED_FIELDS)
        lines.append(f"  {r.get('Reason')}: {' '.join(fields)}")
        lines.append(f"      {r.get('Message')}")
    return lines


class CollectingPublisher:
    """What the app does with no topic configured is log alerts; the demo also keeps them to print."""

    destination = "log"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def publish(self, alerts: list[Alert]) -> None:
        LoggingAlertPublisher().publish(alerts)
        self.alerts.extend(alerts)


def flag_lines(rows: list[dict[str, Any]], alerts: list[Alert], now: datetime) -> list[str]:
    flagged = [r for r in rows if not r.get("IsDeleted") and (r.get("TokenStatus") in ("nearExpiry", "expired")
                                                               or r.get("BreakerState") == "open")]
    cells = [[r["Service"], r["Path"], extra(r) + (", STUCK OPEN" if r.get("StuckOpen") else "")] for r in flagged]
    lines = ["", f"Flags after the sweeps at {when(now)} (tokens within 7 days of expiry, open breakers)"]
    lines += table(("Service", "Path", "Flag"), cells)
    lines += ["", f"Alerts raised ({len(alerts)}; no ALERTS_TOPIC_ENDPOINT is set, so they are logged)"]
    lines += [f"  {a.type:<40}{a.subject}" for a in alerts]
    return lines


def plane_lines(plane: DemoPlane, arm: ArmStandIn, reads: Counter[str], rows: list[dict[str, Any]]) -> list[str]:
    """What the stand-in holds, and what enrichment on events made of it."""
    name = plane.service_id.rsplit("/", 1)[-1]
    pending: dict[tuple[str, str], list[str]] = {}
    for r in sorted((r for r in rows if r.get("EnrichmentPending")), key=lambda r: (r["Service"], r["Path"])):
        pending.setdefault((r["Service"], str(r.get("EnrichmentError"))), []).append(r["Path"])
    cells = [[service, error, str(len(paths)), ", ".join(paths) if service == name else f"the stand-in holds {name} only"]
             for (service, error), paths in pending.items()]
    return ["", f"Management plane: a local ARM stand-in at {arm.endpoint}, holding {name} as APIM holds it now:",
            f"  what the stream leaves live, plus {' and '.join(plane.pre_existing)} (they predate the event subscription),",
            f"  plus workspaces {' and '.join(plane.workspaces)} with an API, a product linking it and a subscription each"
            " (no event names a workspace's resources),",
            f"  less {plane.lost_deletion} (deleted since, but its deletion event was lost): {len(plane.resources) - 1} resources",
            f"  Enrichment on events: {reads['enriched']} reads of ARM enriched a row, {reads['pending'] + reads['throttled']} failed "
            f"(the other service, and resources deleted since);",
            f"  {sum(len(p) for p in pending.values())} rows are left EnrichmentPending, for the reconcile timer to retry:",
            *table(("Service", "EnrichmentError", "Rows", "Paths"), cells, "    ")]


def details_lines(plane: DemoPlane, rows: list[dict[str, Any]]) -> list[str]:
    """Some of the documented detail columns of the main service's live rows, after the sync."""
    order = {kind: i for i, kind in enumerate(Kind)}
    shown = sorted((r for r in rows if service_id(r).lower() == plane.service_id.lower() and r.get("Kind") in SHOWN_PROPERTIES
                    and not r.get("IsDeleted")), key=lambda r: (order[r["Kind"]], str(r["Path"]).lower()))
    prefix = plane.service_id + "/"

    def details(row: dict[str, Any]) -> str:
        columns = [column for column, (path, _) in FIELDS.get(row["Kind"], {}).items() if path in SHOWN_PROPERTIES[row["Kind"]]]
        values = {column: row.get(column) for column in columns}
        return "  ".join(f"{c}={when(v) if isinstance(v, datetime) else cell(v).removeprefix(prefix)}" for c, v in values.items())

    cells = [[r["Kind"], r["Path"], details(r), short_type(r.get("LastEventType"))] for r in shown]
    return ["", f"Enriched rows of {plane.service_id.rsplit('/', 1)[-1]} after the sync (some detail columns; ids in the service shortened)",
            *table(("Kind", "Path", "Details", "LastEventType"), cells)]


def sync_effects(plane: DemoPlane, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What the sync did to the resources where the stand-in and the events differ: (lines, problems)."""
    found = {str(r["Path"]): r for r in rows if service_id(r).lower() == plane.service_id.lower()}
    lines, problems = ["", "After the sync, where the management plane and the events differed"], []
    expected = [*((p, False) for p in plane.pre_existing), (plane.lost_deletion, True)]
    width = max(len(path) for path, _ in expected) + 2
    for path, deleted in expected:
        row = found.get(path, {})
        state = "missing" if not row else "deleted" if row.get("IsDeleted") else "live"
        lines.append(f"  {path:<{width}}{state:<9}{short_type(row.get('LastEventType'))} at {when(row.get('LastEventTime'))}"
                     + (", no longer EnrichmentPending" if deleted and row.get("EnrichmentPending") is False else ""))
        if state != ("deleted" if deleted else "live"):
            problems.append(f"{path} is {state} after the sync")
    return lines, problems


def workspace_lines(plane: DemoPlane, rows: list[dict[str, Any]], deleted: str) -> tuple[list[str], list[str]]:
    """The workspaces' rows after the sync that followed `deleted`'s deletion on the management plane: (lines, problems)."""
    mine = sorted((r for r in rows if service_id(r).lower() == plane.service_id.lower() and r.get("Workspace")),
                  key=lambda r: (str(r["Workspace"]), str(r["Path"]).lower()))
    cells = [[str(r["Workspace"]), str(r["Kind"]), str(r["Path"]), "deleted" if r.get("IsDeleted") else "live",
              short_type(r.get("LastEventType"))] for r in mine]
    lines = ["", f"After the next sync, the rows of the workspaces ({sum(r['Workspace'] == deleted for r in mine)} of {deleted}, "
             "tombstoned with it across families; the other's live)", *table(("Workspace", "Kind", "Path", "State", "LastEventType"), cells)]
    problems = [f"{r['Path']} is {'deleted' if r.get('IsDeleted') else 'live'} after the sync" for r in mine
                if bool(r.get("IsDeleted")) != (r["Workspace"] == deleted)]
    if {str(r["Workspace"]) for r in mine} != set(plane.workspaces):
        problems.append(f"the sync left rows of workspaces {sorted({str(r['Workspace']) for r in mine})}, not {list(plane.workspaces)}")
    return lines, problems


def check_secrets(repo: TableStore) -> tuple[int, list[str]]:
    """No inventory, history, rejected or alert row holds the stand-in's keys and credentials: (rows read, problems)."""
    entities = [*inventory_rows(repo), *history_records(repo), *rejected_records(repo), *pending_entities(repo)]
    return len(entities), [f"{e.get('Path') or e.get('PathKey') or e.get('RowKey')}: {column} holds a secret"
                           for e in entities for column, v in e.items() if SECRET in str(v)]


def latest_time(delivery: Any) -> datetime:
    times = [e.get("time") or e.get("eventTime") for e in (delivery if isinstance(delivery, list) else [delivery])]
    return max(parse_time(t, "time") for t in times if isinstance(t, str))


Recorded = list[tuple[datetime, str]]  # each event's outcome, at the clock it was recorded at


def deliver_stream(deliveries: list[Any], clock: list[datetime]) -> Recorded:
    """Each delivery, event by event, seconds after its newest event; then the timers, at their next run."""
    logging.disable(logging.WARNING)  # indexing warns that auth levels apply to HTTP triggers only
    function = indexed_function("apim_events")
    logging.disable(logging.NOTSET)
    counts = bootstrap.services().processor.counts
    recorded: Recorded = []
    for delivery in deliveries:
        clock[0] = max(clock[0], latest_time(delivery) + timedelta(seconds=2))
        for payload in split_delivery(delivery):
            before = Counter(counts)
            function(decode_event(payload))
            recorded += [(clock[0], outcome) for outcome in (Counter(counts) - before).elements()]
    clock[0] += timedelta(minutes=15)
    for timer in ("gateway_token_sweep", "circuit_breaker_sweep"):
        fire_timer(timer)
    return recorded


def in_windows(recorded: Recorded, now: datetime) -> dict[str, Counter[str]]:
    """The outcomes the summary's windows hold at `now`, from what the demo recorded (shared.store.counts's windows)."""
    return {window: Counter(outcome for moment, outcome in recorded if window_start(now, window) <= moment <= now) for window in WINDOWS}


def window_lines(recorded: Recorded, now: datetime) -> list[str]:
    windows = in_windows(recorded, now)
    older = sorted({f"{moment:%Y-%m-%d}" for moment, _ in recorded if moment < window_start(now, "lastDay")})
    return ["", f"The summary counts events by when they were recorded, which here is the stream's clock: of the {len(recorded)} "
            f"events, {sum(windows['lastHour'].values())} were recorded in the last hour before {when(now)} and "
            f"{sum(windows['lastDay'].values())} in the last day; the other {len(recorded) - sum(windows['lastDay'].values())} "
            f"on {', '.join(older) or '-'}."]


def check_summary(recorded: Recorded, now: datetime) -> list[str]:
    """Problems: where the summary's windows disagree with what the demo recorded."""
    result = subprocess.run([str(COMMAND), "--now", when(now), "summary", "-o", "json"], capture_output=True, encoding="utf-8", check=False)
    if result.returncode != 0:
        return [f"apim-inventory summary -o json failed: {result.stderr.strip()}"]
    windows, expected = json.loads(result.stdout)["events"], in_windows(recorded, now)
    return [f"summary's {window} counts {metric} {windows[window][metric]}, the demo recorded {expected[window][metric]}"
            for window in WINDOWS for metric in OUTCOMES if windows[window][metric] != expected[window][metric]]


def run(stream: Path) -> int:
    deliveries: list[Any] = json.loads(stream.read_text(encoding="utf-8"))
    logging.getLogger("apim_inventory").setLevel(logging.ERROR)  # the summary below says it all
    payloads = [payload for delivery in deliveries for payload in split_delivery(delivery)]
    plane = demo_plane(busiest_service(payloads), replayed(payloads))
    with ExitStack() as stack:
        azurite = stack.enter_context(Azurite(blob=True))  # Blob holds the gateway logs' archive
        arm = stack.enter_context(ArmStandIn())  # enrichment from ARM is on only while it runs
        stack.callback(bootstrap.install, None)
        arm.put_many(plane.resources)
        os.environ.update({"INVENTORY_STORAGE": azurite.connection_string, "ENRICH_FROM_ARM": "true", "ARM_ENDPOINT": arm.endpoint,
                           "GATEWAY_LOGS_STORAGE": azurite.blob_connection_string,
                           "ACTIVITY_LOGS_STORAGE": azurite.blob_connection_string, **arm.identity_env()})
        problems = show(stream, deliveries, plane, arm)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def show(stream: Path, deliveries: list[Any], plane: DemoPlane, arm: ArmStandIn) -> list[str]:
    """Run the stream, the timers and the commands, and print what they leave; the problems found."""
    clock = [min(latest_time(d) for d in deliveries)]  # the demo's clock follows the stream
    publisher = CollectingPublisher()
    settings = Settings.from_env()
    repo = bootstrap.table_store(table_service_client(), settings)
    repo.create_tables()
    bootstrap.install(bootstrap.wire(repo, settings, publisher, lambda: clock[0], bootstrap.arm_client(settings)))
    early, late = demo_audit.records(plane.service_id, max(latest_time(d) for d in deliveries) + timedelta(minutes=15))
    subscription = plane.service_id.split("/")[2]
    demo_audit.append(os.environ["ACTIVITY_LOGS_STORAGE"], settings.activity_logs_container, subscription, early)
    bootstrap.ingest(bootstrap.activity_logs(settings, services_=bootstrap.services()))  # read before their events come
    recorded = deliver_stream(deliveries, clock)
    delivered = len(recorded)
    processor = bootstrap.services().processor
    rows, rejected, outcomes = list(inventory_rows(repo)), rejected_records(repo), processor.counts
    enricher = bootstrap.services().reconciler.enricher  # the one the pipeline calls too
    reads = enricher.counts if enricher else Counter[str]()
    services = sorted({service_id(r).rsplit("/", 1)[-1] for r in rows})
    counts = ", ".join(f"{name} {outcomes[name]}" for name in OUTCOMES)
    print(f"APIM inventory demo: {stream.relative_to(ROOT) if stream.is_relative_to(ROOT) else stream}")
    print(f"  services:   {len(services)} ({', '.join(services)})")
    print(f"  deliveries: {len(deliveries)} HTTP POSTs, {delivered} events delivered")
    print(f"  outcomes:   {counts}")
    print(f"  enrichment: on for this run (ENRICH_FROM_ARM=true), from a local ARM stand-in at {arm.endpoint}")
    print("\n".join(inventory_lines(rows) + rejected_lines(rejected) + flag_lines(rows, publisher.alerts, clock[0])
                    + plane_lines(plane, arm, reads, rows)))
    sys.stdout.flush()
    now = when(clock[0])  # after the stream's last event: the sync stamps its writes with it
    print("\n".join(window_lines(recorded, clock[0])), flush=True)
    failed = [name for name in ("summary", "flags") if run_command("--now", now, name) != 0]
    failed += ["sync"] if run_command("--now", now, "sync", "--service", plane.service_id) != 0 else []
    rows = list(inventory_rows(repo))
    effects, problems = sync_effects(plane, rows)
    print("\n".join(effects + details_lines(plane, rows)))
    deleted, later = plane.workspaces[-1], when(clock[0] + timedelta(minutes=1))
    arm.delete(f"{plane.service_id}/workspaces/{deleted}")  # and, as ARM does, everything in it
    print(f"\nWorkspace {deleted} is deleted on the management plane (the stand-in), with everything in it; the next sync:")
    failed += ["sync"] if run_command("--now", later, "sync", "--service", plane.service_id) != 0 else []
    workspace_rows, more = workspace_lines(plane, list(inventory_rows(repo)), deleted)
    print("\n".join(workspace_rows))
    problems += more
    failed += [" ".join(args) for args in (("expiring", "--within", "30d"), ("alerts",)) if run_command("--now", now, *args) != 0]
    problems += check_summary(recorded, clock[0])
    checked, leaks = check_secrets(repo)
    if not leaks:
        print(f"\nNo secret of the stand-in (subscription keys, backend credentials) is in any of the {checked} inventory, "
              "history, rejected and alert rows.")
    rows = list(inventory_rows(repo))
    logs = demo_logs(rows, sorted({service_id(r) for r in rows}), clock[0], os.environ["GATEWAY_LOGS_STORAGE"], settings.gateway_logs_container)
    print("\n".join(logs_lines(logs, settings.gateway_logs_container)), flush=True)
    failed += [" ".join(args) for args in REPORTS if run_command("--now", now, *args) != 0]
    problems += usage_problems(logs, COMMAND, now)
    demo_audit.append(os.environ["ACTIVITY_LOGS_STORAGE"], settings.activity_logs_container, subscription, late)
    print("\n".join(demo_audit.audit_lines(len(early), len(late), settings.activity_logs_container)), flush=True)
    failed += [" ".join(args) for args in demo_audit.COMMANDS if run_command("--now", now, *args) != 0]
    problems += demo_audit.audit_problems(COMMAND, now)
    problems += leaks + [f"apim-inventory {name} failed" for name in failed]
    if sum(outcomes.values()) != delivered:
        problems.append(f"{delivered} events delivered, {sum(outcomes.values())} outcomes logged")
    return problems


def run_command(*args: str) -> int:
    """The installed `apim-inventory` command, against the demo's store and stand-in (their settings are in the environment)."""
    command = [str(COMMAND), *args]
    print(f"\n$ apim-inventory {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return run(Path(args[0]).resolve() if args else STREAM)


if __name__ == "__main__":
    sys.exit(main())
