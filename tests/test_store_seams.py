"""The store's seams hold: outside `shared/store/` no module builds a PartitionKey or RowKey, writes out a
partition rule or names a table by a string; every inventory row is written through `RowWriter.apply`; and the
app settings are read once per process."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from devtools.azurite import Azurite
from shared import bootstrap
from shared.config import Settings

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_STORE = sorted(p for p in (ROOT / "shared").rglob("*.py") if (ROOT / "shared" / "store") not in p.parents)
LAYOUT = {
    "an entity's key": re.compile(r"""["'](PartitionKey|RowKey)["']\s*:"""),
    "a day partition": re.compile(r"%Y%m%d"),
    "an outbox partition": re.compile(r"""["'](pending|sent\|)["']\s*[,)]|f["']sent\|"""),
    "a table by name": re.compile(r"""(?<!\w)Query\(\s*["']"""),
    "a key built": re.compile(r"\b(resource_keys|history_keys|partition_key|status_keys|rejected_keys)\("),
    "a row saved past the writer": re.compile(r"\.(save|save_batch)\(\s*(?!\[)"),
}


# A sync writes in transactions of one partition, so it orders and groups its plans by the keys the store gives
# (shared.store.keys.resource_keys): it reads them, and its rows are still keyed and written by the writer.
ALLOWED = {(f"shared/management/{module}.py", "a key built") for module in ("listing_pass", "plan_writer", "tombstone_pass")}


@pytest.mark.unit
def test_no_module_outside_the_store_builds_keys_or_names_a_table() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {what}: {line.strip()}"
             for path in OUTSIDE_STORE for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             for what, pattern in LAYOUT.items()
             if pattern.search(line) and (str(path.relative_to(ROOT)), what) not in ALLOWED]
    assert found == []


@pytest.mark.unit
def test_the_check_sees_what_it_forbids() -> None:
    """Each pattern finds the line it is there for (the test above could otherwise pass by matching nothing)."""
    samples = {
        "an entity's key": '{"PartitionKey": pk, "RowKey": rk}', "a day partition": 'now.strftime("%Y%m%d")',
        "an outbox partition": 'Query(table, "sent|", high)', "a table by name": 'Query("inventory")',
        "a key built": "pk, rk = resource_keys(ref)", "a row saved past the writer": "self.repo.save(entity, None)",
    }
    assert {what: bool(LAYOUT[what].search(line)) for what, line in samples.items()} == dict.fromkeys(samples, True)


def test_settings_are_read_once_per_process(app_settings: Settings, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexing the app (its schedules), building the services and every entry point's use of them: one reading."""
    reads: list[int] = []
    real = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Settings], env: object = None) -> Settings:
        reads.append(1)
        result: Settings = real(cls, env)
        return result

    monkeypatch.setattr(Settings, "from_env", classmethod(counting))
    bootstrap.install(None)
    try:
        sys.modules.pop("function_app", None)
        app = importlib.import_module("function_app")
        built = bootstrap.services()
        assert built.settings is bootstrap.app_settings()
        built.purger.plan(built.clock())
        bootstrap.health_report()
        assert app.bootstrap is bootstrap
    finally:
        bootstrap.install(None)
        sys.modules.pop("function_app", None)
    assert len(reads) == 1
