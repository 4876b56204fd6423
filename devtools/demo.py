"""`make demo`: start Azurite, deliver demo/stream.json to the indexed function as the Functions
worker would, then print the inventory it built and the events it rejected."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.functions.timer import TimerRequest

from devtools.azurite import ROOT, Azurite
from devtools.worker import decode_event, indexed_function, split_delivery
from shared import bootstrap
from shared.alerts import AlertOutbox, LoggingAlertPublisher
from shared.config import Settings
from shared.events import parse_time
from shared.flags import Alert
from shared.output import short_type, table, when
from shared.resources import KINDS
from shared.storage import table_service_client
from shared.table_repository import TableInventoryRepository

STREAM = ROOT / "demo" / "stream.json"
OUTCOMES = ("applied", "stale", "duplicate", "rejected")
REJECTED_FIELDS = (("id", "EventId"), ("type", "EventType"), ("subject", "Subject"))


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
    order = {kind: i for i, kind in enumerate(KINDS)}
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


def latest_time(delivery: Any) -> datetime:
    times = [e.get("time") or e.get("eventTime") for e in (delivery if isinstance(delivery, list) else [delivery])]
    return max(parse_time(t, "time") for t in times if isinstance(t, str))


def run(stream: Path) -> int:
    deliveries: list[Any] = json.loads(stream.read_text(encoding="utf-8"))
    logging.getLogger("apim_inventory").setLevel(logging.ERROR)  # the summary below says it all
    clock = [min(latest_time(d) for d in deliveries)]  # the demo's clock follows the stream
    publisher = CollectingPublisher()
    azurite = Azurite().start()
    try:
        os.environ["INVENTORY_STORAGE"] = azurite.connection_string
        settings = Settings.from_env()
        repo = TableInventoryRepository(table_service_client(), settings)
        bootstrap.install(bootstrap.wire(repo, settings, AlertOutbox(repo, publisher), lambda: clock[0]))
        logging.disable(logging.WARNING)  # indexing warns that auth levels apply to HTTP triggers only
        function = indexed_function("apim_events")
        logging.disable(logging.NOTSET)
        delivered = 0
        for delivery in deliveries:
            clock[0] = max(clock[0], latest_time(delivery) + timedelta(seconds=2))  # delivered seconds after
            for payload in split_delivery(delivery):
                function(decode_event(payload))
                delivered += 1
        clock[0] += timedelta(minutes=15)  # the next timer run
        for timer in ("gateway_token_sweep", "circuit_breaker_sweep"):
            indexed_function(timer)(TimerRequest(past_due=False))
        processor = bootstrap.services().processor
        rows, rejected, outcomes = list(processor.repo.rows()), processor.repo.rejected(), processor.counts
        services = sorted({service_id(r).rsplit("/", 1)[-1] for r in rows})
        counts = ", ".join(f"{name} {outcomes[name]}" for name in OUTCOMES)
        print(f"APIM inventory demo: {stream.relative_to(ROOT) if stream.is_relative_to(ROOT) else stream}")
        print(f"  services:   {len(services)} ({', '.join(services)})")
        print(f"  deliveries: {len(deliveries)} HTTP POSTs, {delivered} events delivered")
        print(f"  outcomes:   {counts}")
        print("\n".join(inventory_lines(rows) + rejected_lines(rejected) + flag_lines(rows, publisher.alerts, clock[0])))
        sys.stdout.flush()
        commands_ok = all(run_command("--now", when(clock[0]), name) == 0 for name in ("summary", "flags"))
    finally:
        bootstrap.install(None)
        azurite.stop()
    if sum(outcomes.values()) != delivered or not commands_ok:
        print(f"error: {delivered} events delivered, {sum(outcomes.values())} outcomes logged", file=sys.stderr)
        return 1
    return 0


def run_command(*args: str) -> int:
    """The installed `apim-inventory` command, against the demo's store (INVENTORY_STORAGE is set)."""
    command = [str(Path(sys.executable).parent / "apim-inventory"), *args]
    print(f"\n$ apim-inventory {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return run(Path(args[0]).resolve() if args else STREAM)


if __name__ == "__main__":
    sys.exit(main())
