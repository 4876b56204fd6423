"""Log lines that Application Insights can query: a stable prefix, a space, then one JSON object.

The Functions Python worker forwards each record's message text (not its `extra` fields) to the
`traces` table, so everything a query needs is in the message: `apim_inventory.event {...}` per event,
`apim_inventory.summary {...}` once per invocation or command run, `apim_inventory.purge {...}` per purge,
`apim_inventory.sync {...}` per full sync, `apim_inventory.usage {...}` per usage ingest run and per bad log line.
Lines are built lazily: the JSON is written only when a handler emits the record.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from shared.domain.errors import PermanentEventError
from shared.domain.outcomes import EVENT_OUTCOMES
from shared.domain.resources import parse_service_id
from shared.domain.times import json_time

EVENT = "apim_inventory.event"
SUMMARY = "apim_inventory.summary"
PURGE = "apim_inventory.purge"
SYNC = "apim_inventory.sync"
USAGE = "apim_inventory.usage"  # each usage ingest run, and each bad log line it meets
AUDIT = "apim_inventory.audit"  # each Activity Log ingest run

log = logging.getLogger("apim_inventory")


def _plain(value: object) -> str:
    """JSON's fallback for what it cannot write: a datetime as ISO 8601 Z, anything else as its str()."""
    return str(json_time(value))


class Line:
    """`prefix {json}`; str() renders it, so a record that no handler emits costs no JSON."""

    def __init__(self, prefix: str, fields: Mapping[str, Any]) -> None:
        self.prefix = prefix
        self.fields = {k: v for k, v in fields.items() if v is not None}

    def __str__(self) -> str:
        return f"{self.prefix} {json.dumps(self.fields, ensure_ascii=False, separators=(',', ':'), default=_plain)}"


def event_line(outcome: str, event_id: str | None, event_type: str | None, service: str | None, subject: str | None,
               **extra: Any) -> Line:
    """One event's outcome: applied, duplicate, stale or rejected (with `reason`)."""
    return Line(EVENT, {"outcome": outcome, "id": event_id, "type": event_type, "service": service, "subject": subject,
                        **extra})


class Tally(Counter[str]):
    """Counts that the worker's threads add to at once: `add` holds a lock, since `counts[key] += 1` is a read
    and a write that another thread can come between."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self[key] += n


def service_of(source: object) -> str | None:
    """The APIM service a topic/source names, or None."""
    try:
        return parse_service_id(source).name
    except PermanentEventError:
        return None


def summary_line(run: str, counts: Mapping[str, int], **extra: Any) -> Line:
    """Outcome counts of one invocation or run; all four outcomes are always present."""
    return Line(SUMMARY, {"run": run, "events": sum(counts.values()), **{o.value: counts.get(o, 0) for o in EVENT_OUTCOMES},
                          **{k: n for k, n in counts.items() if k not in EVENT_OUTCOMES}, **extra})


@contextmanager
def invocation(run: str) -> Iterator[Counter[str]]:
    """Count outcomes into the yielded Counter; one summary line is logged at the end, also when the
    invocation raises (then with `error`, the exception's type)."""
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    error: str | None = None
    try:
        yield counts
    except BaseException as exc:
        error = type(exc).__name__
        raise
    finally:
        log.info(summary_line(run, counts, error=error, ms=round((time.perf_counter() - started) * 1000)))
