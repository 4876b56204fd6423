"""The command's one set of rules, through the installed console script, against Azurite and the ARM stand-in: every
error one line naming the part that failed and what to do next; the exit-code table; --service by name or ARM id;
the documented columns; tables that fit."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite, free_port
from shared.domain.kinds import FACTS, Kind
from shared.entrypoints import columns
from shared.entrypoints.failures import EXIT_CODES
from shared.entrypoints.output import width
from tests.conftest import fresh_settings
from tests.support import SERVICE_ID, event
from tests.test_cli import Cli, as_csv, as_json, as_table, failed, ok, store_env

pytestmark = pytest.mark.slow  # each test runs the console script, as a subprocess

README = Path(__file__).resolve().parent.parent / "README.md"
# The messages of the old command, none of which may appear again.
OLD = ("None None", "invalid literal for int()", "could not convert string", "object has no attribute", "does not match format",
       "specVersion", "argument of type", "See the troubleshooting guide for more", "RequestId:", "<?xml", "the inventory store failed: None")


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The error line of a run that exits `code`: the last line on stderr, the only one that is an error."""
    assert result.returncode == code, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("apim-inventory: error: ")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr and not any(old in result.stderr for old in OLD), result.stderr
    return errors[0]


def seeded_cli(azurite: Azurite, cwd: Path, **extra: str) -> Cli:
    run = Cli({**store_env(azurite, fresh_settings()), **extra}, cwd)
    now = datetime.now(timezone.utc)
    events = [event("UserCreated", "/users/alice", at=now - timedelta(minutes=5)),
              event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=now - timedelta(minutes=4))]
    ok(run("replay", "-", stdin=json.dumps(events)))
    return run


# -- settings: named, with the value's problem, exit code 2 --------------------------------------------------------
@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("INVENTORY_STORAGE_RETRY_TOTAL", "abc", "bad setting: INVENTORY_STORAGE_RETRY_TOTAL must be a whole number such as 3, not 'abc'"),
    ("TOKEN_WARNING_DAYS", "abc", "bad setting: TOKEN_WARNING_DAYS must be a number such as 7, not 'abc'"),
    ("ARM_ENDPOINT", "http://example.com", "ARM_ENDPOINT 'http://example.com' uses plain http, which is allowed for a loopback address"),
    ("ALERTS_TOPIC_ENDPOINT", "topic", "ALERTS_TOPIC_ENDPOINT must be a URL such as https://"),
])
def test_a_bad_setting_names_itself(azurite: Azurite, tmp_path: Path, setting: str, value: str, expected: str) -> None:
    line = one_line(Cli(store_env(azurite, fresh_settings()), tmp_path)("flags", **{setting: value}), 2)
    assert expected in line and line.endswith("Next: fix it in the environment or local.settings.json (docs/settings.md).")


def test_a_storage_url_that_is_not_a_url_is_called_one(tmp_path: Path) -> None:
    line = one_line(Cli({"INVENTORY_STORAGE__tableServiceUri": "not a url"}, tmp_path)("list", "user"), 2)
    assert "INVENTORY_STORAGE__tableServiceUri must be a URL such as https://ACCOUNT.table.core.windows.net, not 'not a url'" in line


def test_plain_http_to_arm_is_refused_before_any_request(azurite: Azurite, arm: ArmStandIn, tmp_path: Path) -> None:
    run = Cli({**store_env(azurite, fresh_settings()), **arm.identity_env(), "ARM_ENDPOINT": "http://example.com"}, tmp_path)
    assert "uses plain http" in one_line(run("sync", "--service", SERVICE_ID), 2)
    assert arm.hits("/") == []


