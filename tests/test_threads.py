"""One worker process, many threads: the Python worker runs synchronous functions on a thread pool
(`PYTHON_THREADPOOL_THREAD_COUNT`, by default min(32, cpus + 4) threads), and Event Grid's deliveries become
parallel invocations that share `bootstrap.services()`. These tests run what the process shares from many threads
at once, with the interpreter switching threads every microsecond so that races show up."""

from __future__ import annotations

import dataclasses
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.flags import Alert
from shared.domain.resources import parse_service_id
from shared.integrations.arm import ArmError
from shared.store.memory import InMemoryStore
from shared.store.outbox import AlertOutbox
from shared.store.ports import StoredRow
from shared.store.status import StatusTracker
from tests.conftest import fresh_settings, table_repo
from tests.support import (
    SERVICE_ID,
    T0,
    ManualClock,
    comparable_history,
    comparable_rows,
    event,
    history_records,
    inventory_rows,
    pending_entities,
    processor_over,
)

THREADS = 16


@contextmanager
def fast_switching() -> Iterator[None]:
    """Let the interpreter hand the GIL to another thread every microsecond (the default is 5 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_together(work: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Start `threads` threads at the same instant (a barrier) and return what they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as exc:  # surfaced by the caller's assertion
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(n,)) for n in range(threads)]
    with fast_switching():
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    return errors


def described(errors: list[BaseException]) -> list[str]:
    return [f"{type(e).__name__}: {e}"[:200] for e in errors]


# -- a stream over hundreds of resources --------------------------------------------------------------------------

USERS, APIS, GATEWAYS, BACKENDS = 80, 24, 12, 12


def resource_stream(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events over 224 resources of one service, in two phases: the first creates or touches every resource, the
    second updates and deletes (with cascades to children). Keeping deletions out of the first phase keeps clear of
    the gap docs/design.md names (a child *created* while its parent is deleted can miss the cascade), which no
    lock in one process can close because other processes write the same rows."""
    rng = random.Random(seed)
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    ids = iter(range(1_000_000))

    def add(phase: list[dict[str, Any]], suffix: str, subject: str, schema: str = "cloud") -> None:
        phase.append(event(suffix, subject, at=rng.uniform(0, 600), event_id=f"t{next(ids):06d}", schema=schema))

    for n in range(USERS):
        add(first, "UserCreated", f"/users/u{n:03d}", rng.choice(["cloud", "eventgrid"]))
        add(second, rng.choice(["UserUpdated", "UserDeleted", "UserUpdated"]), f"/users/u{n:03d}")
    for n in range(APIS):
        add(first, "APICreated", f"/apis/a{n:02d}")
        add(first, "APICreated", f"/apis/a{n:02d};rev=2")
        add(first, "APIReleaseCreated", f"/apis/a{n:02d}/releases/r1")
        add(second, "APIUpdated", f"/apis/a{n:02d};Rev=2")
        add(second, "APIReleaseUpdated", f"/apis/A{n:02d}/releases/r1")
        if n % 3 == 0:
            add(second, "APIDeleted", f"/apis/a{n:02d}")
    for n in range(GATEWAYS):
        add(first, "GatewayCreated", f"/gateways/g{n:02d}")
        add(first, "GatewayAPIAdded", f"/gateways/g{n:02d}/apis/a{n:02d}")
        for pod in ("pod-1", "pod-2"):
            add(first, "GatewayTokenNearExpiry", f"/gateways/g{n:02d}/{pod}")
            add(second, rng.choice(["GatewayTokenExpired", "GatewayTokenNearExpiry"]), f"/gateways/g{n:02d}/{pod}")
        if n % 4 == 0:
            add(second, "GatewayDeleted", f"/gateways/g{n:02d}")
    for n in range(BACKENDS):
        add(first, "CircuitBreaker.Opened", f"/backends/b{n:02d}/circuit-breaker/rules/r1")
        add(second, rng.choice(["CircuitBreaker.Closed", "CircuitBreaker.Opened"]), f"/backends/b{n:02d}/circuit-breaker/rules/r1")
    return first, second


