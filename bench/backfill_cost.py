"""The Activity Log backfill's cost: 10,000 events of one subscription over 90 days, served by the ARM stand-in's Activity Log
route (pages of 200), read through the lean ARM client one day at a time and converted to exported records: requests made,
records read and the time taken. The writer here only counts (the audit-record writer's cost is the audit rows' own)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.activity_log_route import event_data
from devtools.arm_standin import ArmStandIn
from shared import bootstrap
from shared.audit.backfill import Backfill, Span
from shared.config import Settings
from shared.integrations.activity_log_api import ActivityLogApi, odata_time

SUBSCRIPTION = "6f0c3c1e-0000-4000-8000-00000000be4c"
SERVICE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-bench/providers/Microsoft.ApiManagement/service/apim-bench"
EVENTS, DAYS, PAGE = 10_000, 90, 200
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Counted:
    written: int
    ignored: int = 0
    bad: list[Any] = field(default_factory=list)


class CountingWriter:
    def __init__(self) -> None:
        self.records = 0

    def write(self, records: Iterable[Mapping[str, Any]], origin: str) -> Counted:
        batch = list(records)
        self.records += len(batch)
        return Counted(len(batch))


def main() -> None:
    step = timedelta(days=DAYS) / EVENTS
    events = [event_data(SUBSCRIPTION, f"{SERVICE}/apis/api-{n % 50}", "Microsoft.ApiManagement/service/apis/write", "Succeeded",
                         time=odata_time(NOW - step * (n + 1)), correlation_id=f"c-{n}", caller="ops@contoso.com", claims={"name": "Ops"})
              for n in range(EVENTS)]
    with ArmStandIn() as arm:
        arm.activity_page_size = PAGE
        arm.add_activity(SUBSCRIPTION, events)
        os.environ.update(arm.identity_env())
        client = bootstrap.arm_client(Settings(arm_endpoint=arm.endpoint))
        writer = CountingWriter()
        started = time.perf_counter()
        report = Backfill(ActivityLogApi(client), writer).run(Span(NOW - timedelta(days=DAYS), NOW), [SUBSCRIPTION])
        seconds = time.perf_counter() - started
        requests = len(arm.hits("/eventtypes/management/values"))
        client.close()
    print(f"backfill: {writer.records:,} records of {EVENTS:,} over {DAYS} days, {len(report.windows)} windows, {report.total('pages')} pages, "
          f"{requests} requests, {seconds:.2f} s ({writer.records / seconds:,.0f} records/s, the stand-in's filtering included)")


if __name__ == "__main__":
    main()
