"""The Event Hubs triggers' input, as the reader of a partition takes it: which partition of which hub, and each
event's sequence number and body (`func.EventHubEvent` as the library's converter builds it for `cardinality` many)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import azure.functions as func

from shared.domain.errors import PermanentEventError
from shared.logread.partitions import StreamEvent


def partition_of(events: Sequence[func.EventHubEvent], namespace: str = "") -> tuple[str, str]:
    """(hub, partition id): the hub named by its namespace, its name and the consumer group, since two consumer
    groups (or two namespaces) read the same partition independently."""
    context: Any = events[0].metadata.get("PartitionContext") if events and events[0].metadata else None
    if not isinstance(context, dict) or "PartitionId" not in context:
        raise PermanentEventError("no-partition", "the batch's binding data has no PartitionContext with a PartitionId")
    hub = "/".join(part for part in (namespace, str(context.get("EventHubName", "")), str(context.get("ConsumerGroup", ""))) if part)
    return hub, str(context["PartitionId"])


def stream_events(events: Sequence[func.EventHubEvent]) -> list[StreamEvent]:
    taken = []
    for at, event in enumerate(events):
        if event.sequence_number is None:
            raise PermanentEventError("no-sequence-number", f"event {at} of the batch has no SequenceNumber in its binding data")
        taken.append(StreamEvent(int(event.sequence_number), event.get_body(), event.enqueued_time))
    return taken


class PartitionTaker(Protocol):
    def take(self, hub: str, partition: str, events: Sequence[StreamEvent]) -> object: ...


def take(events: Sequence[func.EventHubEvent], stream: PartitionTaker, namespace: str) -> None:
    """One call of a stream function (either log): raises on a storage failure, so the retry policy delivers it again."""
    if events:
        stream.take(*partition_of(events, namespace), stream_events(events))
