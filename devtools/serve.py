"""`make serve`: the app's HTTP functions on http://127.0.0.1:PORT over a persisted Azurite holding the demo's data, with
the ARM stand-in, until Ctrl-C (SIGINT) or SIGTERM; then everything it started is stopped, Azurite by its PID.

The first start (or `--reload`) loads the demo's data: demo/stream.json through the indexed function at the stream's
clock, the sweeps, a full sync of the busiest service from the stand-in, two days of generated gateway logs up to now,
ingested by `apim-inventory usage ingest`, and the demo's Activity Log records of that service (devtools.demo_audit),
read by the `activity_logs` timer itself. Later starts find it in the data folder (`make clean` removes it) and
load nothing. `--sign-in-as ROLE` plays App Service Authentication for the pages under ui/ (devtools.http_host)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devtools import demo_audit
from devtools.arm_standin import ArmStandIn
from devtools.azurite import ROOT, Azurite, free_port
from devtools.demo import COMMAND, STREAM, CollectingPublisher, deliver_stream, latest_time, service_id
from devtools.demo_usage import demo_logs
from devtools.http_host import FunctionsHost, Keys, host_logging
from devtools.management_plane import DemoPlane, busiest_service, demo_plane, replayed
from devtools.store_reads import inventory_rows
from devtools.worker import fire_timer, split_delivery
from shared import bootstrap
from shared.config import Settings
from shared.domain.personal import Role, parse_role
from shared.entrypoints.signin import AUTH_SETTING, KEY_ROLE_SETTING
from shared.integrations.storage import table_service_client

DATA = ROOT / ".serve"  # `make clean` removes it
LOADED = "loaded.json"  # written once the demo's data is in: its presence means "load nothing"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_azurite(data: Path) -> Azurite:
    """Azurite over `data/azurite`, on the ports of the last start when they are free (the printed settings stay the same)."""
    saved_at = data / "ports.json"
    saved = json.loads(saved_at.read_text()) if saved_at.exists() else {}
    table, blob = int(saved.get("table", 0)), int(saved.get("blob", 0))
    if not (table and blob and _free(table) and _free(blob)):
        table, blob = free_port(), 0
    azurite = Azurite(location=data / "azurite", port=table, blob=True, blob_port=blob)
    (data / "azurite").mkdir(parents=True, exist_ok=True)
    azurite.start()
    saved_at.write_text(json.dumps({"table": azurite.port, "blob": azurite.blob_port}))
    return azurite


def settings_env(azurite: Azurite, arm: ArmStandIn) -> dict[str, str]:
    return {"INVENTORY_STORAGE": azurite.connection_string, "GATEWAY_LOGS_STORAGE": azurite.blob_connection_string,
            "ACTIVITY_LOGS_STORAGE": azurite.blob_connection_string, "ENRICH_FROM_ARM": "true", "ARM_ENDPOINT": arm.endpoint, **arm.identity_env()}


def load(plane: DemoPlane, deliveries: list[Any], data: Path) -> dict[str, Any]:
    """The demo's data into the store the environment names; what was loaded, also written to data/loaded.json."""
    clock = [min(latest_time(d) for d in deliveries)]  # the stream at its own clock, as `make demo` runs it
    settings = Settings.from_env()
    repo = bootstrap.table_store(table_service_client(), settings)
    repo.create_tables()
    bootstrap.install(bootstrap.wire(repo, settings, CollectingPublisher(), lambda: clock[0], bootstrap.arm_client(settings)))
    try:
        events = len(deliver_stream(deliveries, clock))
    finally:
        bootstrap.install(None)
    run("sync", "--service", plane.service_id)  # at today's clock from here on: the sync, the logs and their ingest
    rows = list(inventory_rows(repo))
    now = datetime.now(timezone.utc)
    logs = demo_logs(rows, sorted({service_id(r) for r in rows}), now, os.environ["GATEWAY_LOGS_STORAGE"], settings.gateway_logs_container)
    run("usage", "ingest")
    activity = load_activity_logs(plane.service_id, now, settings.activity_logs_container)
    print("$ (the count_snapshots timer: today's counts, the first of the daily snapshots)", flush=True)
    fire_timer("count_snapshots")
    loaded = {"events": events, "syncedService": plane.service_id, "gatewayLogRecords": logs.truth.records, "activityLogRecords": activity,
              "at": now.isoformat()}
    (data / LOADED).write_text(json.dumps(loaded, indent=2))
    return loaded


def load_activity_logs(service_id: str, now: datetime, container: str) -> int:
    """The demo's Activity Log records of the service (a user, a service principal, a managed identity, a failed attempt,
    a key regeneration an hour before `now`, a backend change no event announces) appended to the archive's hour blobs,
    all at once: after the stream and the sync, so the regeneration finds its subscription row. Then the indexed
    `activity_logs` timer reads them, as it would in Azure; the number of records written."""
    before, after = demo_audit.records(service_id, now)
    written = [*before, *after]
    demo_audit.append(os.environ["ACTIVITY_LOGS_STORAGE"], container, service_id.split("/")[2], written)
    print(f"$ (the activity_logs timer, over the {len(written)} Activity Log records of {service_id.rsplit('/', 1)[-1]} in {container})", flush=True)
    fire_timer("activity_logs")
    return len(written)


