"""The `reconcile` timer's work: retry pending enrichments, then one budgeted step of each configured service's sync."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from azure.core.exceptions import AzureError

from shared.domain.resources import ServiceRef
from shared.management.enrichment import Enricher
from shared.management.sync import InventorySync, SyncReport

log = logging.getLogger("apim_inventory.sync")


class Reconciler:
    """The `reconcile` timer's work: retry pending enrichments, then one invocation of each configured service's sync,
    which resumes the sync in progress (or starts one once SYNC_INTERVAL_HOURS have passed since the last began) and
    stops within its share of the time budget. A service whose sync fails does not stop the others; the failure is
    raised at the end."""

    def __init__(self, syncer: InventorySync | None, enricher: Enricher | None, services: tuple[ServiceRef, ...],
                 interval: timedelta = timedelta(0), timer: Callable[[], float] = time.monotonic) -> None:
        self.syncer = syncer
        self.enricher = enricher
        self.services = services
        self.interval = interval
        self._timer = timer

    def run(self) -> list[SyncReport]:
        begun = self._timer()
        if self.enricher is not None:
            retried = self.enricher.retry_pending()
            log.info("reconcile: pending enrichments %s", dict(retried) or "none")
        if self.syncer is None or not self.services:
            log.info("reconcile: no services to sync (RECONCILE_SERVICES is empty)")
            return []
        reports, failures = [], []
        for n, service in enumerate(self.services):
            left = self.syncer.budget - (self._timer() - begun)
            try:  # the services share the budget: each gets its share of what is left
                report = self.syncer.step(service, budget=max(0.0, left / (len(self.services) - n)), interval=self.interval)
            except AzureError as exc:
                failures.append(f"{service.name}: {exc}")
                log.error("reconcile: sync of %s failed: %s", service.name, exc)
                continue
            reports.append(report)
            if report.finished and report.incomplete:
                failures.append(f"{service.name}: not listed completely: {', '.join(sorted(report.incomplete))}")
        if failures:
            raise SyncFailed("; ".join(failures))
        return reports


class SyncFailed(Exception):
    pass
