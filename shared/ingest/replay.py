"""Events through the function's pipeline from outside the function: each payload is decoded by the
library's converter, as the Functions host decodes a trigger payload, and handled by the same
EventProcessor. The command's replay of files and of dead-letter blobs share this."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.domain.errors import PermanentEventError, one_line
from shared.domain.outcomes import EVENT_OUTCOMES, Outcome
from shared.domain.times import parse_time
from shared.ingest.pipeline import EventProcessor, Result
from shared.integrations.trigger import decode_event

UNDECODABLE = Outcome.UNDECODABLE


class Undecodable(ValueError):
    """The Functions host would fail this delivery before the function runs."""


def apply(processor: EventProcessor, payload: str | dict[str, Any]) -> Outcome:
    """The outcome of one event: applied, duplicate, stale or rejected. Raises Undecodable; storage
    errors propagate, as they make the function raise."""
    return handle(processor, payload).outcome


def handle(processor: EventProcessor, payload: str | dict[str, Any]) -> Result:
    """`apply`, with the pipeline's whole result (a rejected event's reason)."""
    try:
        event = decode_event(payload)
    except Exception as exc:
        raise Undecodable(why_undecodable(payload, exc)) from None
    return processor.handle(event)


def why_undecodable(payload: str | dict[str, Any], exc: Exception) -> str:
    """Why the Functions library cannot decode a payload, in words: its own messages are Python's (`'int' object has
    no attribute 'get'`) or strptime's format strings."""
    try:
        document = json.loads(payload) if isinstance(payload, str) else payload
    except ValueError:
        return "it is not JSON"
    if not isinstance(document, dict):
        return (f"it is a JSON {_json_type(document)}, not an object: an event is an object such as "
                '{"id": ..., "eventType": ..., "subject": ..., "eventTime": ..., "data": {...}}')
    for name in ("time", "eventTime"):
        value = document.get(name)
        if value is not None:
            try:
                parse_time(value, name)
            except PermanentEventError:
                return f"its {name!r} must be an ISO 8601 time such as 2026-11-02T09:00:00Z, not {str(value)[:60]!r}"
    text = one_line(exc, 200)
    if "does not match format" in text or "time data" in text:
        return "its time is not one the Functions library reads: write an ISO 8601 time such as 2026-11-02T09:00:00Z"
    return f"the Functions library cannot decode it: {text}"


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def outcome_text(counts: Mapping[str, int]) -> str:
    """`applied 3, duplicate 0, stale 1, rejected 0` (and `undecodable N` when there were some)."""
    names = [*EVENT_OUTCOMES, *([UNDECODABLE] if counts.get(UNDECODABLE) else [])]
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)
