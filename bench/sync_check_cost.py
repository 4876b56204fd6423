"""What a first sync's read-free check costs: "does the family hold a row that is not this sync's?", a filter on a
non-key column (`LastEventTime ne S`) over the family's key range. Table Storage answers such a filter by reading the
range's entities until one matches, and on a first sync none matches, so each check reads every row the sync has
written so far (returning none: a continuation at each partition boundary and after five seconds of execution,
https://learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination). Measured on the twin, over
budgeted invocations of one page each (pages of 100, as ARM pages): the checks made and the entities they read."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.arm_standin import ArmStandIn
from devtools.management_plane import put_large_service
from shared import bootstrap
from shared.config import Settings
from shared.domain.resources import parse_service_id
from shared.integrations.alerts import LoggingAlertPublisher
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, Query, Token

SERVICE = "/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
SIZES = tuple(int(n) for n in os.environ.get("BENCH_CHECK_USERS", "1000,4000").split(","))
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class CountingChecks(InMemoryStore):
    """The twin, counting the filtered reads of the check and the entities their key range holds."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = self.read = 0

    def page(self, query: Query, top: int | None, continuation: Token | None = None) -> tuple[list[Entity], Token | None]:
        if any(c.column == "LastEventTime" and c.op == "ne" for c in query.conditions):
            in_range = len(super().page(Query(query.table, query.low_pk, query.high_pk, high_rk=query.high_rk), None)[0])
            self.checks += 1
            self.read += in_range
        return super().page(query, top, continuation)


def measure(users: int) -> dict[str, Any]:
    with ArmStandIn(page_size=100) as arm:
        put_large_service(arm, SERVICE, users, 2, 1, users // 4)
        os.environ.update(arm.identity_env())
        settings = Settings(arm_endpoint=arm.endpoint, enrich_from_arm=False, sync_time_budget_seconds=1e-9)
        store = CountingChecks()
        store.create_tables()
        moment = [NOW]
        services = bootstrap.wire(store, settings, LoggingAlertPublisher(), lambda: moment[0], bootstrap.arm_client(settings))
        assert services.reconciler.syncer is not None
        while True:
            report = services.reconciler.syncer.step(parse_service_id(SERVICE))
            moment[0] += timedelta(minutes=1)
            if report.finished:
                return {"rows": report.counts["added"], "invocations": report.invocations, "checks": store.checks,
                        "read": store.read}


def main() -> None:
    print("first sync's read-free check (twin; one ARM page of 100 an invocation)")
    for users in SIZES:
        got = measure(users)
        print(f"  {users} users, {users // 4} subscriptions: {got['rows']} rows added in {got['invocations']} invocations; "
              f"{got['checks']} checks read {got['read']} entities")


if __name__ == "__main__":
    main()