def test_local_settings_json_of_the_wrong_shape(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    for text, expected in (('{"Values": 5}', '"Values" must be an object of setting names and values, not a number'),
                           ("[1]", "the file must be an object of setting names and values, not an array"),
                           ('{"Values": {', "local.settings.json is not JSON (line 1, column 13)")):
        (tmp_path / "local.settings.json").write_text(text, encoding="utf-8")
        assert expected in one_line(run("flags"), 2), text


# -- the store, ARM and the credentials: exit code 1 ---------------------------------------------------------------
def test_a_bad_account_key_blames_the_key_of_the_setting(azurite: Azurite, tmp_path: Path) -> None:
    bad = azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    line = one_line(Cli({"INVENTORY_STORAGE": bad}, tmp_path)("flags"), 1)
    assert line.startswith("apim-inventory: error: the inventory store refused the credentials of INVENTORY_STORAGE (403 AuthorizationFailure): ")
    assert line.endswith("Next: check the account key or connection string in INVENTORY_STORAGE, or the identity's role on the account.")


def test_an_unreachable_store_names_the_setting(tmp_path: Path) -> None:
    closed = f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:{free_port()}/a;"
    line = one_line(Cli({"AzureWebJobsStorage": closed}, tmp_path)("summary"), 1)
    assert "the inventory store is unreachable" in line and "Next: check AzureWebJobsStorage and that the account" in line


def test_a_sync_without_a_credential_blames_the_credential_for_arm(azurite: Azurite, arm: ArmStandIn, tmp_path: Path) -> None:
    run = Cli({**store_env(azurite, fresh_settings()), "ARM_ENDPOINT": arm.endpoint, "AZURE_TOKEN_CREDENTIALS": "prod"}, tmp_path)
    line = one_line(run("sync", "--service", SERVICE_ID), 1)
    assert line.startswith("apim-inventory: error: the credential for ARM could not get a token: ") and "store" not in line
    told, _, advice = line.partition(" Next: ")
    assert told.endswith(".") and advice.startswith("sign in with `az login`")  # whole sentences, then the one thing to do
    assert arm.hits("/subscriptions/") == []


def test_a_sync_that_cannot_list_says_so_once_and_counts_nothing_unchanged(azurite: Azurite, arm: ArmStandIn, tmp_path: Path) -> None:
    run = Cli({**store_env(azurite, fresh_settings()), **arm.identity_env(), "ARM_ENDPOINT": arm.endpoint}, tmp_path)
    assert as_table(run("sync", "--service", SERVICE_ID))[-1]["Listed"] == "yes"
    arm.fail(f"{SERVICE_ID}/", 403, times=1000)
    result = run("sync", "--service", "contoso")  # by name: the inventory knows its ARM id now
    line = one_line(result, 1)
    listed = [kind for kind in Kind if FACTS[kind].listed]  # the children of the APIs and gateways were not listed either
    assert f"ARM: not every kind was listed, so no row of these was tombstoned ({', '.join(listed)}: " \
           "ARM 403 AuthorizationFailed: Injected fault: 403 AuthorizationFailed.)" in line
    assert result.stderr.count("Injected fault") == 1 and len(result.stderr.splitlines()) == 1
    rows = {r["Kind"]: r for r in as_table(subprocess.CompletedProcess(result.args, 0, result.stdout, ""))}
    expected: dict[str, tuple[str, str]] = {**dict.fromkeys(listed, ("0", "no")), "total": ("0", "no")}
    assert {kind: (r["Unchanged"], r["Listed"]) for kind, r in rows.items()} == expected


def test_sync_of_a_name_the_inventory_never_saw_needs_the_arm_id(azurite: Azurite, arm: ArmStandIn, tmp_path: Path) -> None:
    run = Cli({**store_env(azurite, fresh_settings()), **arm.identity_env(), "ARM_ENDPOINT": arm.endpoint}, tmp_path)
    assert "sync needs the ARM id of service 'contoso'" in one_line(run("sync", "--service", "contoso"), 2)
    assert as_json(run("sync", "--service", SERVICE_ID, "-o", "json"))["finished"] is True  # a new service, by its ARM id


# -- input files and events ------------------------------------------------------------------------------------------
def test_replay_of_what_cannot_be_decoded_is_incomplete(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    result = run("replay", "-", stdin='[1, "x"]')
    assert result.stdout == "2 events: applied 0, duplicate 0, stale 0, rejected 0, undecodable 2\n"
    assert "of 2 events, 2 could not be decoded" in one_line(result, 1)
    warnings = result.stderr.splitlines()[:-1]
    assert [w.split(": skipped")[0] for w in warnings] == ["apim-inventory: warning: -: event 1", "apim-inventory: warning: -: event 2"]
    assert "it is a JSON number, not an object" in warnings[0] and "it is a JSON string, not an object" in warnings[1]

    late = {**event("UserCreated", "/users/a"), "time": "yesterday"}
    (tmp_path / "late.json").write_text(json.dumps([event("UserCreated", "/users/b"), late]), encoding="utf-8")
    result = run("replay", "late.json")
    assert result.stdout == "2 events: applied 1, duplicate 0, stale 0, rejected 0, undecodable 1\n"
    assert "late.json: event 2: skipped, the Functions host cannot decode it: its 'time' must be an ISO 8601 time such as " \
           "2026-11-02T09:00:00Z, not 'yesterday'" in result.stderr
    one_line(result, 1)

    result = run("replay", "-", stdin='{"a": 1}')
    assert result.stdout == "1 events: applied 0, duplicate 0, stale 0, rejected 1\n"
    assert "-: event 1: rejected (not-an-event): neither an Event Grid event" in result.stderr
    assert "of 1 events, 1 were rejected" in one_line(result, 1)


# -- the exit-code table ---------------------------------------------------------------------------------------------
def test_the_exit_code_table(azurite: Azurite, tmp_path: Path) -> None:
    run = seeded_cli(azurite, tmp_path)
    (tmp_path / "unreadable.json").mkdir()
    table = {  # argv -> exit code, one of each row of the table
        ("list", "user"): 0, ("replay", "-"): 0, ("flags", "-o", "csv"): 0,
        ("show", "contoso/users/nobody"): 1, ("list", "user", "--service", "contosso"): 1,
        ("replay", "missing.json"): 2, ("replay", "unreadable.json"): 2, ("list", "widget"): 2, ("changes", "--since", "soon"): 2,
        ("list", "user", "--service", "/subscriptions/x"): 2,
    }
    for argv, code in table.items():
        result = run(*argv, stdin="[]")
        if code == 0:
            ok(result)
        else:
            failed(result, code)
    assert one_line(run("flags", TOKEN_WARNING_DAYS="x"), 2)
    assert one_line(run("replay", "-", stdin='[{"a": 1}]'), 1)
    help_text = ok(run("--help"))
    assert EXIT_CODES in help_text
    for command in ("list", "sync", "replay"):
        assert "Exit codes" in ok(run(command, "--help")), command
    assert "## Exit codes" in README.read_text(encoding="utf-8")


# -- --service: a name or an ARM id, and a name the inventory never saw ------------------------------------------------
def test_service_by_name_or_arm_id(azurite: Azurite, tmp_path: Path) -> None:
    run = seeded_cli(azurite, tmp_path)
    by_name, by_id, other_case = run.many(["list", "user", "--service", "contoso", "-o", "json"],
                                          ["list", "user", "--service", SERVICE_ID, "-o", "json"],
                                          ["changes", "--since", "1h", "--service", SERVICE_ID.upper(), "-o", "json"])
    assert [r["Path"] for r in as_json(by_name)] == [r["Path"] for r in as_json(by_id)] == ["users/alice"]
    assert as_json(other_case)["count"] == 2
    line = failed(run("list", "user", "--service", "contosso"), 1)
    assert line == "apim-inventory: error: the inventory has never seen service 'contosso': did you mean 'contoso'? it knows contoso"
    other = SERVICE_ID.replace("/contoso", "/fabrikam")
    assert "never seen service 'fabrikam'" in failed(run("changes", "--since", "1h", "--service", other), 1)


# -- columns ---------------------------------------------------------------------------------------------------------
def test_list_columns_are_the_documented_ones_with_or_without_details(azurite: Azurite, arm: ArmStandIn, tmp_path: Path) -> None:
    run = seeded_cli(azurite, tmp_path, **arm.identity_env(), ARM_ENDPOINT=arm.endpoint)
    before = ok(run("list", "user", "-o", "csv")).splitlines()[0]
    ok(run("sync", "--service", SERVICE_ID))
    after = ok(run("list", "user", "-o", "csv")).splitlines()[0]
    assert before == after == ",".join(columns.LIST_COLUMNS[Kind.USER])
    assert list(as_table(run("list", "user"))[0]) == list(columns.LIST_COLUMNS[Kind.USER])
    every = as_csv(run("list", "user", "-o", "csv", "--all-columns"))
    assert list(every[0])[:len(columns.LIST_COLUMNS[Kind.USER])] == list(columns.LIST_COLUMNS[Kind.USER])
    assert {"PartitionKey", "RowKey", "DetailsKey"} <= set(every[0]) and "DetailsKey" not in after
    assert "PartitionKey" in as_json(run("list", "user", "-o", "json"))[0]
    flags = ok(run("flags", "-o", "csv")).splitlines()
    assert flags[0] == ",".join(columns.FLAG_COLUMNS) and flags[1].startswith("contoso,gatewayInstance,gateways/edge/instances/pod-1,")


def test_an_expired_token_reads_expired(azurite: Azurite, tmp_path: Path) -> None:
    run = seeded_cli(azurite, tmp_path)
    now, later = as_table(run("flags")), as_table(run("--now", "2099-01-01T00:00:00Z", "flags"))
    assert now[0]["Detail"].startswith("expires ") and later[0]["Detail"].startswith("expired ")


def test_wide_tables_fit_the_terminal(azurite: Azurite, tmp_path: Path) -> None:
    run = Cli(store_env(azurite, fresh_settings()), tmp_path)
    long = event("UserCreated", "/widgets/" + "w" * 300, event_type="Microsoft.ApiManagement.UserCreated")
    failed_replay = run("replay", "-", stdin=json.dumps([long]))
    assert failed_replay.returncode == 1
    fitted = ok(run("rejected", COLUMNS="100")).splitlines()
    assert max(width(line) for line in fitted) <= 100 and "…" in fitted[2]
    wide = ok(run("rejected", "-o", "wide", COLUMNS="100")).splitlines()
    assert max(width(line) for line in wide) > 300 and "…" not in wide[2]
    assert re.match(r"^ReceivedAt\s+Reason\s+EventId\s+EventType\s+Subject\s+Message$", fitted[0])


def test_a_dry_run_says_would_delete(azurite: Azurite, tmp_path: Path) -> None:
    run = seeded_cli(azurite, tmp_path)
    document = as_json(run("purge", "--dry-run", "-o", "json"))
    assert all("wouldDelete" in r and "deleted" not in r for r in document["results"])
    text = ok(run("purge", "--dry-run")).splitlines()
    assert text[0].split()[-1] == "WouldDelete" and text[-1] == "dry run: would delete 0 rows; nothing was deleted"
