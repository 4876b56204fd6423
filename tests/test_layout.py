"""The layout holds: the domain loads only the standard library, and the package installs whole.

The import rules themselves are import-linter contracts (pyproject.toml, `make lint`); these tests check
what the contracts cannot see: what importing a module loads at run time, and what a wheel holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = sorted(f"shared.domain.{p.stem}" for p in (ROOT / "shared" / "domain").glob("*.py") if p.stem != "__init__")
LOADED = "import json, sys; before = set(sys.modules); import {module}; print(json.dumps(sorted(set(sys.modules) - before)))"


def loaded_by(module: str) -> list[str]:
    """The modules a fresh interpreter loads to import `module`."""
    done = subprocess.run([sys.executable, "-c", LOADED.format(module=module)], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.unit
def test_the_domain_modules_are_the_ones_the_layout_names() -> None:
    assert {"shared.domain.kinds", "shared.domain.resources", "shared.domain.events", "shared.domain.times",
            "shared.domain.model", "shared.domain.flags", "shared.domain.details", "shared.domain.errors"} <= set(DOMAIN)


@pytest.mark.slow
@pytest.mark.parametrize("module", DOMAIN)
def test_a_domain_module_loads_no_azure_and_nothing_but_the_standard_library(module: str) -> None:
    loaded = loaded_by(module)
    assert module in loaded  # the import ran in this interpreter, so the list below is what it cost
    assert [m for m in loaded if m.startswith("azure")] == []
    foreign = [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names
               and m != "shared" and not m.startswith("shared.domain")]
    assert foreign == []


@pytest.mark.slow
def test_a_non_editable_install_runs_the_command_and_indexes_the_function_app(tmp_path: Path) -> None:
    """pip install of a copy of the project into a fresh virtual environment, offline: its dependencies come
    from this environment's site-packages, the project itself only from the wheel pip builds."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "shared", source / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, source / name)
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site_packages, "_parent_site_packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"PIP_NO_INDEX": "1"}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(source)],
                   cwd=tmp_path, env=env, check=True, timeout=300)
    shutil.rmtree(source)  # nothing below may come from the copy: only from what was installed

    command = subprocess.run([str(target / "bin" / "apim-inventory"), "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert command.returncode == 0 and command.stdout.startswith("usage: apim-inventory"), command.stderr

    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "function_app.py", app / "function_app.py")
    indexed = subprocess.run(
        [str(python), "-c", "import json, function_app, shared; "
         "print(json.dumps([shared.__file__, sorted(f.get_function_name() for f in function_app.app.get_functions())]))"],
        cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert indexed.returncode == 0, indexed.stderr
    package, functions = json.loads(indexed.stdout)
    assert Path(package).is_relative_to(site_packages)
    assert functions == sorted(["apim_events", "gateway_token_sweep", "circuit_breaker_sweep", "reconcile", "inventory",
                                "resource", "history", "changes", "access", "flags", "summary", "health", "purge", "expiring",
                                "alerts", "usage", "unused", "gateway_logs", "openapi", "ui_whoami", "activity_logs", "keys",
                                "gateway_logs_stream", "activity_logs_stream", "requests", "ui_overview", "ui_report", "ui_resource",
                                "ui_static", "count_snapshots"])
    assert (Path(package).parent / "entrypoints" / "static" / "app.css").is_file(), "the pages' stylesheet is installed with the package"
