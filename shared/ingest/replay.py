"""Events through the function's pipeline from outside the function: each payload is decoded by the
library's converter, as the Functions host decodes a trigger payload, and handled by the same
EventProcessor. The command's replay of files and of dead-letter blobs share this."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.outcomes import EVENT_OUTCOMES, Outcome
from shared.ingest.pipeline import EventProcessor
from shared.integrations.trigger import decode_event

UNDECODABLE = Outcome.UNDECODABLE


class Undecodable(ValueError):
    """The Functions host would fail this delivery before the function runs."""


def apply(processor: EventProcessor, payload: str | dict[str, Any]) -> Outcome:
    """The outcome of one event: applied, duplicate, stale or rejected. Raises Undecodable; storage
    errors propagate, as they make the function raise."""
    try:
        event = decode_event(payload)
    except Exception as exc:
        raise Undecodable(" ".join(str(exc).split())) from None
    return processor.handle(event).outcome


def outcome_text(counts: Mapping[str, int]) -> str:
    """`applied 3, duplicate 0, stale 1, rejected 0` (and `undecodable N` when there were some)."""
    names = [*EVENT_OUTCOMES, *([UNDECODABLE] if counts.get(UNDECODABLE) else [])]
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)
