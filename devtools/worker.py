"""Deliver events to the function app the way the Functions host and Python worker do:
index `function_app.app`, split the delivered JSON array into single events, decode each with
the library's own `eventGridTrigger` converter, and call the indexed function once per event."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func
from azure.functions import meta

_CONVERTER: Any = meta.get_binding_registry().get("eventGridTrigger")  # type: ignore[no-untyped-call]


def decode_event(payload: str | dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """One event's JSON, decoded exactly as the worker decodes a trigger payload."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    decoded: func.EventGridEvent | func.CloudEvent = _CONVERTER.decode(meta.Datum(text, "json"), trigger_metadata={})
    return decoded


def split_delivery(body: str | list[Any] | dict[str, Any]) -> list[str]:
    """An HTTP delivery (a JSON array, or one object) as the per-event payloads the host dispatches."""
    items = json.loads(body) if isinstance(body, str) else body
    if isinstance(items, dict):
        items = [items]
    return [json.dumps(item) for item in items]


_INDEX: dict[int, dict[str, Callable[..., Any]]] = {}


def indexed_function(name: str, app: Any = None) -> Callable[..., Any]:
    """The user function the worker would call. `get_functions()` indexes an app only once, as the
    worker does, so the index is kept."""
    if app is None:
        import function_app

        app = function_app.app
    if id(app) not in _INDEX:
        _INDEX[id(app)] = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    try:
        return _INDEX[id(app)][name]
    except KeyError:
        raise KeyError(f"no function named {name!r} is indexed") from None


def deliver(events: Iterable[str | dict[str, Any]], function_name: str = "apim_events") -> int:
    """Decode and invoke each event; exceptions propagate, as a failed delivery would."""
    function = indexed_function(function_name)
    count = 0
    for payload in events:
        function(decode_event(payload))
        count += 1
    return count
