"""The ARM stand-in's Activity Log route: `GET /subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values
?api-version=2015-04-01&$filter=…`, answering `{"value": [EventData…], "nextLink": …}` as Microsoft's REST spec shows it
(azure-rest-api-specs, specification/monitor/…/stable/2015-04-01/activityLogs_API.json and examples/GetActivityLogsFiltered.json).

The $filter is held to the documented patterns only ("NOTE: No other syntax is allowed"): a start time, an optional end time,
and at most one of resourceGroupName, resourceUri, resourceProvider or correlationId; anything else is a 400. Events are
served newest first, `page_size` a page, with an absolute nextLink carrying a `$skipToken`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from shared.domain.errors import PermanentEventError
from shared.domain.times import parse_time

API_VERSION = "2015-04-01"
PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.insights/eventtypes/management/values$", re.I)
_FILTER = re.compile(r"eventTimestamp ge '(?P<ge>[^']+)'(?: and eventTimestamp le '(?P<le>[^']+)')?"
                     r"(?: and (?P<field>resourceGroupName|resourceUri|resourceProvider|correlationId) eq '(?P<value>[^']*)')?")
Answer = tuple[int, dict[str, Any], dict[str, str]]


def _error(code: str, message: str) -> Answer:
    return 400, {"error": {"code": code, "message": message}}, {}


def parse_filter(text: str | None) -> tuple[datetime, datetime | None, str | None, str | None]:
    """(since, until, field, value) of a documented $filter; ValueError for any other text."""
    match = _FILTER.fullmatch(text or "")
    if match is None:
        raise ValueError(f"$filter {text!r} is not one of the documented patterns")
    try:
        since = parse_time(match.group("ge"), "eventTimestamp ge")
        until = parse_time(match.group("le"), "eventTimestamp le") if match.group("le") else None
    except PermanentEventError as exc:
        raise ValueError(exc.message) from None
    return since, until, match.group("field"), match.group("value")


def _matches(event: Mapping[str, Any], field: str | None, value: str | None) -> bool:
    if field is None or value is None:
        return True
    if field == "resourceProvider":
        provider = event.get("resourceProviderName")
        return isinstance(provider, Mapping) and str(provider.get("value", "")).lower() == value.lower()
    if field == "resourceUri":
        return str(event.get("resourceId", "")).lower() == value.lower()
    return str(event.get(field, "")).lower() == value.lower()


def answer(events: list[dict[str, Any]], path: str, query: Mapping[str, str], endpoint: str, page_size: int) -> Answer:
    """One page of a subscription's events (`events`: that subscription's), or the error ARM would give."""
    if query.get("api-version") != API_VERSION:
        return _error("InvalidApiVersionParameter", f"The api-version '{query.get('api-version')}' is invalid. "
                      f"The supported versions are '{API_VERSION}'.")
    options = {name.lower(): value for name, value in query.items()}
    try:
        since, until, field, value = parse_filter(options.get("$filter"))
    except ValueError as exc:
        return _error("BadRequest", f"The $filter is invalid: {exc}.")
    try:
        offset = int(base64.urlsafe_b64decode(options["$skiptoken"]).decode()) if "$skiptoken" in options else 0
    except (ValueError, binascii.Error):
        return _error("BadRequest", "The $skipToken is invalid.")
    chosen = [event for event in events
              if since <= parse_time(event["eventTimestamp"], "eventTimestamp") and
              (until is None or parse_time(event["eventTimestamp"], "eventTimestamp") <= until) and _matches(event, field, value)]
    chosen.sort(key=lambda event: parse_time(event["eventTimestamp"], "eventTimestamp"), reverse=True)
    body: dict[str, Any] = {"value": chosen[offset:offset + page_size]}
    if offset + page_size < len(chosen):
        following = {name: item for name, item in query.items() if name.lower() != "$skiptoken"}
        following["$skipToken"] = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode()
        body["nextLink"] = f"{endpoint}{path}?{urlencode(following)}"
    return 200, body, {}


def event_data(subscription: str, resource_id: str, operation: str, status: str, *, time: str, correlation_id: str,
               caller: str, claims: Mapping[str, str], client_ip: str = "203.0.113.7", category: str = "Administrative",
               event_id: str = "", properties: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One EventData item as the REST API answers it (the shape of Microsoft's GetActivityLogsFiltered example)."""
    provider = resource_id.split("/providers/", 1)[-1].split("/", 1)[0] if "/providers/" in resource_id else ""
    group = resource_id.split("/resourceGroups/", 1)[-1].split("/", 1)[0] if "/resourceGroups/" in resource_id else ""
    event_id = event_id or f"{correlation_id}-{status.lower()}"
    return {
        "authorization": {"action": operation, "role": "Contributor", "scope": resource_id},
        "caller": caller,
        "claims": dict(claims),
        "category": {"value": category, "localizedValue": category},
        "correlationId": correlation_id,
        "description": "",
        "eventDataId": event_id,
        "eventName": {"value": "EndRequest" if status != "Started" else "BeginRequest", "localizedValue": "End request"},
        "httpRequest": {"clientRequestId": correlation_id, "clientIpAddress": client_ip, "method": "PUT"},
        "id": f"{resource_id}/events/{event_id}/ticks/1",
        "level": "Informational",
        "resourceGroupName": group,
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "resourceId": resource_id,
        "operationId": correlation_id,
        "operationName": {"value": operation, "localizedValue": operation},
        "properties": dict(properties or {"statusCode": "OK"}),
        "status": {"value": status, "localizedValue": status},
        "subStatus": {"value": "OK", "localizedValue": "OK (HTTP Status Code: 200)"},
        "eventTimestamp": time,
        "submissionTimestamp": time,
        "subscriptionId": subscription,
    }
