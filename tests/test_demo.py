"""`make demo` says what README.md says it does: the demo runs as `make demo` runs it, and every quoted line of the
README's "What `make demo` shows" list is in its output, in the list's order (whitespace aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Azurite, the ARM stand-in and the console script, as `make demo` starts them

ROOT = Path(__file__).resolve().parent.parent
SECTION = "### What `make demo` shows"
STRAY = ("INVENTORY_", "AzureWebJobsStorage", "ALERTS_", "TOKEN_", "CIRCUIT_BREAKER_", "ENRICH_", "ARM_", "IDENTITY_")


def squeezed(text: str) -> str:
    return " ".join(text.split())


def claims(readme: str) -> list[str]:
    """The code spans of the section's numbered list (its items and their indented lines), in order."""
    lines = readme.split(SECTION, 1)[1].splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("1. "))
    items = []
    for line in lines[start:]:
        if not re.match(r"\d+\. |   ", line):
            break
        items.append(line)
    return [squeezed(span) for span in re.findall(r"`([^`]+)`", "\n".join(items))]


def test_the_demo_prints_what_the_readme_says() -> None:
    expected = claims((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(expected) >= 30 and expected[0].startswith("deliveries: ")
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRAY)}
    result = subprocess.run([sys.executable, "-m", "devtools.demo"], cwd=ROOT, env=env, capture_output=True, encoding="utf-8",
                            timeout=600, check=False)
    assert result.returncode == 0 and "error:" not in result.stderr, result.stderr[-3000:]
    output, at = squeezed(result.stdout), 0
    for claim in expected:
        found = output.find(claim, at)
        assert found >= 0, f"README says the demo prints {claim!r}; after {output[max(at - 200, 0):at]!r} it does not"
        at = found + len(claim)
