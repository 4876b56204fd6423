"""Normalise what the Functions library hands us into one plain event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import azure.functions as func

from shared.domain.errors import PermanentEventError
from shared.domain.event_types import canonical_type, is_apim_type
from shared.domain.resources import ServiceRef, parse_service_id

MAX_ID_CHARS = 256


@dataclass(frozen=True)
class InventoryEvent:
    id: str
    type: str  # canonical name, e.g. Microsoft.ApiManagement.APICreated
    source: str  # the APIM service's ARM id as the event gave it
    service: ServiceRef
    subject: str
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)
    schema: str = "cloudEvents"


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


def parse_event(obj: func.EventGridEvent | func.CloudEvent) -> InventoryEvent:
    """Raise PermanentEventError with a clear reason for anything that cannot be an APIM event."""
    if isinstance(obj, func.CloudEvent):
        ext = {k.lower(): v for k, v in obj.extension_attrs.items()}
        raw_type = obj.type if obj.type is not None else ext.get("type")
        when: object = obj.time if obj.time is not None else ext.get("time")
        source: object = obj.source
        schema = "cloudEvents"
    elif isinstance(obj, func.EventGridEvent):
        raw_type, when, source, schema = obj.event_type, obj.event_time, obj.topic, "eventGrid"
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


def parse_time(value: object, what: str) -> datetime:
    """An aware UTC datetime. Azure writes 7 fractional digits; Python keeps 6."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if "." in text:
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}" if digits else text
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise PermanentEventError("bad-time", f"{what} is not an ISO 8601 time: {value[:100]!r}") from exc
    else:
        raise PermanentEventError("bad-time", f"the event has no {what}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise PermanentEventError("bad-time", f"{what} is out of range: {value!s:.100}") from None
    if moment.year < 1601:  # Table Storage's Edm.DateTime starts at 1601
        raise PermanentEventError("bad-time", f"{what} is before 1601, which Table Storage cannot hold: {value!s:.100}")
    return moment
