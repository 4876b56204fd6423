"""The `apim-inventory` command, run as the installed console script against Azurite.

One set of tables is seeded per module by `replay` itself. The command uses the system clock, so the seed's
times are relative to now."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import pty
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import Azurite
from shared import bootstrap
from shared.config import Settings
from shared.domain.kinds import Kind
from shared.entrypoints import cli, columns
from shared.entrypoints.output import width
from tests.conftest import fresh_settings
from tests.support import SERVICE_ID, event

pytestmark = pytest.mark.slow  # each test runs the console script, as a subprocess

COMMAND = Path(sys.executable).parent / "apim-inventory"
FABRIKAM = SERVICE_ID.replace("/contoso", "/fabrikam")
UNICODE = SERVICE_ID.replace("/contoso", "/naïve-ユーザー")
STRAY = ("INVENTORY_", "AzureWebJobsStorage", "ALERTS_", "TOKEN_", "CIRCUIT_BREAKER_", "GATEWAY_TOKEN_", "DEAD_LETTER_", "RETENTION_",
         "PURGE_")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
LIVE_USERS = {"contoso": ["users/50%", "users/alice", "users/naïve-ユーザー", "users/o'brien"], "fabrikam": ["users/bob"],
              "naïve-ユーザー": ["users/zoe"]}


def store_env(azurite: Azurite, settings: Settings) -> dict[str, str]:
    return {"INVENTORY_STORAGE": azurite.connection_string, "INVENTORY_TABLE": settings.inventory_table,
            "INVENTORY_HISTORY_TABLE": settings.history_table, "INVENTORY_REJECTED_TABLE": settings.rejected_table,
            "INVENTORY_ALERTS_TABLE": settings.outbox_table, "INVENTORY_STATUS_TABLE": settings.status_table}


@dataclass(frozen=True)
class Cli:
    """The console script with a clean environment (no stray settings) in a directory of its own."""

    settings_env: dict[str, str]
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(STRAY)}
        return {**base, **self.settings_env, **extra}

    def __call__(self, *args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        assert COMMAND.exists(), f"{COMMAND} is missing: `pip install -e . --no-deps` (make test does it)"
        return subprocess.run([str(COMMAND), *args], input=stdin, capture_output=True, encoding="utf-8",
                              env=self.env(**extra), cwd=self.cwd, timeout=120, check=False)

    def many(self, *argvs: list[str]) -> list[subprocess.CompletedProcess[str]]:
        """Independent runs, side by side: each run is mostly Python starting up."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda argv: self(*argv), argvs))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


