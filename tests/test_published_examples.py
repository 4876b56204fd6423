"""Microsoft's published example payloads (81 files, both schemas) and the 5 samples of the Event Grid source page,
exactly as written (tests/data/README.md says where they come from). Each one lands or is rejected with a clear
reason; none raises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.worker import decode_event, indexed_function, split_delivery
from shared import bootstrap
from shared.domain.event_types import canonical_type
from shared.ingest.pipeline import EventProcessor
from tests.support import history_records, inventory_rows, rejected_records

DATA = Path(__file__).resolve().parent / "data"
FILES = sorted((DATA / "spec-examples").glob("*/*.json"))
SEED_SAMPLES = sorted((DATA / "seed-samples").glob("*.json"))


def expected_rejection(raw: dict[str, Any]) -> str | None:
    """Why an example must be rejected, read from its own oddities, or None when it must land."""
    if "specversion" not in raw and "specVersion" in raw:
        return "unrecoverable-envelope"  # the library decodes it as Event Grid schema and drops type and source
    uri = str(raw.get("data", {}).get("resourceUri", ""))
    if "/subscriptions/subscription-id}/" in uri:
        return "service-mismatch"  # the malformed release ids name another subscription than the source
    subject = str(raw.get("subject", ""))
    if uri and subject.lower() not in uri.lower():
        return "subject-mismatch"
    return None


@pytest.mark.unit
def test_all_81_examples_are_present() -> None:
    assert len(FILES) == 81


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_published_example(app_processor: EventProcessor, path: Path) -> None:
    raw = json.loads(path.read_text())
    apim_events = indexed_function("apim_events")
    for payload in split_delivery(path.read_text()):
        apim_events(decode_event(payload))  # must not raise
    rows = list(inventory_rows(bootstrap.services().store))
    rejected = rejected_records(bootstrap.services().store)
    reason = expected_rejection(raw if isinstance(raw, dict) else raw[0])
    if reason:
        assert rows == []
        assert [r["Reason"] for r in rejected] == [reason]
        assert rejected[0]["Message"]
    else:
        assert rejected == []
        event_type = canonical_type(raw.get("type") or raw.get("eventType") or raw.get("Type"))
        assert any(r["LastEventType"] == event_type for r in rows), rows


@pytest.mark.unit
def test_all_5_seed_samples_are_present() -> None:
    assert len(SEED_SAMPLES) == 5


@pytest.mark.parametrize("path", SEED_SAMPLES, ids=lambda p: p.name)
def test_seed_sample(app_processor: EventProcessor, path: Path) -> None:
    text = path.read_text()
    apim_events = indexed_function("apim_events")
    for payload in split_delivery(text):
        apim_events(decode_event(payload))
    raw = json.loads(text)
    raw = raw[0] if isinstance(raw, list) else raw
    rows, rejected = list(inventory_rows(bootstrap.services().store)), rejected_records(bootstrap.services().store)
    if "specversion" in raw:
        # Capitalised Type/Time: recovered from the CloudEvent's extension attributes.
        (row,) = rows
        assert row["LastEventType"] == canonical_type(raw["Type"])
        assert row["Path"].lower() == re.sub(r";rev=", ";rev=", raw["subject"].strip("/"), flags=re.I).lower()
        assert row["IsDeleted"] is raw["Type"].endswith("Deleted")
    else:
        assert rows == []
        assert [r["Reason"] for r in rejected] == ["unrecoverable-envelope"]


def case_collisions(paths: list[str]) -> list[str]:
    """Paths that a case-insensitive file system (macOS, Windows) would take for another path in the list."""
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for path in paths:
        if path.lower() in seen:
            clashes.append(path)
        seen.setdefault(path.lower(), path)
    return clashes


@pytest.mark.unit
def test_no_two_data_paths_differ_only_by_case() -> None:
    assert case_collisions(["x/apiReleaseCreated.json", "x/apireleaseCreated.json"]) == ["x/apireleaseCreated.json"]
    stored = [p.relative_to(DATA).as_posix() for p in DATA.rglob("*")]
    events = [p for p in stored if p.endswith(".json") and p.startswith(("spec-examples/", "seed-samples/"))]
    assert len(events) == 81 + 5
    assert case_collisions(stored) == []


@pytest.mark.unit
def test_the_81_examples_in_one_store_reuse_ids_without_a_rejection_for_it() -> None:
    """Microsoft's examples share 3 event ids between 81 payloads. Keyed by resource, event time and id, each
    (resource, time, id) is one history record: a payload repeating one already recorded is a duplicate, every other
    lands; nothing is rejected for its id (tests/data/README.md)."""
    services = bootstrap.in_memory()
    bootstrap.install(services)
    try:
        apim_events = indexed_function("apim_events")
        for path in FILES:
            for payload in split_delivery(path.read_text()):
                apim_events(decode_event(payload))
        records = history_records(services.store)
        keys = {(r["EventId"], r["EventTime"], r["PathKey"]) for r in records}
        assert len(keys) == len(records) == 16
        assert services.processor.counts["duplicate"] + services.processor.counts["applied"] == 39
        assert {r["Reason"] for r in rejected_records(services.store)} == {"unrecoverable-envelope", "service-mismatch", "subject-mismatch"}
    finally:
        bootstrap.install(None)
