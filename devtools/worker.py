"""Deliver events to the function app the way the Functions host and Python worker do:
index `function_app.app`, split the delivered JSON array into single events, decode each with
the library's own `eventGridTrigger` converter, and call the indexed function once per event.
Timers fire the same way, with the payload decoded by the library's `timerTrigger` converter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func
from azure.functions import meta

from shared.integrations.delivery import split_delivery
from shared.integrations.trigger import decode_event

__all__ = ["decode_event", "deliver", "fire_timer", "function_json", "http_functions", "indexed_function", "retry_policy", "split_delivery"]

# The converter builds the request on both library lines: 1.x cannot construct func.TimerRequest (an abstract
# class there), 2.x can; the converter's own class takes the same arguments in both.
_TIMER_CONVERTER: Any = meta.get_binding_registry().get("timerTrigger")  # type: ignore[no-untyped-call]

_INDEX: dict[int, dict[str, Any]] = {}


def indexed_function(name: str, app: Any = None) -> Callable[..., Any]:
    """The user function the worker would call. `get_functions()` indexes an app only once, as the
    worker does, so the index is kept."""
    function: Callable[..., Any] = _indexed(name, app).get_user_function()
    return function


def function_json(name: str, app: Any = None) -> dict[str, Any]:
    """The bindings the worker reports to the host for one function."""
    bindings: dict[str, Any] = json.loads(_indexed(name, app).get_function_json())
    return bindings


def _index(app: Any) -> None:
    if id(app) not in _INDEX:
        _INDEX[id(app)] = {f.get_function_name(): f for f in app.get_functions()}


def retry_policy(name: str, app: Any = None) -> dict[str, Any] | None:
    """The retry policy the worker reports to the host for one function (apart from its bindings), or None."""
    policy: dict[str, Any] | None = _indexed(name, app).get_settings_dict("retry_policy")
    return policy


def _indexed(name: str, app: Any) -> Any:
    if app is None:
        import function_app

        app = function_app.app
    _index(app)
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


def fire_timer(name: str, past_due: bool = False) -> None:
    """Invoke a timer function once with the payload the host sends, decoded as the worker decodes it;
    exceptions propagate, as a failed run would."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": past_due}
    request: func.TimerRequest = _TIMER_CONVERTER.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata={})
    indexed_function(name)(request)


def http_functions(app: Any = None) -> list[tuple[str, dict[str, Any], Callable[..., Any]]]:
    """Each indexed HTTP function: (name, its httpTrigger binding as reported to the host, the user function)."""
    if app is None:
        import function_app

        app = function_app.app
    _index(app)
    found = []
    for name, function in _INDEX[id(app)].items():
        triggers = [b for b in json.loads(function.get_function_json())["bindings"] if b["type"] == "httpTrigger"]
        if triggers:
            found.append((name, triggers[0], function.get_user_function()))
    return found
