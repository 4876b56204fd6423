"""One row's read-compute-write under optimistic concurrency, shared by the event pipeline and
the sweeps. Every write brings the row's flags up to now, and the alerts of any flag transition
go into the outbox before the row is written, so a crash between the two loses no alert."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain.errors import ConflictRetriesExhausted, WriteConflict
from shared.domain.flags import FlagPolicy, evaluate, transitions
from shared.domain.model import same_row
from shared.store.outbox import AlertOutbox
from shared.store.ports import InventoryRepository, StoredRow

Loaded = tuple[StoredRow | None, StoredRow | None]
Compute = Callable[[StoredRow | None, StoredRow | None], dict[str, Any] | None]  # None: leave the row as it is


class RowWriter:
    def __init__(self, repo: InventoryRepository, outbox: AlertOutbox, policy: FlagPolicy,
                 clock: Callable[[], datetime], conflict_retries: int = 10) -> None:
        self.repo = repo
        self.outbox = outbox
        self.policy = policy
        self.clock = clock
        self.conflict_retries = conflict_retries
        self.alerts_raised = 0  # by every thread since start; read it, the writer keeps it
        self._counting = threading.Lock()
        self._this_thread = threading.local()

    def raised_here(self) -> int:
        """Alerts raised so far by the calling thread. An invocation runs on one of the worker's threads from start
        to end, so comparing this before and after tells whether it raised any; the shared total cannot."""
        count: int = getattr(self._this_thread, "raised", 0)
        return count

    def write(self, pk: str, rk: str, parent_rk: str | None, compute: Compute, loaded: Loaded | None = None) -> bool:
        """`compute(row, parent)` gives the new row. `loaded` is what the caller already read, so the
        first attempt reads nothing. True when the row changed."""
        for attempt in range(self.conflict_retries):
            row, parent = loaded if attempt == 0 and loaded else self.repo.load(pk, rk, parent_rk, fresh=attempt > 0)
            computed = compute(row, parent)
            new = self.prepare(row, computed) if computed is not None else None
            if new is None:
                return False
            try:
                self.repo.save(new, row.etag if row else None)
                return True
            except WriteConflict:
                continue
        raise ConflictRetriesExhausted(f"{pk}/{rk}: {self.conflict_retries} write conflicts in a row")

    def prepare(self, row: StoredRow | None, computed: dict[str, Any]) -> dict[str, Any] | None:
        """The entity to write, with its flags brought up to the clock and the alerts of any flag
        transition in the outbox; None when the row would not change."""
        now = self.clock()
        new = evaluate(computed, now, self.policy)
        if row is not None and same_row(row.entity, new):
            return None
        alerts = transitions(row.entity if row else None, new, now)
        if alerts:
            self.outbox.add(alerts)
            with self._counting:
                self.alerts_raised += len(alerts)
            self._this_thread.raised = self.raised_here() + len(alerts)
        return new
