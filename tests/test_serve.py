"""`make serve` as a user runs it (python -m devtools.serve, a subprocess on a free port): it comes up with the demo's data,
the printed key gets the JSON routes and the printed settings reach the same store; the demo's Activity Log records were
read, so history names who made a change (masked under the default FUNCTION_KEY_ROLE); SIGTERM stops it and the Azurite
it started; a second start finds the data and loads nothing, and serves a key caller as FUNCTION_KEY_ROLE says."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devtools.activity_log import UPN
from devtools.azurite import ROOT, free_port, node_available
from devtools.demo_audit import ALICE, PIPELINE
from shared.domain.personal import Role
from shared.entrypoints.signin import KEY_ROLE_SETTING

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not node_available(), reason="Azurite needs node")]


def _start(port: int, data: Path, *extra: str, key_role: str = "") -> tuple[subprocess.Popen[str], list[str]]:
    env = {**{k: v for k, v in os.environ.items() if k != KEY_ROLE_SETTING}, "PYTHONUNBUFFERED": "1",
           **({KEY_ROLE_SETTING: key_role} if key_role else {})}
    process = subprocess.Popen([sys.executable, "-m", "devtools.serve", "--port", str(port), "--data", str(data), *extra], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":
            return process, lines
    process.kill()
    raise AssertionError("make serve did not come up:\n" + "\n".join(lines[-40:]))


def _stop(process: subprocess.Popen[str], data: Path) -> str:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    pid = int(re.search(r"Azurite \(pid (\d+)\)", rest).group(1))  # type: ignore[union-attr]
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), "Azurite still runs"
    return rest


def _get(url: str, key: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"x-functions-key": key}), timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def _created_by(url: str, key: str) -> tuple[str, dict[str, object]]:
    """The role served, and the APICreated event of the demo's orders API as history answers it (joined to its record)."""
    status, headers, body = _get(f"{url}/api/history?id=contoso-apim/apis/orders", key)
    assert status == 200
    created = [e for e in json.loads(body)["items"] if str(e.get("EventType")).endswith("APICreated") and e.get("auditJoined")]
    assert len(created) == 1, "the Activity Log's record of the API's creation is joined to its event"
    return headers["X-Inventory-Role"], created[0]


def test_make_serve_comes_up_with_the_demo_data_and_stops_what_it_started(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "serve"
    process, lines = _start(port, data)
    try:
        text = "\n".join(lines)
        key = re.search(r"function key \(x-functions-key header or \?code=\): (\S+)", text).group(1)  # type: ignore[union-attr]
        storage = re.search(r"export INVENTORY_STORAGE='([^']+)'", text).group(1)  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        status, headers, body = _get(f"{url}/api/summary", key)
        summary = json.loads(body)
        assert status == 200 and headers["X-Inventory-Role"] == "Inventory.Read"
        assert {r["service"] for r in summary["resources"]} == {"contoso-apim", "fabrikam-apim"}
        assert summary["requests"], "the gateway logs were ingested: requests in the last day"
        users = json.loads(_get(f"{url}/api/inventory/user", key)[2])["items"]
        assert users and all(u.get("Email") in (None, "(masked)") for u in users)
        command = Path(sys.executable).parent / "apim-inventory"
        listed = subprocess.run([str(command), "list", "user", "-o", "json"], capture_output=True, text=True, timeout=120,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}, "INVENTORY_STORAGE": storage})
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) >= len(users), listed.stderr
        role, created = _created_by(url, key)
        assert role == Role.READ.value and created["callerKind"] == "user" and created["callerAppId"] == ALICE["appid"]
        assert created["callerUpn"] == created["callerName"] == "(masked)"
        subscription = json.loads(_get(f"{url}/api/history?id=contoso-apim/subscriptions/alice-starter", key)[2])["items"]
        assert any(e.get("callerAppId") == PIPELINE["appid"] and e.get("auditJoined") for e in subscription), "the service principal"
        status, _, body = _get(f"{url}/api/keys?olderThan=1d", key)
        starter = [i for i in json.loads(body)["items"] if i["path"] == "subscriptions/alice-starter"]
        assert status == 200 and starter and starter[0]["primaryKey"] == "fresh", "the regeneration an hour ago was read"
    finally:
        _stop(process, data)
    assert (data / "loaded.json").exists()
    assert json.loads((data / "loaded.json").read_text())["activityLogRecords"] > 0
    # The data persisted: nothing is loaded again, the same key is printed; the key's role now shows personal data.
    process, lines = _start(port, data, key_role=Role.PERSONAL_DATA.value)
    try:
        assert not any("Loading the demo's data" in line for line in lines)
        assert any(key in line for line in lines)
        assert _get(f"http://127.0.0.1:{port}/api/health", key)[0] == 200
        role, created = _created_by(f"http://127.0.0.1:{port}", key)
        assert role == Role.PERSONAL_DATA.value and (created["callerUpn"], created["callerName"]) == (ALICE[UPN], ALICE["name"])
    finally:
        _stop(process, data)