def one_error(code: int, stderr: str, stdout: str = "") -> str:
    """Exit `code`, nothing on stdout, and exactly one line on stderr: the error."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("apim-inventory: error: "), stderr
    assert "Traceback" not in stderr and stdout == ""
    return lines[0]


def failed(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    return one_error(code, result.stderr, result.stdout)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def as_csv(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok(result))))


def as_table(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """An aligned table's rows, cut at the header's column starts."""
    header, rule, *lines = ok(result).splitlines()
    assert set(rule) <= {"-", " "}
    starts = [m.start() for m in re.finditer(r"\S+", header)]

    def cut(line: str) -> list[str]:  # by terminal columns: wide characters take two
        cells, column = [""] * len(starts), 0
        for char in line:
            cells[sum(column >= start for start in starts) - 1] += char
            column += width(char)
        return [c.strip() for c in cells]

    return [dict(zip(cut(header), cut(line), strict=True)) for line in lines]


def seed_events(now: datetime) -> list[dict[str, Any]]:
    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    return [
        event("UserCreated", "/users/alice", at=ago(50)),
        event("UserCreated", "/users/o'brien", at=ago(49)),
        event("UserCreated", "/users/naïve-ユーザー", at=ago(48)),
        event("UserCreated", "/users/50%", at=ago(47)),
        event("UserCreated", "/users/carol", at=ago(46)),
        event("UserDeleted", "/users/carol", at=ago(20)),
        event("UserUpdated", "/users/carol", at=ago(30)),  # older than the deletion: stale
        event("UserCreated", "/users/bob", at=ago(45), service=FABRIKAM, schema="eventgrid"),
        event("UserCreated", "/users/zoe", at=ago(44), service=UNICODE),
        event("APICreated", "/apis/orders", at=ago(40)),
        event("APIUpdated", "/apis/orders;rev=2", at=ago(39)),
        event("ProductCreated", "/products/starter", at=ago(30)),
        event("ProductDeleted", "/products/starter", at=ago(29)),
        event("GatewayCreated", "/gateways/edge", at=ago(25)),
        event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=ago(10)),  # expires in 3 days, less 10 minutes
        event("CircuitBreaker.Opened", "/backends/payments/circuit-breaker/rules/r5xx", at=ago(1)),  # closes in 4 minutes
        event("CircuitBreaker.Opened", "/backends/payments/circuit-breaker/rules/slow", at=ago(30)),  # stuck open
        event("UserCreated", "/widgets/x", at=ago(5)),  # rejected: bad-subject
    ]


@dataclass(frozen=True)
class Seeded:
    cli: Cli
    now: datetime
    events: list[dict[str, Any]]
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def seeded(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Fresh tables, seeded by `replay` of a JSON array file, then again from stdin as JSON Lines."""
    run = Cli(store_env(azurite, fresh_settings()), tmp_path_factory.mktemp("cli"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    events = seed_events(now)
    (run.cwd / "events.json").write_text(json.dumps(events), encoding="utf-8")
    first = run("replay", "events.json")
    second = run("replay", "-", stdin="".join(json.dumps(e) + "\n" for e in events))
    return Seeded(run, now, events, first, second)


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- replay ---------------------------------------------------------------------------------------
def test_replay_prints_the_outcomes_and_a_second_replay_is_all_duplicates(seeded: Seeded) -> None:
    """The seed's one rejected event makes each replay incomplete: exit code 1, the event named, one error line."""
    for result, expected in ((seeded.first, "18 events: applied 16, duplicate 0, stale 1, rejected 1\n"),
                             (seeded.second, "18 events: applied 0, duplicate 17, stale 0, rejected 1\n")):
        assert (result.returncode, result.stdout) == (1, expected)
        warning, error = result.stderr.splitlines()
        assert warning.startswith("apim-inventory: warning: events.json: event 18: rejected (bad-subject): ") or \
            warning.startswith("apim-inventory: warning: -: event 18: rejected (bad-subject): ")
        assert error.startswith("apim-inventory: error: of 18 events, 1 were rejected, as the warnings above say. Next: ")


def test_replay_input_errors_are_usage_errors(seeded: Seeded) -> None:
    assert "missing.json cannot be read: No such file or directory" in failed(seeded.cli("replay", "missing.json"), 2)
    assert "-: line 2 is not JSON" in failed(seeded.cli("replay", "-", stdin='{"id": "a"}\nnot json\n'), 2)
    result = seeded.cli("replay", "-", stdin='[1, "text"]')  # what the Functions host cannot decode is skipped
    assert (result.returncode, result.stdout) == (1, "2 events: applied 0, duplicate 0, stale 0, rejected 0, undecodable 2\n")
    assert [line.split(": skipped")[0] for line in result.stderr.splitlines()[:-1]] == [
        "apim-inventory: warning: -: event 1", "apim-inventory: warning: -: event 2"]


def test_replay_shows_a_progress_bar_on_a_terminal_for_long_input(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    events = [event("UserCreated", f"/users/u{n}", event_type="Contoso.Custom.Thing") for n in range(cli.PROGRESS_ABOVE + 10)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    leader, follower = pty.openpty()
    with subprocess.Popen([str(COMMAND), "replay", "events.jsonl"], stdout=subprocess.PIPE, stderr=follower,
                          env=run.env(), cwd=tmp_path, encoding="utf-8") as process:
        os.close(follower)
        stdout, _ = process.communicate(timeout=120)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    assert process.returncode == 1  # every event rejected: an incomplete replay
    assert stdout == "210 events: applied 0, duplicate 0, stale 0, rejected 210\n"
    bars = terminal.decode().replace("\r\n", "\n").split("\r")
    assert f"[{'#' * 7}{'.' * 23}] 50/210" in bars and bars[-1].startswith(f"[{'#' * 30}] 210/210\n")
    assert terminal.decode().count("warning:") == cli.WARNINGS and "of the first 10" in bars[-1]


# -- the read commands ----------------------------------------------------------------------------
def test_list_as_a_table(seeded: Seeded) -> None:
    users, instances, rules, apis = seeded.cli.many(["list", "user"], ["list", "GATEWAYINSTANCE"], ["list", "circuitBreakerRule"], ["list", "api"])
    rows = as_table(users)
    assert [(r["Service"], r["Path"]) for r in rows] == [(s, p) for s in sorted(LIVE_USERS) for p in LIVE_USERS[s]]
    assert list(rows[0]) == ["Service", "Kind", "Path", "State", "Email", "UserState", "DeletedAt", "LastEventType", "LastEventTime"]
    assert {(r["Kind"], r["State"], r["LastEventType"]) for r in rows} == {("user", "live", "UserCreated")}
    assert rows[0]["LastEventTime"] == at(seeded.now - timedelta(minutes=47))
    assert [(r["Path"], r["TokenStatus"], r["TokenExpiresAt"]) for r in as_table(instances)] == [  # kinds match in any case
        ("gateways/edge/instances/pod-1", "nearExpiry", at(seeded.now + timedelta(days=3, minutes=-10)))]
    assert [(r["Path"].rsplit("/", 1)[1], r["BreakerState"], r["StuckOpen"]) for r in as_table(rules)] == [
        ("r5xx", "open", "false"), ("slow", "open", "true")]
    assert [(r["Path"], r["Revision"]) for r in as_table(apis)] == [("apis/orders", ""), ("apis/orders;rev=2", "2")]


def test_list_filters(seeded: Seeded) -> None:
    now = seeded.now
    filters = [["user", "--service", "CONTOSO"], ["user", "--service", "naïve-ユーザー"], ["user", "--service", "contoso", "--include-deleted"],
               ["product"], ["user", "--deleted-since", at(now - timedelta(minutes=25))],
               ["product", "--deleted-since", at(now - timedelta(minutes=25))], ["user", "--changed-since", at(now - timedelta(minutes=44, seconds=30))]]
    *found, deleted = seeded.cli.many(*(["list", *f, "--output", "json"] for f in filters), ["list", "product", "--include-deleted"])
    assert [[r["Path"] for r in as_json(result)] for result in found] == [
        LIVE_USERS["contoso"], LIVE_USERS["naïve-ユーザー"], sorted([*LIVE_USERS["contoso"], "users/carol"]), [], ["users/carol"], [],
        ["users/zoe"]]
    assert [(r["Path"], r["State"], r["DeletedAt"], r["LastEventType"]) for r in as_table(deleted)] == [
        ("products/starter", "deleted", at(now - timedelta(minutes=29)), "ProductDeleted")]


def test_list_as_json_and_csv_with_all_columns_has_every_column(seeded: Seeded) -> None:
    as_list, as_rows = seeded.cli.many(["list", "api", "-o", "json"], ["list", "api", "-o", "csv", "--all-columns"])
    rows = as_json(as_list)
    assert [r["Path"] for r in rows] == ["apis/orders", "apis/orders;rev=2"]
    assert rows[1]["Revision"] == "2" and rows[1]["IsDeleted"] is False and rows[1]["SchemaVersion"] == 1
    assert rows[1]["ResourceId"] == SERVICE_ID + "/apis/orders;rev=2" and ISO_Z.match(rows[1]["LastEventTime"])
    assert rows[1]["LastEventType"] == "Microsoft.ApiManagement.APIUpdated"
    table = as_csv(as_rows)
    assert [r["Path"] for r in table] == ["apis/orders", "apis/orders;rev=2"]
    header = list(table[0])
    documented = columns.LIST_COLUMNS[Kind.API]
    assert tuple(header[:len(documented)]) == documented and set(header) == set(rows[0]) | set(rows[1]) | set(documented)
    assert table[1]["IsDeleted"] == "false" and table[0]["Revision"] == "" and ISO_Z.match(table[1]["UpdatedAt"])


def test_show_by_path_and_by_arm_id(seeded: Seeded) -> None:
    text, by_id, tombstone, instance = seeded.cli.many(
        ["show", "contoso/users/naïve-ユーザー"], ["show", SERVICE_ID + "/users/O'Brien", "-o", "json"],
        ["show", "contoso/products/starter", "-o", "json"], ["show", "contoso/gateways/edge/instances/pod-1", "--output", "csv"])
    lines = ok(text).splitlines()
    split = (re.split(r"\s{2,}", line, maxsplit=1) for line in lines)
    fields = {parts[0]: [*parts, ""][1] for parts in split}  # an empty value: the name alone
    assert lines[0].startswith("PartitionKey ") and fields["Path"] == "users/naïve-ユーザー" and fields["IsDeleted"] == "false"
    assert fields["LastEventType"] == "UserCreated" and fields["ResourceId"] == SERVICE_ID + "/users/naïve-ユーザー"
    row = as_json(by_id)
    assert isinstance(row, dict) and row["Path"] == "users/o'brien" and ISO_Z.match(row["CreatedAt"])
    assert as_json(tombstone)["IsDeleted"] is True
    assert [r["TokenStatus"] for r in as_csv(instance)] == ["nearExpiry"]


def test_history_newest_first(seeded: Seeded) -> None:
    now = seeded.now
    full, since, none, bob = seeded.cli.many(
        ["history", "contoso/users/carol", "-o", "json"], ["history", SERVICE_ID + "/users/carol", "--since", at(now - timedelta(minutes=30))],
        ["history", "contoso/users/carol", "--since", at(now), "-o", "csv"], ["history", "fabrikam/users/bob", "-o", "csv"])
    records = as_json(full)
    assert [(r["EventType"].rsplit(".", 1)[1], r["Stale"]) for r in records] == [
        ("UserDeleted", False), ("UserUpdated", True), ("UserCreated", False)]
    assert [r["EventTime"] for r in records] == [at(now - timedelta(minutes=m)) for m in (20, 30, 46)]
    assert {r["Duplicates"] for r in records} == {1}
    assert [(r["EventType"], r["Change"], r["Stale"]) for r in as_table(since)] == [("UserDeleted", "deleted", "false"),
                                                                          ("UserUpdated", "updated", "true")]
    assert as_csv(none) == [] and len(as_csv(bob)) == 1


def test_history_with_children(seeded: Seeded) -> None:
    own, everything = seeded.cli.many(["history", "contoso/apis/orders", "-o", "json"], ["history", "contoso/apis/orders", "--with-children"])
    assert [r["Path"] for r in as_json(own)] == ["apis/orders"]
    assert [(r["Path"], r["EventType"]) for r in as_table(everything)] == [("apis/orders;rev=2", "APIUpdated"), ("apis/orders", "APICreated")]


def test_changes(seeded: Seeded) -> None:
    """Every change of the seed, newest first across services; by kind and service; a page and the next."""
    document, text, users, csv_text, first = seeded.cli.many(
        ["changes", "--since", "2h", "-o", "json"], ["changes", "--since", "2h", "--until", at(seeded.now - timedelta(minutes=40))],
        ["changes", "--since", "2h", "--kind", "User", "--service", "FABRIKAM", "--by", "recorded", "-o", "json"],
        ["changes", "--since", "2h", "-o", "csv"], ["changes", "--since", "2h", "--top", "3", "-o", "json"])
    changes = as_json(document)
    assert changes["by"] == "event" and changes["count"] == 17 and changes["continuationToken"] is None  # 16 applied, 1 stale
    times = [c["EventTime"] for c in changes["items"]]
    assert times == sorted(times, reverse=True) and times[0] == at(seeded.now - timedelta(minutes=1))
    assert {c["Service"] for c in changes["items"]} == {"contoso", "fabrikam", "naïve-ユーザー"}
    rows = as_table(text)
    assert list(rows[0]) == ["EventTime", "Service", "Kind", "Path", "Change", "EventType"]
    assert [r["Path"] for r in rows] == ["users/zoe", "users/bob", "users/carol", "users/50%", "users/naïve-ユーザー", "users/o'brien",
                                         "users/alice"]  # before the API's creation, 40 minutes ago
    assert [(c["Service"], c["Path"]) for c in as_json(users)["items"]] == [("fabrikam", "users/bob")]
    assert [r["Path"] for r in as_csv(csv_text)] == [c["Path"] for c in changes["items"]]
    assert first.returncode == 0 and json.loads(first.stdout)["count"] == 3
    token = json.loads(first.stdout)["continuationToken"]
    assert first.stderr == f"apim-inventory: more changes: add --continuation {token}\n"
    rest = as_json(seeded.cli("changes", "--since", "2h", "--continuation", token, "-o", "json"))
    assert json.loads(first.stdout)["items"] + rest["items"] == changes["items"]


def test_flags(seeded: Seeded) -> None:
    text, document, table = seeded.cli.many(["flags"], ["flags", "-o", "json"], ["flags", "-o", "csv"])
    assert [(r["Kind"], r["Path"].rsplit("/", 1)[1], r["Flag"]) for r in as_table(text)] == [
        ("gatewayInstance", "pod-1", "token nearExpiry"), ("circuitBreakerRule", "r5xx", "breaker open"),
        ("circuitBreakerRule", "slow", "breaker stuck open")]
    entities = as_json(document)
    assert [e["Path"].rsplit("/", 1)[1] for e in entities] == ["pod-1", "r5xx", "slow"] and entities[2]["StuckOpen"] is True
    assert [r["Kind"] for r in as_csv(table)] == ["gatewayInstance", *["circuitBreakerRule"] * 2]


def test_summary(seeded: Seeded) -> None:
    document, table, long_csv = seeded.cli.many(["summary", "-o", "json"], ["summary"], ["summary", "-o", "csv"])
    summary = as_json(document)
    counts = {(r["service"], r["kind"]): (r["live"], r["deleted"]) for r in summary["resources"]}
    assert counts == {("contoso", "user"): (4, 1), ("contoso", "api"): (2, 0), ("contoso", "product"): (0, 1),
                      ("contoso", "gateway"): (1, 0), ("contoso", "gatewayInstance"): (1, 0), ("contoso", "backend"): (1, 0),
                      ("contoso", "circuitBreakerRule"): (2, 0), ("fabrikam", "user"): (1, 0), ("naïve-ユーザー", "user"): (1, 0)}
    expected = {"applied": 16, "stale": 1, "duplicate": 17, "rejected": 2}  # the rejected event's two deliveries
    assert summary["events"] == {"lastHour": expected, "lastDay": expected} and ISO_Z.match(summary["generatedAt"])
    text = ok(table)
    assert text.startswith("Inventory at ") and re.search(r"^lastHour\s+16\s+1\s+17\s+2$", text, re.MULTILINE)
    assert re.search(r"^contoso\s+user\s+4\s+1\s+-\s+-$", text, re.MULTILINE), "no snapshot yet: no change over 7 or 30 days"
    long = as_csv(long_csv)
    assert {"Metric": "duplicate", "Window": "lastDay", "Service": "", "Kind": "", "Count": "17", "Workspace": ""} in long
    assert {"Metric": "deleted", "Window": "", "Service": "contoso", "Kind": "product", "Count": "1", "Workspace": ""} in long


def test_rejected(seeded: Seeded) -> None:
    table, document, none = seeded.cli.many(["rejected"], ["rejected", "--since", at(seeded.now - timedelta(minutes=5)), "-o", "json"],
                                            ["rejected", "--since", at(seeded.now + timedelta(hours=1)), "-o", "csv"])
    assert [(r["Reason"], r["EventType"], r["Subject"]) for r in as_table(table)] == [("bad-subject", "UserCreated", "/widgets/x")]
    records = as_json(document)
    assert [r["EventId"] for r in records] == [seeded.events[-1]["id"]] and ISO_Z.match(records[0]["ReceivedAt"])
    assert as_csv(none) == []


# -- exit codes and errors ------------------------------------------------------------------------
def test_exit_codes(seeded: Seeded) -> None:
    errors = {  # argv -> (exit code, part of the error line)
        ("show", "contoso/users/nobody"): (1, "no resource 'contoso/users/nobody'"),
        ("history", "contoso/users/nobody"): (1, "no resource"),
        ("list", "widget"): (2, "unknown kind 'widget'"),
        ("show", "alice"): (2, "id must be an ARM id or SERVICE/PATH"),
        ("history", "contoso/widgets/x"): (2, "bad id"),
        ("rejected", "--since", "yesterday"): (2, "must be an ISO 8601 time"),
        ("list", "user", "--changed-since", "1600-12-31T23:59:59Z"): (2, "before 1601-01-01"),
        (): (2, "arguments are required: COMMAND"),
        ("flags", "-o", "xml"): (2, "invalid choice: 'xml'"),
        ("changes",): (2, "the following arguments are required: --since"),
        ("changes", "--since", "soon"): (2, "--since must be an ISO 8601 time such as 2026-11-02T09:00:00Z or a time ago such as"),
        ("changes", "--since", "1h", "--until", "2h"): (2, "until must be after since"),
        ("changes", "--since", "1h", "--by", "arrival"): (2, "invalid choice: 'arrival'"),
        ("changes", "--since", "1h", "--top", "0"): (2, "top must be a whole number from 1 to 1000"),
        ("changes", "--since", "1h", "--continuation", "x"): (2, "continuationToken is not one this API issued"),
    }
    for (argv, (code, message)), result in zip(errors.items(), seeded.cli.many(*map(list, errors)), strict=True):
        assert message in failed(result, code), argv
    assert "no inventory store is configured" in failed(seeded.cli("flags", INVENTORY_STORAGE=""), 2)
    assert "bad setting: table name 'x'" in failed(seeded.cli("flags", INVENTORY_TABLE="x"), 2)
    help_text = ok(seeded.cli("--help"))
    assert "local.settings.json" in help_text and "Exit codes" in help_text


class DroppingListener:
    """A port that accepts each connection and closes it at once, counting them: a store that cannot be reached."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.socket.accept()
                self.connections += 1
                connection.close()


@pytest.mark.parametrize("args", [("list", "user"), ("summary",), ("replay", "-")])
def test_an_unreachable_store_fails_fast_with_one_line(seeded: Seeded, args: tuple[str, ...]) -> None:
    """The command gives up after its one retry of the first request (cli.RETRY_TOTAL), not after the SDK's
    default of several with backoff: it connects at most twice."""
    listener = DroppingListener()
    try:
        dropped = f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:{listener.port}/a;"
        result = seeded.cli(*args, stdin="[]", INVENTORY_STORAGE=dropped)
        assert "the inventory store is unreachable" in failed(result, 1)
        assert 1 <= listener.connections <= cli.RETRY_TOTAL + 1
    finally:
        listener.socket.close()


def test_settings_come_from_local_settings_json_unless_set(seeded: Seeded, tmp_path: Path) -> None:
    values = {**seeded.cli.settings_env, "INVENTORY_TABLE": "NoSuchTable"}
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    run = Cli({"INVENTORY_TABLE": seeded.cli.settings_env["INVENTORY_TABLE"]}, tmp_path)  # the environment wins
    assert [r["Path"] for r in as_json(run("list", "user", "--service", "fabrikam", "-o", "json"))] == ["users/bob"]
    (tmp_path / "local.settings.json").write_text("{", encoding="utf-8")
    assert "local.settings.json is not JSON" in failed(run("flags"), 2)


def test_sweep_runs_both_timers_now(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    now = datetime.now(timezone.utc)
    events = [event("GatewayCreated", at=now - timedelta(minutes=40)), event("GatewayTokenNearExpiry", at=now - timedelta(minutes=30)),
              event("CircuitBreaker.Opened", at=now - timedelta(minutes=30))]
    lenient = {"TOKEN_WARNING_DAYS": "1", "CIRCUIT_BREAKER_GRACE_MINUTES": "600"}  # nothing is flagged yet
    assert ok(run("replay", "-", stdin=json.dumps(events), **lenient)) == "3 events: applied 3, duplicate 0, stale 0, rejected 0\n"
    assert [(e["Kind"], e["StuckOpen"]) for e in as_json(run("flags", "-o", "json"))] == [("circuitBreakerRule", False)]
    rows = as_table(run("sweep"))  # the default settings: 7 days, 5 minutes
    assert [(r["Sweep"], r["Rows"], r["Changed"], r["AlertsPending"]) for r in rows] == [
        ("gatewayInstance", "1", "1", "0"), ("circuitBreakerRule", "1", "1", "0")]
    assert [(e["TokenStatus"] if "TokenStatus" in e else e["StuckOpen"]) for e in as_json(run("flags", "-o", "json"))] == ["nearExpiry", True]
    assert [r["Changed"] for r in as_table(run("sweep"))] == ["0", "0"]


# -- injection: every value at every parameter, in process; a sample through the console script ------
NASTY = ["' or PartitionKey ne '", "'", '"', "%", "%27", "naïve-ユーザー", "\t", "x" * 5000, "/", "\\", "#", "?", "' or 1 eq 1 or '"]
NAMES = ["o'brien", "O'BRIEN", "o%27brien", "50%", "50%25", "alice'", "alic%65", "alice\t"]
USER_CODES = {"naïve-ユーザー": 0, "o'brien": 0, "O'BRIEN": 0, "50%": 0, "alice\t": 0, "\t": 2, "/": 2, "x" * 5000: 2}  # else 1
SAMPLE = {  # (parameter, command, value) run through the console script too
    ("--service", "list", "' or PartitionKey ne '"), ("--service", "list", "naïve-ユーザー"), ("--service", "list", "x" * 5000),
    ("KIND", "list", "' or 1 eq 1 or '"), ("KIND", "list", "\t"), ("ID", "show", "%27"), ("ID service", "history", "'"),
    ("ID name", "show", "' or PartitionKey ne '"), ("ID name", "show", "o'brien"), ("ID name", "history", "o%27brien"),
    ("ARM id name", "show", "naïve-ユーザー"), ("--since", "history", "%"), ("--changed-since", "list", "x" * 5000),
    ("--deleted-since", "list", "' or PartitionKey ne '"),
}


@dataclass(frozen=True)
class Case:
    parameter: str
    value: str
    argv: list[str]
    code: int
    paths: list[str]  # the Path of every row it must give, when code is 0


def injection_cases() -> Iterator[Case]:
    for value in NASTY:
        known = value.strip().lower() in LIVE_USERS  # a service the inventory never saw: exit code 1
        yield Case("--service", value, ["list", "user", "--service", value], 2 if len(value) > 1024 or not value.strip() else 0 if known else 1,
                   LIVE_USERS.get(value.strip().lower(), []))
        yield Case("KIND", value, ["list", value], 2, [])
        for command in ("show", "history"):
            yield Case("ID", value, [command, value], 2, [])
            yield Case("ID service", value, [command, f"{value}/users/alice"], 2 if value in ("\t", "/", "x" * 5000) else 1, [])
        for command, flag in (("history", "--since"), ("rejected", "--since"), ("list", "--deleted-since"), ("list", "--changed-since")):
            yield Case(flag, value, [command, *(["contoso/users/alice"] if command == "history" else ["user"] if command == "list" else []),
                                     flag, value], 2, [])
        for flag in ("--since", "--until", "--kind", "--continuation"):
            yield Case(flag, value, ["changes", *([] if flag == "--since" else ["--since", "24h"]), flag, value], 2, [])
    for value in [*NASTY, *NAMES]:
        code = USER_CODES.get(value, 1)
        paths = [f"users/{value.strip().lower()}"] if code == 0 else []
        yield Case("ID name", value, ["show", f"contoso/users/{value}"], code, paths)
        yield Case("ARM id name", value, ["show", f"{SERVICE_ID}/users/{value}"], code, paths)
        yield Case("ID name", value, ["history", f"contoso/users/{value}"], code, paths)


def check(case: Case, code: int, stdout: str, stderr: str) -> None:
    assert code == case.code, (case.parameter, case.argv[:2], case.value[:40], stderr)
    if code != 0:
        one_error(code, stderr, stdout)
        return
    document = json.loads(stdout)
    if case.argv[0] == "history":
        assert document and {r["PathKey"] for r in document} == set(case.paths), case
    else:
        assert [r["Path"].lower() for r in (document if isinstance(document, list) else [document])] == case.paths, case


@pytest.fixture
def in_process(seeded: Seeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name, value in seeded.cli.settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("apim_inventory")
    level = logger.level
    yield
    logger.setLevel(level)
    bootstrap.install(None)


def test_injection_at_every_parameter(in_process: None, capsys: pytest.CaptureFixture[str]) -> None:
    """cli.main in this process (the console script's code), for speed: 13 values x 14 parameters, and 21 names."""
    cases = list(injection_cases())
    for case in cases:
        code = cli.main([*case.argv, "-o", "json"])
        out, err = capsys.readouterr()
        check(case, code, out, err)
    assert len(cases) == len(NASTY) * 14 + (len(NASTY) + len(NAMES)) * 3


def test_injection_through_the_console_script(seeded: Seeded) -> None:
    cases = [c for c in injection_cases() if (c.parameter, c.argv[0], c.value) in SAMPLE]
    assert len(cases) == len(SAMPLE)
    for case, result in zip(cases, seeded.cli.many(*([*c.argv, "-o", "json"] for c in cases)), strict=True):
        check(case, result.returncode, result.stdout, result.stderr)


def test_now_moves_the_summary_windows(seeded: Seeded) -> None:
    later, bad = seeded.cli.many(["--now", at(datetime.now(timezone.utc) + timedelta(days=3)), "summary", "-o", "json"],
                                 ["--now", "tomorrow", "summary"])
    zero = {"applied": 0, "stale": 0, "duplicate": 0, "rejected": 0}
    assert as_json(later)["events"] == {"lastHour": zero, "lastDay": zero}
    assert "--now" in failed(bad, 2)
