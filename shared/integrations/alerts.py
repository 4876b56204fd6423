"""Where alerts go: an Event Grid custom topic (CloudEvents 1.0), or only the log when no topic is
configured. Both publish a list of alerts or raise; the outbox (shared.store.outbox) calls them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from shared.domain.flags import Alert
from shared.integrations.identity import credential

log = logging.getLogger("apim_inventory.alerts")


class LoggingAlertPublisher:
    """Used when no topic is configured: the alerts are only logged."""

    destination = "log"  # shared.store.outbox.LOG: the sweep says AlertsLogged, the outbox's sent copies SentTo "log"

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


def publisher_from_env(env: Mapping[str, str]) -> LoggingAlertPublisher | EventGridAlertPublisher:
    """The topic of ALERTS_TOPIC_ENDPOINT (with ALERTS_TOPIC_KEY, or the identity), else the log."""
    endpoint = env.get("ALERTS_TOPIC_ENDPOINT", "").strip()
    if not endpoint:
        return LoggingAlertPublisher()
    key = env.get("ALERTS_TOPIC_KEY", "").strip()
    if key:
        from azure.core.credentials import AzureKeyCredential

        return EventGridAlertPublisher(endpoint, AzureKeyCredential(key))
    return EventGridAlertPublisher(endpoint, credential(env, "ALERTS_TOPIC"))
