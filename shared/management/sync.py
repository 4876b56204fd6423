"""A full sync of one APIM service from ARM, in invocations that each stop within a time budget.

Every write of a sync carries the time its listing started, S, as event time, so the merge rules order it against
events exactly as they order events (shared.management.plan_writer). An invocation takes the lease on the service's
checkpoint (shared.management.checkpoint) and goes on from where the last one stopped, through the phases:
- listing (shared.management.listing_pass): the collections of the listing plan (shared.management.listing_plan),
  the service's and its workspaces', page by page, each page reconciled as it comes;
- tombstones (shared.management.tombstone_pass): the stored rows no page saw, tombstoned once ARM confirms them gone,
  and a deleted workspace's deletion carried to every row in it;
- cleanup: the listing's scratch entities deleted, and the sync recorded on the service's status row.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from azure.core.exceptions import ClientAuthenticationError

from shared.domain.model import Stamp
from shared.domain.outcomes import SyncStop
from shared.domain.resources import ServiceRef
from shared.integrations.arm import ArmClient, ArmThrottled
from shared.logs import SYNC, Line
from shared.management.checkpoint import CLEANUP, DONE, LEASE, LISTING, TOMBSTONES, LeaseLost, acquire
from shared.management.listing_pass import ListingPass
from shared.management.plan_writer import PlanWriter
from shared.management.sync_invocation import Invocation, Progress, SyncReport, SyncStore
from shared.management.tombstone_pass import TombstonePass
from shared.store.keys import seen_pages
from shared.store.outbox import AlertOutbox
from shared.store.ports import SyncRecords, Table, TableDeleter
from shared.store.status import StatusTracker
from shared.store.writer import RowWriter

__all__ = ["BUDGET_SECONDS", "READS_RESERVE", "InventorySync", "SyncReport", "SyncStore"]

log = logging.getLogger("apim_inventory.sync")
BUDGET_SECONDS = 480.0
READS_RESERVE = 100
READ_REFILL_PER_SECOND = 25.0  # ARM's documented refill of a principal's read bucket


class InventorySync:
    def __init__(self, arm: ArmClient, reader: SyncStore, writer: RowWriter, outbox: AlertOutbox,
                 clock: Callable[[], datetime], *, records: SyncRecords, deleter: TableDeleter, transactions: bool = True,
                 status: StatusTracker | None = None, budget: float = BUDGET_SECONDS, reads_reserve: int = READS_RESERVE,
                 lease: timedelta = LEASE, timer: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._outbox = outbox
        self.clock = clock
        self.transactions = transactions
        self.status = status  # the service's status row records each sync, for GET /api/health
        self._records = records
        self._deleter = deleter
        self.budget = budget  # seconds of one invocation; at least one page is listed whatever it is
        self.reads_reserve = reads_reserve
        self.lease = lease
        self._timer = timer
        self.sleep = sleep

    def sync(self, service: ServiceRef, progress: Progress | None = None) -> SyncReport:
        """The whole sync, invocation after invocation (the command): waits out ARM's throttling between them."""
        while True:
            report = self.step(service, progress)
            if report.finished or report.stopped in (SyncStop.BUSY, SyncStop.LEASE_LOST):
                return report
            if report.stopped == SyncStop.THROTTLED:
                self.sleep(min(report.retry_after or 1.0, 300.0))

    def step(self, service: ServiceRef, progress: Progress | None = None, *, budget: float | None = None,
             interval: timedelta | None = None) -> SyncReport:
        """One invocation (the timer's): resume the sync in progress or start one, and stop within the budget."""
        note = progress or (lambda phase, done, total: None)
        begun, limit = self._timer(), self.budget if budget is None else budget
        if self.status is not None:  # a sync that lists nothing still makes the service known (summary, changes, purge)
            self.status.ensure(service.key, service.name)
        held = acquire(self._records, service, self.clock(), interval=interval, duration=self.lease)
        if isinstance(held, SyncStop):
            log.info("sync %s: %s", service.name, "another invocation holds the lease" if held == SyncStop.BUSY else "not due yet")
            return SyncReport(service.name, self.clock(), stopped=held)
        cp = held.checkpoint
        report = SyncReport(service.name, cp.started_at, cp.listed, Counter(), cp.by_kind, cp.incomplete,
                            invocations=cp.invocations, kept=cp.kept, unconfirmed=cp.unconfirmed)
        for outcomes in cp.by_kind.values():
            report.counts.update(outcomes)
        stamp = Stamp(cp.started_at, f"sync:{cp.started_at.isoformat()}")
        run = Invocation(held, service, stamp, report, note, lambda: self._timer() - begun >= limit,
                         lambda: self._pace(report), self.clock)
        plans = PlanWriter(self._writer, self.clock, transactions=self.transactions)
        try:
            stop = ListingPass(self.arm, self._reader, self._writer, plans, self._records).run(run) if cp.phase == LISTING else None
            stop = stop or (TombstonePass(self.arm, self._reader, self._writer, plans).run(run) if cp.phase == TOMBSTONES else None)
            if stop is None and cp.phase == CLEANUP:
                self._cleanup(run)
        except ArmThrottled as exc:
            stop, report.retry_after = SyncStop.THROTTLED, exc.retry_after
        except LeaseLost as exc:
            log.warning("sync %s: stopped writing: %s", service.name, exc)
            report.stopped = SyncStop.LEASE_LOST
            self._outbox.flush(self.clock())
            return report
        except ClientAuthenticationError:
            held.release(self.clock())
            raise
        self._outbox.flush(self.clock())
        report.stopped, report.finished, report.kept, report.unconfirmed = stop, cp.phase == DONE, cp.kept, cp.unconfirmed
        if stop is not None:
            held.release(self.clock())
            log.info("sync %s: invocation %d stopped (%s) in phase %s; the next one resumes", service.name,
                     cp.invocations, stop, cp.phase)
        return report

    def _pace(self, report: SyncReport) -> SyncStop | None:
        """Slow down as ARM's read allowance runs low (its bucket refills at a documented rate); stop near empty."""
        remaining = self.arm.remaining_reads
        if remaining is None or remaining >= self.reads_reserve:
            return None
        if remaining <= self.reads_reserve // 10:
            report.retry_after = self.reads_reserve / READ_REFILL_PER_SECOND
            return SyncStop.THROTTLED
        pause = (self.reads_reserve - remaining) / READ_REFILL_PER_SECOND
        self.sleep(pause)
        report.paused += pause
        return None

    def _cleanup(self, run: Invocation) -> None:
        cp, service = run.held.checkpoint, run.service
        scratch = [row for page in self._reader.scan(seen_pages(service.key), select=("PartitionKey", "RowKey")) for row in page]
        run.renew()
        self._deleter.delete_rows(Table.STATUS, scratch)
        cp.phase, cp.completed_at, cp.next_link, cp.after = DONE, self.clock(), None, None
        run.held.release(self.clock())
        if self.status is not None:
            self.status.note_sync(service.key, service.name, cp.started_at, not cp.incomplete, self.clock())
        report = run.report
        log.info(Line(SYNC, {"service": service.name, "startedAt": cp.started_at, "listed": report.listed, **report.counts,
                             "incomplete": sorted(report.incomplete), "invocations": cp.invocations, "kept": cp.kept,
                             "unconfirmed": cp.unconfirmed}))
