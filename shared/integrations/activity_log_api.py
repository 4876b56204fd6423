"""The Activity Log's REST API (`Microsoft.Insights/eventtypes/management/values`, api-version 2015-04-01), read through
the lean ARM client (its credential, retries, Retry-After and nextLink checks), and the conversion of its `EventData`
items into the records a diagnostic setting exports, the one form the audit-record writer takes.

Microsoft's $filter grammar for this API is fixed ("The $filter argument is very restricted and allows only the
following patterns"): `eventTimestamp ge 'T1' and eventTimestamp le 'T2'`, optionally followed by one of
`resourceGroupName`, `resourceUri`, `resourceProvider` or `correlationId` `eq '…'` (azure-rest-api-specs,
specification/monitor/…/stable/2015-04-01/activityLogs_API.json). Microsoft keeps 90 days.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.integrations.arm import ArmClient

API_VERSION = "2015-04-01"
PROVIDER = "Microsoft.ApiManagement"
KEPT = timedelta(days=90)  # how far back the Activity Log answers
FILTER_FIELDS = ("resourceGroupName", "resourceUri", "resourceProvider", "correlationId")
# EventData's status.value -> the exported record's resultType (the archive writes Start, Success, Failure).
RESULT_TYPES = {"started": "Start", "succeeded": "Success", "failed": "Failure"}


def odata_time(value: datetime) -> str:
    """A UTC time as the filter's examples write it (`2014-07-16T04:36:37.6407898Z`; here to the microsecond)."""
    if value.tzinfo is None:
        raise ValueError("an Activity Log time must be timezone-aware")
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{text}Z"


def activity_filter(since: datetime, until: datetime, provider: str = PROVIDER) -> str:
    """The documented pattern "List events for a resource provider", both ends included."""
    if "'" in provider:
        raise ValueError(f"a resource provider name has no quote: {provider!r}")
    return f"eventTimestamp ge '{odata_time(since)}' and eventTimestamp le '{odata_time(until)}' and resourceProvider eq '{provider}'"


def events_path(subscription: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values"


class ActivityLogApi:
    """One subscription's Activity Log events of one resource provider, page by page."""

    def __init__(self, arm: ArmClient, provider: str = PROVIDER) -> None:
        self._arm = arm
        self._provider = provider

    def pages(self, subscription: str, since: datetime, until: datetime) -> Iterator[list[dict[str, Any]]]:
        """Each page's EventData items, following nextLink (which the client keeps on ARM's host). Raises ArmError,
        ArmThrottled (a Retry-After beyond the client's limit), ArmUnreachable or ArmCredentialError."""
        url: str | None = self._arm.url(events_path(subscription), api_version=API_VERSION,
                                        query={"$filter": activity_filter(since, until, self._provider)})
        while url:
            items, url = self._arm.page(url)
            yield items

    def close(self) -> None:
        self._arm.close()


def _value(field: Any) -> Any:
    """A LocalizableString's invariant `value`; anything else as given."""
    return field.get("value") if isinstance(field, Mapping) else field


def to_exported(item: Mapping[str, Any]) -> dict[str, Any]:
    """One REST EventData item as the record a diagnostic setting exports (azure-monitor-docs, activity-log-schema.md), the
    audit-record writer's input. Fields the item lacks are left out, never invented: the writer judges what is missing."""
    record: dict[str, Any] = {}
    copied = {"time": item.get("eventTimestamp"), "resourceId": item.get("resourceId"), "operationName": _value(item.get("operationName")),
              "category": _value(item.get("category")), "correlationId": item.get("correlationId"), "caller": item.get("caller"),
              "properties": item.get("properties"), "level": item.get("level")}
    status = _value(item.get("status"))
    if isinstance(status, str):
        copied["resultType"] = RESULT_TYPES.get(status.lower(), status)
    request = item.get("httpRequest")
    if isinstance(request, Mapping):
        copied["callerIpAddress"] = request.get("clientIpAddress")
    record.update((key, value) for key, value in copied.items() if value is not None)
    identity = {key: item[source] for key, source in (("claims", "claims"), ("authorization", "authorization")) if item.get(source) is not None}
    if identity:
        record["identity"] = identity
    return record
