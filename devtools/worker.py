"""Deliver events to the function app the way the Functions host and Python worker do:
index `function_app.app`, split the delivered JSON array into single events, decode each with
the library's own `eventGridTrigger` converter, and call the indexed function once per event."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func
from azure.functions import meta

_CONVERTER = meta.get_binding_registry().get("eventGridTrigger")


def decode_event(payload: str | dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """One event's JSON, decoded exactly as the worker decodes a trigger payload."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return _CONVERTER.decode(meta.Datum(text, "json"), trigger_metadata={})


def split_delivery(body: str | list[Any] | dict[str, Any]) -> list[str]:
    """An HTTP delivery (a JSON array, or one object) as the per-event payloads the host dispatches."""
    items = json.loads(body) if isinstance(body, str) else body
    if isinstance(items, dict):
        items = [items]
    return [json.dumps(item) for item in items]


def indexed_function(name: str, app: Any = None) -> Callable[..., Any]:
    if app is None:
        import function_app

        app = function_app.app
    for function in app.get_functions():
        if function.get_function_name() == name:
            return function.get_user_function()
    raise KeyError(f"no function named {name!r} is indexed")


def deliver(events: Iterable[str | dict[str, Any]], function_name: str = "apim_events") -> int:
    """Decode and invoke each event; exceptions propagate, as a failed delivery would."""
    function = indexed_function(function_name)
    count = 0
    for payload in events:
        function(decode_event(payload))
        count += 1
    return count
