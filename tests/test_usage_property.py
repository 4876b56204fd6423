"""THE property of the usage ingest: for any interleaving of appends (whole lines, or a line in two pieces), reads
(with any chunk size), crashes (a failure at the k-th write, some rows of it written) and replaced blobs, the
usage table ends holding exactly a brute-force count of the records in the blobs. Many examples in memory (the
twin store and the twin archive), a few on Azurite (Table Storage and real append blobs)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.memory_archive import MemoryArchive
from shared.domain.usage import COUNTED_KINDS
from shared.integrations.log_archive import LogArchive
from shared.store.memory import InMemoryStore
from shared.store.ports import Entity, StoredRow, Table
from shared.store.usage_keys import tracking_rows
from tests.conftest import fresh_settings, table_repo
from tests.support import ManualClock
from tests.usage_ingest_support import H0, NOW, AzuriteBlobs, blob_name, brute_force, ingest_over, lines, record, stored_counts, stored_last_uses

BLOBS = [blob_name(H0), blob_name(H0 + timedelta(hours=1)), blob_name(H0 + timedelta(hours=2), "fabrikam")]
_containers = itertools.count(1)


class Killed(Exception):
    """The process dies at this write."""


def typed(entity: Entity) -> Entity:
    """What Table Storage takes, which the twin does not check: integers of 32 bits (the SDK types a plain int so), strings
    of at most 32K characters."""
    for name, value in entity.items():
        assert not (isinstance(value, int) and not isinstance(value, bool) and not -2**31 <= value < 2**31), (name, value)
        assert not (isinstance(value, str) and len(value) > 32_000), name
    return entity


class Crashing:
    """The store, dying at its k-th write (an upsert writes some of its rows first, as separate transactions do); every
    entity checked as Table Storage would (`typed`)."""

    def __init__(self, store: Any, at: int | None) -> None:
        self._store, self.at, self.writes = store, at, 0

    def _write(self) -> bool:
        self.writes += 1
        return self.at is not None and self.writes == self.at

    def get(self, table: Table, pk: str, rk: str) -> StoredRow | None:
        return self._store.get(table, pk, rk)  # type: ignore[no-any-return]

    def scan(self, *args: Any, **kwargs: Any) -> Iterator[list[StoredRow]]:
        return self._store.scan(*args, **kwargs)  # type: ignore[no-any-return]

    def page(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.page(*args, **kwargs)

    def put(self, table: Table, entity: Entity, etag: str | None) -> StoredRow:
        typed(entity)
        if self._write():
            raise Killed()
        return self._store.put(table, entity, etag)  # type: ignore[no-any-return]

    def put_all(self, table: Table, writes: list[tuple[Entity, str | None]]) -> list[StoredRow]:
        for entity, _ in writes:
            typed(entity)
        if self._write():
            raise Killed()  # one transaction: all or none
        return self._store.put_all(table, writes)  # type: ignore[no-any-return]

    def upsert(self, table: Table, entities: list[Entity]) -> None:
        for entity in entities:
            typed(entity)
        if self._write():
            self._store.upsert(table, entities[: len(entities) // 2])
            raise Killed()
        self._store.upsert(table, entities)

    def delete_rows(self, table: Table, rows: list[StoredRow], **kwargs: Any) -> int:
        if self._write():
            self._store.delete_rows(table, rows[: len(rows) // 2], **kwargs)
            raise Killed()
        return self._store.delete_rows(table, rows, **kwargs)  # type: ignore[no-any-return]


class MemoryBlobs:
    def __init__(self) -> None:
        self.archive = MemoryArchive()

    def append(self, name: str, data: bytes) -> None:
        self.archive.append(name, data)

    def replace(self, name: str, data: bytes) -> None:
        self.archive.create(name, data)

    def contents(self) -> list[bytes]:
        return [self.archive.content(name) for name in self.archive.names()]


def _records(draw: Any) -> bytes:
    count = draw(st.integers(0, 6))
    made = [record(H0 + timedelta(minutes=draw(st.integers(0, 200))), draw(st.sampled_from(["contoso", "fabrikam"])),
                   draw(st.sampled_from([200, 301, 302, 401, 404, 429, 500, 503])), float(draw(st.integers(0, 900))),
                   apiId=draw(st.sampled_from(["echo-api", "/apis/echo-api;rev=2", "Orders"])),
                   apimSubscriptionId=draw(st.sampled_from(["sub-1", "master", None])))
            for _ in range(count)]
    data = lines(*made)
    return data + b"not json\n" if draw(st.booleans()) and draw(st.booleans()) else data


@st.composite
def steps(draw: Any) -> list[tuple[str, Any, Any]]:
    found: list[tuple[str, Any, Any]] = []
    for _ in range(draw(st.integers(1, 12))):
        what = draw(st.sampled_from(["append", "append", "append", "split", "read", "read", "crash", "replace", "race"]))
        if what in ("append", "split", "replace"):
            found.append((what, draw(st.sampled_from(BLOBS)), _records(draw)))
        elif what == "read":
            found.append((what, draw(st.sampled_from([700, 1100, 4096])), None))
        elif what == "race":
            found.append((what, draw(st.sampled_from([700, 1100, 4096])), draw(st.one_of(st.none(), st.integers(1, 12)))))
        else:
            found.append((what, draw(st.sampled_from([700, 1100, 4096])), draw(st.integers(1, 12))))
    return found


def race(archive: LogArchive, store: Any, clock: ManualClock, chunk: int, crash_at: int | None) -> None:
    failures: list[BaseException] = []

    def run(at: int | None) -> None:
        try:
            ingest_over(archive, Crashing(store, at), clock.now, chunk_size=chunk).ingest()
        except Killed:
            pass
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(at,)) for at in (crash_at, None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    clock.advance(minutes=32)


def _hour(value: Any) -> str:
    """A stored time (a datetime, or ISO text) to the hour, `YYYY-MM-DDTHH`."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H") if isinstance(value, datetime) else str(value)[:13]


