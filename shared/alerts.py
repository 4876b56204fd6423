"""Alert delivery: an outbox in Table Storage, flushed to an Event Grid custom topic.

Alerts are written to the outbox before the row change that raises them, so none is lost; a
flush that fails leaves them pending for the next sweep. Delivery is at least once, with ids that
are stable per transition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError

from .flags import Alert
from .identity import credential
from .keys import check_entity
from .model import SCHEMA_VERSION
from .repository import InventoryRepository

log = logging.getLogger("apim_inventory.alerts")
BATCH = 100  # well under Event Grid's 1 MB per request


class AlertPublisher(Protocol):
    def publish(self, alerts: list[Alert]) -> None:
        """Send the alerts, or raise."""


class LoggingAlertPublisher:
    """Used when no topic is configured: the alerts are only logged."""

    def publish(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.warning("alert %s %s %s %s", alert.type, alert.id, alert.subject, json.dumps(alert.data, sort_keys=True))


class EventGridAlertPublisher:
    """CloudEvents 1.0 to an Event Grid custom topic, through azure-eventgrid."""

    def __init__(self, endpoint: str, credential: Any) -> None:
        from azure.eventgrid import EventGridPublisherClient

        self._client = EventGridPublisherClient(endpoint, credential)

    def publish(self, alerts: list[Alert]) -> None:
        from azure.core.messaging import CloudEvent

        self._client.send([
            CloudEvent(source=a.source, type=a.type, subject=a.subject, data=a.data, id=a.id, time=a.time)
            for a in alerts
        ])


def publisher_from_env(env: Mapping[str, str]) -> AlertPublisher:
    endpoint = env.get("ALERTS_TOPIC_ENDPOINT", "").strip()
    if not endpoint:
        return LoggingAlertPublisher()
    key = env.get("ALERTS_TOPIC_KEY", "").strip()
    if key:
        from azure.core.credentials import AzureKeyCredential

        return EventGridAlertPublisher(endpoint, AzureKeyCredential(key))
    return EventGridAlertPublisher(endpoint, credential(env, "ALERTS_TOPIC"))


def outbox_entity(alert: Alert) -> dict[str, Any]:
    entity = {
        "PartitionKey": "pending", "RowKey": alert.id, "SchemaVersion": SCHEMA_VERSION, "AlertType": alert.type, "Source": alert.source,
        "Subject": alert.subject, "DetectedAt": alert.time, "Data": json.dumps(alert.data, sort_keys=True),
    }
    check_entity(entity)
    return entity


def alert_from_entity(entity: Mapping[str, Any]) -> Alert:
    return Alert(entity["RowKey"], entity["AlertType"], entity["Source"], entity["Subject"], entity["DetectedAt"],
                 json.loads(entity["Data"]))


@dataclass(frozen=True)
class FlushResult:
    sent: int
    pending: int


class AlertOutbox:
    def __init__(self, repo: InventoryRepository, publisher: AlertPublisher) -> None:
        self.repo = repo
        self.publisher = publisher

    def add(self, alerts: list[Alert]) -> None:
        self.repo.add_alerts([outbox_entity(a) for a in alerts])

    def flush(self, now: datetime) -> FlushResult:
        """Publish every pending alert; what fails stays pending for the next flush."""
        pending = self.repo.pending_alerts()
        sent = 0
        for start in range(0, len(pending), BATCH):
            batch = pending[start:start + BATCH]
            try:
                self.publisher.publish([alert_from_entity(e) for e in batch])
            except AzureError as exc:
                log.error("alert publish failed, %d alerts stay pending for the next sweep: %s", len(pending) - sent, exc)
                break
            self.repo.mark_alerts_sent(batch, now)
            sent += len(batch)
        return FlushResult(sent, len(pending) - sent)
