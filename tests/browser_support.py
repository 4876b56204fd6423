"""The pages in a real browser: `make serve`'s server as a subprocess (sign-in played as Inventory.Read) and one headless
Chromium for the session. Without /usr/bin/chromium the browser tests are skipped and the run's summary says so loudly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-screenshots"
MISSING = f"BROWSER TESTS SKIPPED: {CHROMIUM} not found; install it with: sudo apt-get install chromium"
# Quiet and offline: no update checks, no first-run pages, nothing that would leave the machine on its own.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@dataclass(frozen=True)
class Serving:
    url: str  # the base URL, ending in "/"
    key: str  # the function key its banner printed, for the JSON routes
    process: subprocess.Popen[str]
    env: dict[str, str]  # the settings its banner printed (export NAME='value'): the command against the same store


def start_serve(port: int, data: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`python -m devtools.serve`, returned once it printed `ready` (its Azurite and demo data loaded)."""
    process = subprocess.Popen([sys.executable, "-m", "devtools.serve", "--port", str(port), "--data", str(data), *extra],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":  # from here on its output is drained, so a full pipe never blocks the server
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, lines
    process.kill()
    raise AssertionError("make serve did not come up:\n" + "\n".join(lines[-40:]))


def stop(process: subprocess.Popen[str]) -> None:
    """SIGINT by its PID (serve stops its Azurite on it), SIGTERM if that was not enough."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            continue
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="session")
def served_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    process, lines = start_serve(port := free_port(), tmp_path_factory.mktemp("serve"), "--sign-in-as", "Inventory.Read")
    key = next((line.rsplit(" ", 1)[-1] for line in lines if "function key" in line), "")
    try:
        exports = dict(line.strip()[len("export "):].split("=", 1) for line in lines if line.strip().startswith("export "))
        yield Serving(f"http://127.0.0.1:{port}/", key, process, {name: value.strip("'") for name, value in exports.items()})
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
