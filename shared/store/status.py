"""Per-service status rows: when each APIM service last sent an event and last changed the inventory.

The event path must not pay a write per event, so each process keeps the maxima in memory and writes
a service's row at most once per `interval` (a minute), on the first event after the interval has
passed. The row holds maxima, written with If-Match (or insert-if-absent): a writer that lost a race
rereads and merges, so concurrent processes never move a column backwards.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError

from shared.domain.errors import ConflictRetriesExhausted, WriteConflict
from shared.domain.model import SCHEMA_VERSION
from shared.domain.outcomes import SEEN, Outcome
from shared.store.ports import Entity, StatusRows, StoredRow

log = logging.getLogger("apim_inventory.status")
INTERVAL = timedelta(minutes=1)


def raise_to(values: dict[str, Any], column: str, value: datetime) -> bool:
    """values[column] = value when value is newer (or there was none); True when it changed."""
    if values.get(column) is not None and values[column] >= value:
        return False
    values[column] = value
    return True


def merged(stored: Entity, values: dict[str, datetime]) -> Entity:
    """The stored row with each column raised to the newer of the two values."""
    row = dict(stored)
    for column, value in values.items():
        raise_to(row, column, value)
    return row


@dataclass
class _Service:
    name: str
    values: dict[str, datetime] = field(default_factory=dict)
    dirty: bool = False
    written_at: datetime | None = None
    stored: StoredRow | None = None  # the row as this process last read or wrote it
    known: bool = False  # `stored` reflects the table (None: no row), so the first attempt needs no read
    present: bool = False  # the row is known to exist (`ensure`)


class StatusTracker:
    def __init__(self, rows: StatusRows, interval: timedelta = INTERVAL, conflict_retries: int = 10) -> None:
        self._rows = rows
        self.interval = interval
        self.conflict_retries = conflict_retries
        self._services: dict[str, _Service] = {}
        self._lock = threading.Lock()

    def ensure(self, service_key: str, service: str) -> None:
        """The service's status row exists: inserted (with no times yet) the first time this process writes for the
        service, before its first partition commit, so `summary`, `changes` and the purge, which find services
        through these rows, never miss one whose later status write failed. One request per service per process;
        a storage failure raises (nothing of the caller's write has happened yet, so its source delivers again)."""
        with self._lock:
            entry = self._services.setdefault(service_key, _Service(service))
            if entry.present:
                return
        try:
            stored: StoredRow | None = self._rows.save_status(service_key, {"SchemaVersion": SCHEMA_VERSION, "Service": service}, None)
        except WriteConflict:  # there already: this process has not read it, so the next write reads first
            stored = None
        with self._lock:
            entry.present = True
            if stored is not None and not entry.known:
                entry.stored, entry.known = stored, True

    def note(self, service_key: str, service: str, outcome: str, event_time: datetime, now: datetime) -> None:
        """Record one event; write the rows that are due (at most one per service per interval)."""
        if outcome not in SEEN:
            return
        with self._lock:
            entry = self._services.setdefault(service_key, _Service(service))
            for column, value in (("LastEventTime", event_time), ("LastReceivedAt", now),
                                  *((("LastAppliedAt", now),) if outcome == Outcome.APPLIED else ())):
                entry.dirty = raise_to(entry.values, column, value) or entry.dirty
            due = self._claim(now, force=False)
        self._write(due)

    def note_sync(self, service_key: str, service: str, started: datetime, complete: bool, now: datetime) -> int:
        """Record a full sync (its listing's start) and write the row now: syncs are rare."""
        with self._lock:
            entry = self._services.setdefault(service_key, _Service(service))
            for column in ("LastSyncAt", *(("LastCompleteSyncAt",) if complete else ())):
                entry.dirty = raise_to(entry.values, column, started) or entry.dirty
        return self.flush(now)

    def flush(self, now: datetime) -> int:
        """Write every row with unwritten values now, whatever the interval (end of a replay, tests)."""
        with self._lock:
            due = self._claim(now, force=True)
        return self._write(due)

    def _claim(self, now: datetime, force: bool) -> list[tuple[str, _Service, dict[str, datetime]]]:
        due = []
        for key, entry in self._services.items():
            if entry.dirty and (force or entry.written_at is None or now - entry.written_at >= self.interval):
                entry.dirty, entry.written_at = False, now
                due.append((key, entry, dict(entry.values)))
        return due

    def _write(self, due: list[tuple[str, _Service, dict[str, datetime]]]) -> int:
        written = 0
        for key, entry, values in due:
            try:
                entry.stored = self._save(key, entry, values)
                entry.known = entry.present = True
                written += 1
            except (AzureError, ConflictRetriesExhausted) as exc:  # never fail an event that was applied
                with self._lock:
                    entry.dirty, entry.known = True, False
                log.warning("status row of %s not written, will retry: %s", entry.name, exc)
        return written

    def _save(self, key: str, entry: _Service, values: dict[str, datetime]) -> StoredRow:
        for attempt in range(self.conflict_retries):
            stored = entry.stored if attempt == 0 and entry.known else self._rows.load_status(key)
            new = {"SchemaVersion": SCHEMA_VERSION, "Service": entry.name}
            row = merged(stored.entity if stored else new, values)
            if stored is not None and row == stored.entity:
                return stored  # the table already holds these values or newer ones
            try:
                return self._rows.save_status(key, row, stored.etag if stored else None)
            except WriteConflict:
                continue
        raise ConflictRetriesExhausted(f"status row of {entry.name}: {self.conflict_retries} write conflicts in a row")
