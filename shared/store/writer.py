"""Where an inventory row is written: one row's read-compute-write under optimistic concurrency, for events,
sweeps, enrichment and sync alike. Every write brings the row's flags up to now, and the alerts of any flag
transition go into the outbox before the row is written, so a crash between the two loses no alert."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import ConflictRetriesExhausted, WriteConflict
from shared.domain.flags import Alert, FlagPolicy, evaluate, transitions
from shared.domain.model import Change, apply_changes, same_row
from shared.domain.resources import ResourceRef
from shared.store.keys import with_keys
from shared.store.outbox import AlertOutbox
from shared.store.ports import Entity, InventoryRows, Loaded, StoredRow

Compute = Callable[[StoredRow | None, StoredRow | None], Entity | None]  # None: leave the row as it is


@dataclass(frozen=True)
class Applied:
    """What one `apply` did: whether the row changed, the row it started from and what it computed (on the
    attempt that counted), and the alerts it put in the outbox."""

    changed: bool
    before: Entity | None
    computed: Entity | None
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True)
class Prepared:
    entity: Entity
    alerts: tuple[Alert, ...]


class RowWriter:
    def __init__(self, rows: InventoryRows, outbox: AlertOutbox, policy: FlagPolicy,
                 clock: Callable[[], datetime], conflict_retries: int = 10) -> None:
        self._rows = rows
        self._outbox = outbox
        self._policy = policy
        self._clock = clock
        self._conflict_retries = conflict_retries
        self.alerts_raised = 0  # by every thread since start, for the record; no decision reads it
        self._counting = threading.Lock()

    def apply(self, ref: ResourceRef, changes: Sequence[Change] | Compute, loaded: Loaded | None = None) -> Applied:
        """Merge `changes` into the resource's row (or give the new row by `compute(row, parent)`). `loaded` is what
        the caller already read, so the first attempt reads nothing. A 412/409 reloads and computes again."""
        compute = changes if callable(changes) else _merging(list(changes))
        alerts: list[Alert] = []
        for attempt in range(self._conflict_retries):
            row, parent = loaded if attempt == 0 and loaded else self._rows.load(ref, fresh=attempt > 0)
            computed = compute(row, parent)
            prepared = self.prepare(ref, row, computed) if computed is not None else None
            if prepared is None:
                return Applied(False, row.entity if row else None, computed, tuple(alerts))
            alerts += prepared.alerts
            try:
                self._rows.save(prepared.entity, row.etag if row else None)
                return Applied(True, row.entity if row else None, computed, tuple(alerts))
            except WriteConflict:
                continue
        raise ConflictRetriesExhausted(f"{ref.service.name}/{ref.path}: {self._conflict_retries} write conflicts in a row")

    def prepare(self, ref: ResourceRef, row: StoredRow | None, computed: Entity) -> Prepared | None:
        """The entity to write under the resource's keys, with its flags brought up to the clock and the alerts of
        any flag transition in the outbox; None when the row would not change."""
        now = self._clock()
        new = evaluate(with_keys(ref, computed), now, self._policy)
        if row is not None and same_row(row.entity, new):
            return None
        alerts = tuple(transitions(row.entity if row else None, new, now))
        if alerts:
            self._outbox.add(list(alerts))
            with self._counting:
                self.alerts_raised += len(alerts)
        return Prepared(new, alerts)

    def save_batch(self, items: list[tuple[Entity, str | None]]) -> None:
        """Rows `prepare` gave, of one partition, in one transaction (a sync's). Raises WriteConflict: the caller
        then applies them one by one."""
        self._rows.save_batch(items)


def _merging(changes: list[Change]) -> Compute:
    def compute(row: StoredRow | None, parent: StoredRow | None) -> Entity:
        return apply_changes(row.entity if row else None, changes, parent.entity if parent else None)
    return compute
