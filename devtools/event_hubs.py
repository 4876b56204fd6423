"""Deliver Event Hubs batches to the function app the way the Functions host and the Python worker do: the bodies as
a `collection_bytes` datum and the binding metadata the host sends with `cardinality` many (`SystemPropertiesArray`
with one entry per body, `PartitionContext` with the partition id), decoded by the `azure-functions` library's own
Event Hub converter, then the indexed function called with the list it returns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter

from devtools.worker import indexed_function

START = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Sent:
    """One event as it sits in a partition: its sequence number and body."""

    sequence: int
    body: bytes


def envelope(records: Sequence[dict[str, Any]]) -> bytes:
    """The body Azure Monitor streams: `{"records": [...]}`."""
    return json.dumps({"records": list(records)}, separators=(",", ":")).encode()


def decode_batch(events: Sequence[Sent], hub: str = "insights-logs-gatewaylogs", partition: str = "0",
                 consumer_group: str = "$Default") -> list[func.EventHubEvent]:
    """The list the worker passes to a `cardinality` many function for one delivery of `events`."""
    data = meta.Datum(SimpleNamespace(bytes=[e.body for e in events]), "collection_bytes")
    properties = [{"SequenceNumber": e.sequence, "Offset": str(1000 * e.sequence), "PartitionKey": None,
                   "EnqueuedTimeUtc": (START + timedelta(milliseconds=e.sequence)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")} for e in events]
    metadata = {"SystemPropertiesArray": meta.Datum(json.dumps(properties), "json"),
                "PartitionContext": meta.Datum(json.dumps({"EventHubName": hub, "ConsumerGroup": consumer_group, "PartitionId": partition}), "json"),
                "SequenceNumberArray": meta.Datum(json.dumps([e.sequence for e in events]), "json")}
    decoded = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(decoded, list), "the converter builds a list for a batch"
    return decoded


def deliver_batch(function_name: str, events: Sequence[Sent], **where: str) -> None:
    """Decode one delivery and call the indexed function with it; exceptions propagate, as a failed call would."""
    indexed_function(function_name)(decode_batch(events, **where))
