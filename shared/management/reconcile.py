"""The `reconcile` timer's work: retry pending enrichments, then a full sync of each configured service."""

from __future__ import annotations

import logging

from azure.core.exceptions import AzureError

from shared.domain.resources import ServiceRef
from shared.management.enrichment import Enricher
from shared.management.sync import InventorySync, SyncReport

log = logging.getLogger("apim_inventory.sync")


class Reconciler:
    """The `reconcile` timer's work: retry pending enrichments, then a full sync of each configured
    service. A service whose sync fails does not stop the others; the failure is raised at the end."""

    def __init__(self, syncer: InventorySync | None, enricher: Enricher | None, services: tuple[ServiceRef, ...]) -> None:
        self.syncer = syncer
        self.enricher = enricher
        self.services = services

    def run(self) -> list[SyncReport]:
        if self.enricher is not None:
            retried = self.enricher.retry_pending()
            log.info("reconcile: pending enrichments %s", dict(retried) or "none")
        if self.syncer is None or not self.services:
            log.info("reconcile: no services to sync (RECONCILE_SERVICES is empty)")
            return []
        reports, failures = [], []
        for service in self.services:
            try:
                report = self.syncer.sync(service)
            except AzureError as exc:
                failures.append(f"{service.name}: {exc}")
                log.error("reconcile: sync of %s failed: %s", service.name, exc)
                continue
            reports.append(report)
            if report.incomplete:
                failures.append(f"{service.name}: not listed completely: {', '.join(sorted(report.incomplete))}")
        if failures:
            raise SyncFailed("; ".join(failures))
        return reports


class SyncFailed(Exception):
    pass