def run(*args: str) -> None:
    print(f"$ apim-inventory {' '.join(args)}", flush=True)
    result = subprocess.run([str(COMMAND), *args], capture_output=True, encoding="utf-8", check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1][:500]  # the command's own one-line error
        raise SystemExit(f"apim-inventory {' '.join(args)} failed ({result.returncode}): {last}")


def banner(host: FunctionsHost, env: dict[str, str], loaded: dict[str, Any], data: Path) -> str:
    key, url = host.keys.default, host.url
    service = str(loaded.get("syncedService", "?")).rsplit("/", 1)[-1]
    exports = "\n".join(f"  export {name}='{value}'" for name, value in env.items())
    lines = [
        "", f"apim-inventory served at {url} (Ctrl-C stops it, and Azurite and the ARM stand-in with it)",
        f"  data: {data} (loaded {loaded.get('at', '?')}: {loaded.get('events')} events, a sync of {service}, "
        f"{loaded.get('gatewayLogRecords')} gateway-log records, {loaded.get('activityLogRecords')} Activity Log records; `make clean` removes it)",
        f"  function key (x-functions-key header or ?code=): {key}",
        f"  master key (admin level):                       {host.keys.master}",
        f"  a function-key caller is served as {os.environ.get(KEY_ROLE_SETTING) or Role.READ.value} ({KEY_ROLE_SETTING})",
        "", "Try:",
        f"  curl -s -H 'x-functions-key: {key}' {url}/api/summary",
        f"  curl -s '{url}/api/inventory/user?code={key}'",
        f"  curl -s -H 'x-functions-key: {key}' {url}/api/openapi.json",
        f"  curl -s -H 'x-functions-key: {key}' '{url}/api/history?id={service}/apis/orders'  (who made each change: the Activity Log)",
        f"  curl -s -H 'x-functions-key: {key}' '{url}/api/keys?olderThan=1d'",
        f"  {url}/ui/whoami  (a page: served only with sign-in)",
        "", "The command and the Azure CLI against the same store and stand-in (in another shell):", exports,
        "  .venv/bin/apim-inventory summary  # or: . .venv/bin/activate",
        f"  az storage entity query --connection-string \"$INVENTORY_STORAGE\" --table-name {Settings().inventory_table} "
        "--filter \"IsDeleted eq false\" --num-results 5",
    ]
    if host.sign_in_as is not None:
        lines += ["", "#" * 100, f"#  LOCAL SIGN-IN: every page request is signed in as {host.sign_in_as.value!r}.",
                  "#  App Service Authentication is played by this server: nothing is checked. Never expose this port.", "#" * 100]
    return "\n".join(lines)


def serve(port: int, data: Path, sign_in_as: Role | None, reload: bool, verbose: bool) -> int:
    deliveries: list[Any] = json.loads(STREAM.read_text(encoding="utf-8"))
    payloads = [payload for delivery in deliveries for payload in split_delivery(delivery)]
    plane = demo_plane(busiest_service(payloads), replayed(payloads))
    data.mkdir(parents=True, exist_ok=True)
    fresh = reload or not (data / LOADED).exists()
    if fresh:  # a load starts from an empty store: a load cut short, or loaded again, never counts the logs twice
        (data / LOADED).unlink(missing_ok=True)
        shutil.rmtree(data / "azurite", ignore_errors=True)
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not serving:
            raise KeyboardInterrupt  # while loading: stop at once (the next start loads again, from empty)
        stopping.set()

    serving = False
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    azurite = start_azurite(data)
    arm = ArmStandIn().start()
    try:
        arm.put_many(plane.resources)
        env = settings_env(azurite, arm)
        os.environ.update(env)
        if sign_in_as is not None:
            os.environ[AUTH_SETTING] = "true"  # what the platform injects when authentication is on
        if fresh:
            print(f"Loading the demo's data into {data} (once; --reload loads it again)...", flush=True)
            loaded = load(plane, deliveries, data)
        else:
            loaded = json.loads((data / LOADED).read_text())
        bootstrap.install(None)  # the served app builds its services from the environment, with the system clock
        host_logging[0] = verbose
        with FunctionsHost(port=port, keys=Keys.kept_in(data / "keys.json"), sign_in_as=sign_in_as) as host:
            print(banner(host, env, loaded, data), flush=True)
            print("\nready", flush=True)
            serving = True
            stopping.wait()
            print("\nstopping: the server, the ARM stand-in, then Azurite (pid %d)" % (azurite.process.pid if azurite.process else 0), flush=True)
    finally:
        arm.stop()
        azurite.stop()  # SIGINT to its PID: a --location Azurite saves its data
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--data", type=Path, default=DATA, help="the folder Azurite keeps its data in (default .serve)")
    parser.add_argument("--sign-in-as", default="", help=f"play sign-in for the pages, with this app role ({' or '.join(Role)})")
    parser.add_argument("--reload", action="store_true", help="load the demo's data again")
    parser.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apim_inventory").setLevel(logging.ERROR)
    try:
        role = parse_role(args.sign_in_as, "--sign-in-as") if args.sign_in_as else None
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return serve(args.port, args.data.resolve(), role, args.reload, args.verbose)
    except KeyboardInterrupt:
        print("stopped while loading: the next start loads the demo's data again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
