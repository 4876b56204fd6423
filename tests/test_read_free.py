"""A first sync writes kinds without a parent with no reads first; whether a collection may is asked once, as its
listing begins, and kept in the checkpoint: asked on every invocation, it read every row written so far each time."""

from __future__ import annotations

from dataclasses import replace

from bench.sync_check_cost import CountingChecks
from devtools.arm_standin import ArmStandIn
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from tests.support import SERVICE_ID, ManualClock, inventory_rows
from tests.test_sync import LISTED

READ_FREE_COLLECTIONS = 5  # users, products, subscriptions, gateways, backends


def test_the_read_free_check_runs_once_per_collection_however_many_invocations(
        arm: ArmStandIn, arm_settings: Settings, clock: ManualClock) -> None:
    store = CountingChecks()
    store.create_tables()
    settings = replace(arm_settings, enrich_from_arm=False, sync_time_budget_seconds=1e-9)  # one page an invocation
    services = bootstrap.wire(store, settings, LoggingAlertPublisher(), clock.now, bootstrap.arm_client(settings))
    assert services.reconciler.syncer is not None
    while not (report := services.reconciler.syncer.step(parse_service_id(SERVICE_ID))).finished:
        clock.advance(minutes=1)
    assert report.invocations > 2 * READ_FREE_COLLECTIONS  # users alone take two (pages of one)
    assert store.checks == READ_FREE_COLLECTIONS and store.read == 0
    assert len(inventory_rows(store)) == sum(LISTED.values())
