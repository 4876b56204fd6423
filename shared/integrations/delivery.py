"""Event Grid deliveries as the Functions host and worker handle them: a delivery (a JSON array, or
one object) is split into single events (each is then decoded by `trigger.decode_event`, the
library's own converter), and files of events are read. The replay command uses this, and so do
the tests and the demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def split_delivery(body: str | list[Any] | dict[str, Any]) -> list[str]:
    """An HTTP delivery (a JSON array, or one object) as the per-event payloads the host dispatches."""
    items = json.loads(body) if isinstance(body, str) else body
    if isinstance(items, dict):
        items = [items]
    return [json.dumps(item) for item in items]


def read_events(text: str) -> Iterator[str]:
    """Events from a file's text: a JSON array or object as Event Grid delivers it, a JSON array of
    such deliveries, or JSON Lines (one event or delivery per line)."""
    stripped = text.lstrip()
    if not stripped:
        return
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield from _flatten(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON: {exc.msg}") from None
        return
    yield from _flatten(document)


def _flatten(document: Any) -> Iterator[str]:
    for item in document if isinstance(document, list) else [document]:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield json.dumps(item)
