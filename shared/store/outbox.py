"""Alert delivery: an outbox in Table Storage, flushed to a publisher (shared.integrations.alerts: an
Event Grid custom topic, or the log).

Alerts are written to the outbox before the row change that raises them, so none is lost; a
flush that fails leaves them pending for the next sweep. Delivery is at least once, with ids that
are stable per transition. Within a process one flush runs at a time (the worker's threads share the outbox),
so two invocations never send the same pending alerts at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from azure.core.exceptions import AzureError

from shared.domain.flags import Alert
from shared.store.ports import AlertQueue

log = logging.getLogger("apim_inventory.alerts")
BATCH = 100  # well under Event Grid's 1 MB per request


TOPIC, LOG = "topic", "log"  # where published alerts went


class AlertPublisher(Protocol):
    def publish(self, alerts: list[Alert]) -> None:
        """Send the alerts, or raise."""


def destination(publisher: AlertPublisher) -> str:
    """Where a publisher's alerts go: its `destination` attribute, "log" for one that only logs them; else a topic."""
    return str(getattr(publisher, "destination", TOPIC))


@dataclass(frozen=True)
class FlushResult:
    sent: int  # published: to the topic, or to the log only (`sent_to`)
    pending: int
    sent_to: str = TOPIC


class AlertOutbox:
    def __init__(self, queue: AlertQueue, publisher: AlertPublisher) -> None:
        self._queue = queue
        self.publisher = publisher
        self._turn = threading.Condition()  # guards the three below, never held while sending
        self._flushing = False
        self._calls = 0  # flush calls so far; each call's number is its ticket
        self._covered = 0  # every ticket up to this one was served by a flush that started after it was taken
        self._last = FlushResult(0, 0, destination(publisher))

    def add(self, alerts: list[Alert]) -> None:
        self._queue.add_alerts(alerts)

    def flush(self, now: datetime) -> FlushResult:
        """Publish every pending alert; what fails stays pending for the next flush. One flush runs at a time; a
        call that comes during one waits, then returns the result of a flush that started after it was called
        (so its caller's alerts were read), running that flush itself when no other waiter has."""
        with self._turn:
            self._calls += 1
            ticket = self._calls
            while self._flushing:
                self._turn.wait()
            if self._covered >= ticket:
                return self._last
            self._flushing, serves = True, self._calls
        result: FlushResult | None = None
        try:
            result = self._send_pending(now)
            return result
        finally:
            with self._turn:
                self._flushing = False
                if result is not None:  # a flush that raised served no one: the waiters try themselves
                    self._covered, self._last = serves, result
                self._turn.notify_all()

    def _send_pending(self, now: datetime) -> FlushResult:
        pending = self._queue.pending_alerts()
        sent, sent_to = 0, destination(self.publisher)
        for start in range(0, len(pending), BATCH):
            batch = pending[start:start + BATCH]
            try:
                self.publisher.publish(batch)
            except AzureError as exc:
                log.error("alert publish failed, %d alerts stay pending for the next sweep: %s", len(pending) - sent, exc)
                break
            self._queue.mark_alerts_sent(batch, now, sent_to)
            sent += len(batch)
        return FlushResult(sent, len(pending) - sent, sent_to)
