"""From the logs to the reports: what the ingest writes (hourly contributions, daily roll-ups, last use, bad lines) is
what the reports read, and their totals equal a brute-force count of the records in the blobs."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from devtools.memory_archive import MemoryArchive
from shared.queries.unused import bad_lines
from shared.queries.usage import usage
from shared.store.memory import InMemoryStore
from tests.support import ManualClock
from tests.usage_ingest_support import H0, NOW, blob_name, brute_force, ingest_over, lines, record

pytestmark = pytest.mark.unit
OLD = H0 - timedelta(days=10)


def test_the_reports_read_what_the_ingest_wrote(memory_store: InMemoryStore) -> None:
    archive = MemoryArchive()
    for start in (OLD, H0):  # a rolled-up day and today's hours
        for hour in range(3):
            at = start + timedelta(hours=hour)
            archive.append(blob_name(at), lines(*(record(at + timedelta(minutes=i), code=(200, 500, 401)[i % 3], duration=float(i),
                                                         apiId=("echo-api", "/apis/Orders;rev=2")[i % 2],
                                                         apimSubscriptionId=("sub-1", None)[i % 2]) for i in range(12))) + b"oops\n")
    report = ingest_over(archive, memory_store, ManualClock(NOW).now).ingest(NOW)
    assert report.rollup.days > 0
    expected: Counter[tuple[str, str]] = Counter()
    for (_, kind, _, resource), values in brute_force(archive.content(n) for n in archive.names()).items():
        expected[(kind, resource)] += values[0]
    answer = usage(memory_store, memory_store, NOW, since=OLD - timedelta(days=1), until=NOW, top=100)
    found = {(item["kind"], item["id"]): item["total"] for item in answer["items"]}
    assert found == {key: n for key, n in expected.items() if key[0] != "service"}
    latest = max(item["lastUsedAt"] for item in answer["items"] if item["kind"] == "api")
    assert latest == H0 + timedelta(hours=2, minutes=11)
    rejected = bad_lines(memory_store, NOW, archive.container, NOW - timedelta(days=1))
    assert sorted((item["blob"], item["reason"]) for item in rejected["items"]) == sorted((n, "not-json") for n in archive.names())
