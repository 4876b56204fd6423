"""Microsoft's published example payloads (81 files, both schemas) and the seed document's samples,
exactly as written. Each one lands or is rejected with a clear reason; none raises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.worker import decode_event, indexed_function, split_delivery
from shared.domain.event_types import canonical_type
from shared.ingest.pipeline import EventProcessor

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXAMPLES = SHARED / "spec-examples"
SEED = SHARED / "seeds" / "apim-event-grid-schema.md"
FILES = sorted(EXAMPLES.glob("*/*.json"))


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
    rows = list(app_processor.repo.rows())
    rejected = app_processor.repo.rejected()
    reason = expected_rejection(raw if isinstance(raw, dict) else raw[0])
    if reason:
        assert rows == []
        assert [r["Reason"] for r in rejected] == [reason]
        assert rejected[0]["Message"]
    else:
        assert rejected == []
        event_type = canonical_type(raw.get("type") or raw.get("eventType") or raw.get("Type"))
        assert any(r["LastEventType"] == event_type for r in rows), rows


def seed_samples() -> list[str]:
    """The JSON samples in the seed document, cut out verbatim."""
    lines = SEED.read_text().splitlines()
    samples: list[str] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if start is None and line in ("[{", "{"):
            start = i
        elif start is not None and line in ("}]", "}"):
            text = "\n".join(lines[start:i + 1])
            try:
                json.loads(text)
            except json.JSONDecodeError:
                continue
            samples.append(text)
            start = None
    return samples


@pytest.mark.unit
def test_seed_document_has_five_samples() -> None:
    assert len(seed_samples()) == 5


@pytest.mark.parametrize("index", range(5))
def test_seed_sample(app_processor: EventProcessor, index: int) -> None:
    text = seed_samples()[index]
    apim_events = indexed_function("apim_events")
    for payload in split_delivery(text):
        apim_events(decode_event(payload))
    raw = json.loads(text)
    raw = raw[0] if isinstance(raw, list) else raw
    rows, rejected = list(app_processor.repo.rows()), app_processor.repo.rejected()
    if "specversion" in raw:
        # Capitalised Type/Time: recovered from the CloudEvent's extension attributes.
        (row,) = rows
        assert row["LastEventType"] == canonical_type(raw["Type"])
        assert row["Path"].lower() == re.sub(r";rev=", ";rev=", raw["subject"].strip("/"), flags=re.I).lower()
        assert row["IsDeleted"] is raw["Type"].endswith("Deleted")
    else:
        assert rows == []
        assert [r["Reason"] for r in rejected] == ["unrecoverable-envelope"]