def delivered(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Shuffled, with a tenth of the events delivered again."""
    rng = random.Random(seed)
    stream = events + rng.sample(events, len(events) // 10)
    rng.shuffle(stream)
    return stream


class RecordingPublisher:
    """Records what each publish sends, slowly, and every alert id sent while another send of it was in flight."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.overlaps: list[str] = []
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def publish(self, alerts: list[Alert]) -> None:
        ids = [a.id for a in alerts]
        with self._lock:
            self.overlaps.extend(i for i in ids if i in self._in_flight)
            self._in_flight.update(ids)
        time.sleep(0.003)  # a network round trip, so that concurrent flushes meet
        with self._lock:
            self._in_flight.difference_update(ids)
            self.sent.extend(ids)


STATUS_COLUMNS = ("LastEventTime", "LastReceivedAt", "LastAppliedAt")


def status_of(services: bootstrap.Services, now: datetime) -> dict[str, Any]:
    services.status.flush(now)
    row = services.store.load_status(parse_service_id(SERVICE_ID).key)
    return {column: row.entity.get(column) for column in STATUS_COLUMNS} if row else {}


def test_apim_events_from_16_threads_over_one_set_of_services(azurite: Azurite, app_settings: Settings, clock: ManualClock,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexed function, the library's converter and one set of services built from app settings, as in the
    worker, on the worker's kind of executor; a cache of 4 rows evicts on nearly every event. Every row and history
    record ends as a single-threaded run in event-time order leaves it, nothing raises, no alert is left pending or
    sent by two flushes at once, and the outcome counts add up."""
    monkeypatch.setenv("INVENTORY_CACHE_SIZE", "4")
    monkeypatch.setenv("INVENTORY_CONFLICT_RETRIES", "50")  # 16 writers on a few rows: give a retry loop room
    first, second = resource_stream(seed=10)
    expected = InMemoryStore()
    oracle = bootstrap.in_memory(clock=clock.now, store=expected)
    for payload in sorted(first + second, key=lambda e: (e.get("time") or e["eventTime"], e["id"])):
        oracle.processor.handle(decode_event(payload))

    publisher = RecordingPublisher()
    services = bootstrap.build_services(clock=clock.now, publisher=publisher)
    assert services.store._cache_size == 4  # type: ignore[attr-defined]
    bootstrap.install(services)
    function = indexed_function("apim_events")
    phases = [delivered(first, seed=11), delivered(second + first[::7], seed=12)]
    errors: list[str] = []
    try:
        with fast_switching(), ThreadPoolExecutor(max_workers=THREADS) as pool:  # what the worker runs functions on
            for phase in phases:
                futures = [pool.submit(function, decode_event(payload)) for payload in phase]
                errors += [f"{type(e).__name__}: {e}"[:200] for f in futures if (e := f.exception()) is not None]
        processor = services.processor
        pending = pending_entities(services.store)
        status = status_of(services, clock.now())
    finally:
        bootstrap.install(None)

    stored = table_repo(azurite, app_settings)
    assert errors == []
    assert comparable_rows(inventory_rows(stored)) == comparable_rows(inventory_rows(expected))
    assert comparable_history(history_records(stored)) == comparable_history(history_records(expected))
    assert sum(processor.counts.values()) == sum(len(p) for p in phases)
    assert publisher.overlaps == [], "an alert was sent by two flushes at the same time"
    assert publisher.sent and pending == [], "an alert raised by an invocation was left pending"
    assert status == status_of(oracle, clock.now())


# -- unit level -----------------------------------------------------------------------------------------------------

def test_row_cache_from_many_threads(azurite: Azurite) -> None:
    """The row cache alone: 16 threads remember, look up and forget rows of 32 keys in a cache of 4. Nothing
    raises, a lookup never returns another key's row, and the cache never holds more than its size."""
    repo = table_repo(azurite, dataclasses.replace(fresh_settings(), cache_size=4))
    keys = [("pk", f"rk{n:02d}") for n in range(32)]
    wrong: list[str] = []

    def work(n: int) -> None:
        rng = random.Random(n)
        for i in range(3000):
            key = rng.choice(keys)
            repo._remember(key, StoredRow({"PartitionKey": key[0], "RowKey": key[1], "N": i}, f"e{i}") if i % 5 else None)
            other = rng.choice(keys)
            _, row = repo._cached(other)
            if row is not None and row.entity["RowKey"] != other[1]:
                wrong.append(f"{other} gave {row.entity['RowKey']}")
            if i % 500 == 0:
                repo._drop(keys)  # empty it, while the others use it

    errors = run_together(work)
    assert described(errors) == []
    assert wrong == []
    assert len(repo._cache) <= 4


@pytest.mark.unit
def test_services_are_built_once_when_first_calls_race(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first invocations of a fresh process all ask for the services at once: one set is built, all get it."""
    built: list[object] = []

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)  # building the clients takes time: the others arrive meanwhile
        made = object()
        built.append(made)
        return made

    monkeypatch.setattr(bootstrap, "build_services", slow_build)
    bootstrap.install(None)
    got: list[object] = []
    try:
        errors = run_together(lambda n: got.append(bootstrap.services()))
    finally:
        bootstrap.install(None)
    assert described(errors) == []
    assert len(built) == 1
    assert len(got) == THREADS and all(g is built[0] for g in got)


@pytest.mark.unit
def test_counters_add_up_from_many_threads(clock: ManualClock) -> None:
    """One processor, 16 threads: every outcome is counted once, and the writer counts every alert it raised."""
    repo = InMemoryStore()
    processor = processor_over(repo, clock.now)
    outbox = processor.outbox
    raised: list[int] = []
    lock = threading.Lock()
    add = outbox.add

    def counting_add(alerts: list[Alert]) -> None:
        with lock:
            raised.append(len(alerts))
        add(alerts)

    outbox.add = counting_add  # type: ignore[method-assign]
    per_thread = 150

    def work(n: int) -> None:
        for i in range(per_thread):
            subject = f"/gateways/g{n:02d}/pod-{i}" if i % 2 else f"/users/t{n:02d}-{i}"
            suffix = "GatewayTokenNearExpiry" if i % 2 else "UserCreated"
            processor.handle(decode_event(event(suffix, subject, at=i, event_id=f"c{n:02d}-{i:04d}")))

    errors = run_together(work)
    assert described(errors) == []
    assert sum(processor.counts.values()) == THREADS * per_thread
    assert processor.writer.alerts_raised == sum(raised) > 0


@pytest.mark.unit
def test_concurrent_flushes_never_send_an_alert_twice_at_once_nor_leave_one(clock: ManualClock) -> None:
    """8 flushes at the same instant over the same pending alerts, while other threads add more and flush: no alert
    id is in two sends at the same time, and when a thread's flush returns, the alert it added has been sent."""
    repo = InMemoryStore()
    publisher = RecordingPublisher()
    outbox = AlertOutbox(repo, publisher)
    outbox.add([Alert(f"a{n:03d}", "ApimInventory.Test", SERVICE_ID, f"/users/u{n}", T0) for n in range(40)])
    late: list[str] = []

    def work(n: int) -> None:
        if n % 2:
            alert = Alert(f"late-{n:02d}", "ApimInventory.Test", SERVICE_ID, f"/users/late{n}", T0)
            outbox.add([alert])
        outbox.flush(clock.now())
        if n % 2 and f"late-{n:02d}" not in publisher.sent:
            late.append(f"late-{n:02d}")

    errors = run_together(work)
    assert described(errors) == []
    assert publisher.overlaps == []
    assert late == [], "a flush returned before the alert its caller added was sent"
    assert pending_entities(repo) == []
    assert set(publisher.sent) == {f"a{n:03d}" for n in range(40)} | {f"late-{n:02d}" for n in range(1, THREADS, 2)}


@pytest.mark.unit
def test_status_tracker_from_many_threads(clock: ManualClock) -> None:
    """16 threads note events of 4 services with random times: each service's row ends with the newest of them."""
    repo = InMemoryStore()
    tracker = StatusTracker(repo)
    newest: dict[str, datetime] = {}
    lock = threading.Lock()

    def work(n: int) -> None:
        rng = random.Random(n)
        for i in range(300):
            service = f"svc{i % 4}"
            at = T0.replace(minute=rng.randrange(60), second=rng.randrange(60))
            with lock:
                newest[service] = max(newest.get(service, at), at)
            tracker.note(service, service, "applied", at, clock.now())
            if i % 50 == 0:
                tracker.flush(clock.now())

    errors = run_together(work)
    assert described(errors) == []
    tracker.flush(clock.now())
    for service, at in newest.items():
        row = repo.load_status(service)
        assert row is not None and row.entity["LastEventTime"] == at


def test_arm_token_is_fetched_once_when_first_calls_race(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 threads make the first ARM calls of a fresh client at once: the managed identity endpoint is asked for
    one token, which all of them use."""
    for name, value in {**arm.identity_env(), "ARM_ENDPOINT": arm.endpoint}.items():
        monkeypatch.setenv(name, value)
    client = bootstrap.arm_client(Settings.from_env())
    found: list[str] = []
    errors = run_together(lambda n: found.append(client.get(f"{SERVICE_ID}/users/alice")["name"]))
    client.close()
    assert described(errors) == []
    assert found == ["alice"] * THREADS
    assert len(arm.token_resources) == 1


def test_arm_401s_from_many_threads_stay_arm_errors(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 401 makes the token policy drop its token while other threads are reading it: every call still ends as
    the client's own ArmError 401, never as an error inside the policy."""
    for name, value in {**arm.identity_env(), "ARM_ENDPOINT": arm.endpoint}.items():
        monkeypatch.setenv(name, value)
    client = bootstrap.arm_client(Settings.from_env())
    assert client.get(f"{SERVICE_ID}/users/alice")["name"] == "alice"
    arm.token = "rotated"  # the token the client holds is refused from now on
    outcomes: list[str] = []

    def work(n: int) -> None:
        for _ in range(10):
            try:
                client.get(f"{SERVICE_ID}/users/bob")
                outcomes.append("ok")
            except ArmError as exc:
                outcomes.append(f"ArmError {exc.status}")

    errors = run_together(work)
    client.close()
    assert described(errors) == []
    assert set(outcomes) == {"ArmError 401"}
