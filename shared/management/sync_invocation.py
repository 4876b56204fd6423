"""What one invocation of a full sync works with: the sync's report so far, and the invocation's lease, stamp and
limits, which the listing pass, the tombstone pass and the plan writer share (shared.management.sync runs them)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.domain.kinds import Kind
from shared.domain.model import Stamp
from shared.domain.outcomes import SyncOutcome, SyncStop
from shared.domain.resources import ServiceRef
from shared.management.checkpoint import Held
from shared.store.ports import InventoryRows, TableReader

Progress = Callable[[str, int, int | None], None]


@dataclass
class SyncReport:
    """A sync's counts so far (all its invocations) and how the last invocation ended."""

    service: str
    started_at: datetime
    listed: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # added, updated, tombstoned, unchanged, skipped
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    incomplete: dict[str, str] = field(default_factory=dict)  # kind -> why it was not listed completely
    finished: bool = False  # the sync ended in this invocation
    stopped: SyncStop | None = None  # why the invocation stopped before the sync's end
    retry_after: float | None = None  # for `throttled`: seconds ARM asked to wait
    invocations: int = 0
    kept: int = 0  # tombstone candidates ARM still had (skipped by a listing whose pages shifted)
    unconfirmed: int = 0  # tombstone candidates kept because ARM could not be read (neither gone nor unchanged)
    paused: float = 0.0  # seconds this invocation waited for ARM's read allowance to refill

    def count(self, kind: Kind, outcome: SyncOutcome) -> None:
        self.counts[outcome] += 1
        self.by_kind[kind][outcome] += 1


class SyncStore(TableReader, InventoryRows, Protocol):
    """What a sync reads: key ranges, and rows by resource (a workspace's row, whose deletion its rows inherit)."""


@dataclass
class Invocation:
    """One invocation of a sync: its lease on the checkpoint, the sync's stamp S, the report, and its limits."""

    held: Held
    service: ServiceRef
    stamp: Stamp
    report: SyncReport
    note: Progress
    out_of_time: Callable[[], bool]  # the invocation's time budget is spent
    pace: Callable[[], SyncStop | None]  # a pause as ARM's read allowance runs low, or why to stop
    clock: Callable[[], datetime]

    def renew(self) -> None:
        """Renew the lease before a write once half of it has passed (LeaseLost when another invocation took it)."""
        self.held.ensure(self.clock())

    def commit(self) -> None:
        """Save the checkpoint and renew the lease."""
        self.held.commit(self.clock())