def play(blobs: MemoryBlobs | AzuriteBlobs, store: Any, script: list[tuple[str, Any, Any]]) -> None:
    clock = ManualClock(NOW)
    held: dict[str, bytes] = {}  # the second halves of lines appended in two pieces
    archive: LogArchive = blobs.archive
    for what, first, second in script:
        if what in ("append", "split"):
            blobs.append(first, held.pop(first, b""))
            cut = len(second) // 2 if what == "split" else len(second)
            blobs.append(first, second[:cut])
            held[first] = second[cut:]
        elif what == "replace":
            held.pop(first, None)
            blobs.replace(first, second)
        elif what == "race":  # two runs at once, one of them dying at its k-th write
            race(archive, store, clock, first, second)
        else:
            crashing = Crashing(store, second)
            try:
                ingest_over(archive, crashing, clock.now, chunk_size=first).ingest()
            except Killed:
                clock.advance(minutes=32)  # the host restarts; the dead run's claims lapse
    for name, rest in held.items():
        blobs.append(name, rest)
    clock.advance(minutes=32)
    ingest_over(archive, Crashing(store, None), clock.now, chunk_size=1024).ingest()
    expected = brute_force(blobs.contents())
    assert stored_counts(store) == expected
    # Last use: a maximum and a minimum, to the hour, whatever crashed or raced. A replaced blob's old records may
    # have moved them further (they are not retired), never less far.
    bounds: dict[tuple[str, str, str], tuple[str, str]] = {}
    for (service, kind, _, resource), counted in expected.items():
        if kind in COUNTED_KINDS:
            first, last = bounds.get((service, kind, resource), (counted[8], counted[9]))
            bounds[(service, kind, resource)] = (min(first, counted[8]), max(last, counted[9]))
    uses = stored_last_uses(store)
    assert set(uses) == set(bounds) or any(what == "replace" for what, _, _ in script)
    for key, (first, last) in bounds.items():
        assert uses[key][0][:13] <= first[:13] and uses[key][1][:13] >= last[:13], key
        if not any(what == "replace" for what, _, _ in script):
            assert (uses[key][0][:13], uses[key][1][:13]) == (first[:13], last[:13]), key
    # Tracking: each service's earliest record, to the hour (a replaced blob's old records may have moved it earlier).
    earliest: dict[str, str] = {}
    for (service, _, _, _), counted in expected.items():
        earliest[service] = min(earliest.get(service, counted[8]), counted[8])
    tracked = {str(row.entity["Service"]): _hour(row.entity["FirstRecordAt"]) for page in store.scan(tracking_rows()) for row in page}
    assert set(tracked) == set(earliest) or any(what == "replace" for what, _, _ in script)
    for service, first in earliest.items():
        assert tracked[service] <= first[:13], service
        if not any(what == "replace" for what, _, _ in script):
            assert tracked[service] == first[:13], service


@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps())
def test_any_interleaving_counts_every_record_once_in_memory(script: list[tuple[str, Any, Any]]) -> None:
    play(MemoryBlobs(), InMemoryStore(), script)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(script=steps())
def test_any_interleaving_counts_every_record_once_on_azurite(azurite: Azurite, script: list[tuple[str, Any, Any]]) -> None:
    service = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    container = service.create_container(f"gatewaylogs{next(_containers)}")
    play(AzuriteBlobs(container), table_repo(azurite, fresh_settings()), script)
