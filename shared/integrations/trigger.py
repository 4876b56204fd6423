"""The Functions trigger's types -> one plain InventoryEvent; and the library's own converter, which
turns an event's JSON into those types exactly as the worker does (used by the replays).

The one place besides function_app.py and entrypoints/ that imports azure.functions."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from azure.functions import meta

from shared.domain.errors import PermanentEventError
from shared.domain.event_types import canonical_type, is_apim_type
from shared.domain.events import InventoryEvent
from shared.domain.resources import parse_service_id
from shared.domain.times import parse_time

MAX_ID_CHARS = 256
TriggerInput = func.EventGridEvent | func.CloudEvent  # what the library hands the function
_CONVERTER: Any = meta.get_binding_registry().get("eventGridTrigger")  # type: ignore[no-untyped-call]


def describe(obj: object) -> dict[str, Any]:
    """The trigger object as a plain dict, for logs and rejected-event records."""
    if isinstance(obj, func.CloudEvent):
        return {
            "id": obj.id, "source": obj.source, "type": obj.type, "subject": obj.subject,
            "time": obj.time.isoformat() if obj.time else None, "specversion": obj.specversion,
            "data": obj.get_json(), **obj.extension_attrs,
        }
    if isinstance(obj, func.EventGridEvent):
        return {
            "id": obj.id, "topic": obj.topic, "subject": obj.subject, "eventType": obj.event_type,
            "eventTime": obj.event_time.isoformat() if obj.event_time else None,
            "dataVersion": obj.data_version, "data": obj.get_json(),
        }
    return {"repr": repr(obj)[:1000]}


def parse_event(obj: TriggerInput) -> InventoryEvent:
    """Raise PermanentEventError with a clear reason for anything that cannot be an APIM event."""
    if isinstance(obj, func.CloudEvent):
        ext = {k.lower(): v for k, v in obj.extension_attrs.items()}
        raw_type = obj.type if obj.type is not None else ext.get("type")
        when: object = obj.time if obj.time is not None else ext.get("time")
        source: object = obj.source
        schema = "cloudEvents"
    elif isinstance(obj, func.EventGridEvent):
        raw_type, when, source, schema = obj.event_type, obj.event_time, obj.topic, "eventGrid"
        if raw_type is None and obj.topic is None and obj.data_version is None and obj.id is None and obj.subject is None:
            raise PermanentEventError(
                "not-an-event",
                "neither an Event Grid event (id, subject, eventType, eventTime, data, dataVersion) nor a CloudEvent "
                "(specversion, id, source, type, time): it has none of their attributes",
            )
        if raw_type is None and obj.topic is None and obj.data_version is None:
            raise PermanentEventError(
                "unrecoverable-envelope",
                "no eventType and no topic: a CloudEvents payload spelled 'specVersion' instead of "
                "'specversion' is decoded as Event Grid schema, which drops its type and source",
            )
    else:
        raise PermanentEventError("not-an-event", f"unexpected trigger input {type(obj).__name__}")

    event_id = obj.id
    if not isinstance(event_id, str) or not event_id.strip():
        raise PermanentEventError("missing-id", "the event has no id")
    if len(event_id) > MAX_ID_CHARS:
        raise PermanentEventError("key-too-large", f"event id of {len(event_id)} characters; the limit is {MAX_ID_CHARS}")
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise PermanentEventError("missing-type", "the event has no type")
    if not is_apim_type(raw_type):
        raise PermanentEventError("not-apim", f"{raw_type[:200]!r} is not an API Management event type")
    event_type = canonical_type(raw_type)
    if event_type is None:
        raise PermanentEventError("unhandled-type", f"no handler for event type {raw_type[:200]!r}")
    service = parse_service_id(source)
    subject = obj.subject
    if not isinstance(subject, str) or not subject.strip():
        raise PermanentEventError("bad-subject", "the event has no subject")
    data = obj.get_json()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PermanentEventError("bad-data", f"data is a {type(data).__name__}, not a JSON object")
    return InventoryEvent(
        id=event_id.strip(), type=event_type, source=str(source), service=service,
        subject=subject.strip(), time=parse_time(when, "time"), data=data, schema=schema,
    )


def decode_event(payload: str | dict[str, Any]) -> TriggerInput:
    """One event's JSON, decoded exactly as the worker decodes a trigger payload."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    decoded: TriggerInput = _CONVERTER.decode(meta.Datum(text, "json"), trigger_metadata={})
    return decoded
