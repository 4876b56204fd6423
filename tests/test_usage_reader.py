"""The usage reader's rules, in memory (the twin store and the twin archive): partial lines, chunks, bad lines with
their offsets, re-reads, replaced blobs, late records, the id forms, claims, and what a run writes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from devtools.memory_archive import MemoryArchive
from shared.domain.usage import NO_SUBSCRIPTION
from shared.logread.reader import hour_of
from shared.store.memory import InMemoryStore
from shared.store.ports import Query, Table
from tests.support import ManualClock
from tests.usage_ingest_support import H0, NOW, bad_lines, blob_name, brute_force, ingest_over, lines, record, stored_counts

pytestmark = pytest.mark.unit


@pytest.fixture
def archive() -> MemoryArchive:
    return MemoryArchive()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def expected(archive: MemoryArchive) -> dict[tuple[str, str, str, str], tuple[object, ...]]:
    return brute_force(archive.content(name) for name in archive.names())


def test_a_blob_is_counted_once_however_often_it_is_read(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    name = blob_name(H0)
    archive.append(name, lines(*(record(H0 + timedelta(minutes=i), code=code) for i, code in enumerate((200, 404, 500, 401)))))
    ingest = ingest_over(archive, store, clock.now)
    first = ingest.ingest()
    assert (first.blobs, first.records, first.bad_lines) == (1, 4, 0)
    assert ingest.ingest().blobs == 0  # nothing new: no claim, no write
    assert stored_counts(store) == expected(archive)
    service = stored_counts(store)[("contoso", "service", "2026-12-02T10", "-")]
    assert service[:6] == (4, 1, 1, 1, 1, 1)  # total, successful, unauthorized, failed, other, backend failed


def test_a_line_being_appended_is_left_for_the_next_read(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    name = blob_name(H0)
    whole = lines(record(H0), record(H0 + timedelta(minutes=1)))
    archive.append(name, whole[:-20])  # the second line is half written
    ingest = ingest_over(archive, store, clock.now)
    assert ingest.ingest().records == 1
    archive.append(name, whole[-20:])
    assert ingest.ingest().records == 1
    assert stored_counts(store) == expected(archive)
    assert stored_counts(store)[("contoso", "service", "2026-12-02T10", "-")][0] == 2


def test_chunks_end_at_the_last_newline_and_a_longer_line_is_bad(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    name = blob_name(H0)
    long_line = json.dumps(record(H0, apiId="x" * 3000)).encode() + b"\n"
    archive.append(name, lines(*(record(H0 + timedelta(seconds=i)) for i in range(40))) + long_line + lines(record(H0)))
    report = ingest_over(archive, store, clock.now, chunk_size=1024).ingest()
    assert report.records == 41 and report.bad_lines == 1
    offset = archive.content(name).index(long_line)
    assert bad_lines(store) == [(name, offset, "too-long")]
    assert stored_counts(store) == brute_force([archive.content(name).replace(long_line, b"")])


def test_bad_lines_are_recorded_with_their_offsets_and_never_stop_the_blob(archive: MemoryArchive, store: InMemoryStore,
                                                                           clock: ManualClock) -> None:
    name = blob_name(H0)
    good = record(H0)
    parts = [lines(good), b"not json\n", b"[1, 2]\n", lines({**good, "time": "yesterday"}), lines({k: v for k, v in good.items() if k != "resourceId"}),
             lines({**good, "resourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/x"}), lines(good)]
    archive.append(name, b"".join(parts))
    report = ingest_over(archive, store, clock.now).ingest()
    assert (report.records, report.bad_lines) == (2, 5)
    offsets = [sum(map(len, parts[:i])) for i in range(len(parts))]
    assert bad_lines(store) == [(name, offsets[1], "not-json"), (name, offsets[2], "not-an-object"), (name, offsets[3], "no-time"),
                                (name, offsets[4], "no-resource-id"), (name, offsets[5], "no-resource-id")]
    ingest_over(archive, store, clock.now).ingest()
    assert len(bad_lines(store)) == 5  # read again: the same rows


def test_a_replaced_blob_is_read_again_from_the_start_without_double_counting(archive: MemoryArchive, store: InMemoryStore,
                                                                              clock: ManualClock) -> None:
    name = blob_name(H0)
    archive.append(name, lines(*(record(H0, apiId=f"old-{i}") for i in range(5))))
    ingest = ingest_over(archive, store, clock.now)
    ingest.ingest()
    archive.create(name, lines(record(H0, apiId="new")))  # smaller, and created anew
    report = ingest.ingest()
    assert report.replaced == 1
    assert stored_counts(store) == expected(archive)
    archive.create(name, lines(*(record(H0, apiId="newer") for _ in range(9))))  # larger, but created anew
    assert ingest.ingest().replaced == 1
    assert stored_counts(store) == expected(archive)


def test_late_records_count_in_their_own_hour(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    archive.append(blob_name(H0 + timedelta(hours=2)), lines(record(H0 + timedelta(minutes=5)), record(H0 + timedelta(hours=2))))
    ingest_over(archive, store, clock.now).ingest()
    counts = stored_counts(store)
    assert counts[("contoso", "service", "2026-12-02T10", "-")][0] == 1
    assert counts[("contoso", "service", "2026-12-02T12", "-")][0] == 1


def test_the_id_forms(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    records = [record(H0, apiId="Echo-API", operationId="Get-Echo", apimSubscriptionId="master", productId="/products/Starter",
                      userId="/users/1", backendId="/backends/be"),
               record(H0, apiId="/apis/echo-api;rev=2", operationId="/apis/echo-api;rev=2/operations/get-echo", apimSubscriptionId=None)]
    archive.append(blob_name(H0), lines(*records))
    ingest_over(archive, store, clock.now).ingest()
    ids = {(kind, resource): c[0] for (_, kind, _, resource), c in stored_counts(store).items()}
    assert ids == {("service", "-"): 2, ("api", "echo-api"): 2, ("api", "echo-api;rev=2"): 1, ("operation", "echo-api/get-echo"): 2,
                   ("subscription", "master"): 1, ("subscription", NO_SUBSCRIPTION): 1, ("product", "starter"): 1, ("user", "1"): 1,
                   ("backend", "be"): 1}
    assert stored_counts(store) == expected(archive)


def test_last_use_and_tracking_rows_are_maxima_and_minima(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    archive.append(blob_name(H0 + timedelta(hours=1)), lines(record(H0 + timedelta(hours=1, minutes=7))))
    ingest_over(archive, store, clock.now).ingest()
    archive.append(blob_name(H0), lines(record(H0 + timedelta(minutes=3))))  # an earlier hour, read later
    ingest_over(archive, store, clock.now).ingest()
    rows = {(r.entity["PartitionKey"], r.entity["RowKey"]): r.entity for page in store.scan(Query(Table.USAGE, low_pk="ul|", high_pk="ul}"))
            for r in page}
    api = rows[("ul|contoso|api", "echo-api")]
    assert (api["FirstSeenUsedAt"], api["LastUsedAt"]) == (H0 + timedelta(minutes=3), H0 + timedelta(hours=1, minutes=7))
    tracking = store.get(Table.USAGE, "ut", "contoso")
    assert tracking is not None and tracking.entity["FirstRecordAt"] == H0 + timedelta(minutes=3)
    assert tracking.entity["FirstReadAt"] == NOW


def test_two_runs_at_once_count_once(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock) -> None:
    for hour in range(4):
        archive.append(blob_name(H0 + timedelta(hours=hour)), lines(*(record(H0 + timedelta(hours=hour, seconds=i)) for i in range(300))))
    runs = [ingest_over(archive, store, clock.now, chunk_size=2048) for _ in range(4)]
    threads = [threading.Thread(target=run.ingest) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ingest_over(archive, store, clock.now).ingest()  # what a claim held back, the next run reads
    assert stored_counts(store) == expected(archive)


@pytest.mark.parametrize("redo_chunk", [4096, 600])
def test_a_lapsed_claim_is_taken_over_and_its_pending_range_redone(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock,
                                                                   redo_chunk: int) -> None:
    name = blob_name(H0)
    archive.append(name, lines(*(record(H0 + timedelta(seconds=i)) for i in range(50))))
    crashing = ingest_over(archive, store, clock.now, chunk_size=1024)
    writes = 0
    real = store.upsert

    def fail_third(table: Table, entities: list[dict[str, object]]) -> None:
        nonlocal writes
        writes += 1
        if writes == 3:
            real(table, entities[: len(entities) // 2])  # half the chunk's rows, then the process dies
            raise RuntimeError("killed")
        real(table, entities)

    store.upsert = fail_third  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.ingest()
    store.upsert = real  # type: ignore[method-assign]
    assert ingest_over(archive, store, clock.now).ingest().skipped == 1  # the claim holds until it lapses
    clock.advance(minutes=32)
    ingest_over(archive, store, clock.now, chunk_size=redo_chunk).ingest()  # another chunk size: the pending range is redone as it was
    assert stored_counts(store) == expected(archive)


@pytest.mark.parametrize(("name", "hour"), [("resourceId=/X/y=2026/m=12/d=02/h=13/m=00/PT1H.json", "2026-12-02T13"),
                                            ("resourceId=/X/PT1H.json", None)])
def test_hour_of_a_blob(name: str, hour: str | None) -> None:
    found = hour_of(name)
    assert (found.strftime("%Y-%m-%dT%H") if found else None) == hour


def test_a_run_and_each_bad_line_are_logged(archive: MemoryArchive, store: InMemoryStore, clock: ManualClock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    name = blob_name(H0)
    archive.append(name, lines(record(H0)) + b"oops\n")
    with caplog.at_level("INFO", logger="apim_inventory"):
        ingest_over(archive, store, clock.now).ingest()
    found = [json.loads(r.getMessage().removeprefix("apim_inventory.usage ")) for r in caplog.records
             if r.getMessage().startswith("apim_inventory.usage ")]
    offset = len(lines(record(H0)))
    assert found[0] == {"badLine": f"{name}@{offset}", "reason": "not-json", "message": found[0]["message"]}
    assert {k: found[1][k] for k in ("blobs", "records", "badLines", "claimedElsewhere")} == {"blobs": 1, "records": 1, "badLines": 1,
                                                                                           "claimedElsewhere": 0}


def test_a_quiet_service_is_listed_from_two_days_before_now_not_from_its_last_blob(archive: MemoryArchive, store: InMemoryStore,
                                                                                   clock: ManualClock) -> None:
    archive.append(blob_name(H0), lines(record(H0)))
    listed: list[str] = []
    real = archive.blobs

    def counting(prefix: str):  # type: ignore[no-untyped-def]
        listed.append(prefix)
        return real(prefix)

    archive.blobs = counting  # type: ignore[method-assign]
    ingest = ingest_over(archive, store, clock.now)
    ingest.ingest()
    assert stored_counts(store) == expected(archive)
    for days in (1, 30, 365):
        clock.moment = NOW + timedelta(days=days)
        ingest.ingest()  # lists the days since the last run
        listed.clear()
        ingest.ingest()  # the mark moved with it, although no blob was new: only LATE (48 h) before now is listed again
        assert 3 <= len(listed) <= 4, (days, listed)
