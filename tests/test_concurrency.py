"""Concurrent invocations never lose an update: 8 writers, each with its own client and cache as
separate worker processes would have, on the same resources in Azurite."""

from __future__ import annotations

import random
import threading
from typing import Any

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared.domain.errors import WriteConflict
from shared.store.memory import InMemoryStore
from tests.conftest import fresh_settings, table_repo
from tests.support import CLOCK, comparable_rows, event, inventory_rows, processor_over

WRITERS = 8


def stream() -> list[dict[str, Any]]:
    events = []
    for n in range(160):
        second = n // 3
        pick = n % 8
        if pick == 0:
            events.append(event("GatewayDeleted" if n % 24 == 0 else "GatewayUpdated", "/gateways/edge", at=second))
        elif pick == 1:
            events.append(event("GatewayTokenNearExpiry", "/gateways/edge/pod-1", at=second))
        elif pick == 2:
            events.append(event("GatewayAPIAdded", "/gateways/edge/apis/orders", at=second))
        elif pick == 3:
            events.append(event("APIUpdated", "/apis/orders", at=second))
        elif pick == 4:
            events.append(event("APIDeleted" if n % 20 == 4 else "APICreated", "/apis/orders", at=second))
        elif pick == 5:
            events.append(event("APIReleaseUpdated", "/apis/orders/releases/r1", at=second))
        else:
            events.append(event("UserUpdated", "/users/alice", at=second))
    return events


def test_eight_concurrent_writers_converge(azurite: Azurite) -> None:
    events = stream()
    expected = InMemoryStore()
    for payload in sorted(events, key=lambda e: (e["time"], e["id"])):
        processor_over(expected, CLOCK.now).handle(decode_event(payload))

    settings = fresh_settings()
    shuffled = events + random.Random(7).sample(events, 40)  # with redeliveries
    random.Random(11).shuffle(shuffled)
    lanes = [shuffled[i::WRITERS] for i in range(WRITERS)]
    errors: list[BaseException] = []
    conflicts = [0]
    barrier = threading.Barrier(WRITERS)

    def writer(lane: list[dict[str, Any]]) -> None:
        repo = table_repo(azurite, settings)
        processor = processor_over(repo, CLOCK.now, conflict_retries=50)
        original_commit = repo.commit

        def counting_commit(write: Any) -> Any:
            try:
                return original_commit(write)
            except WriteConflict:
                conflicts[0] += 1
                raise

        repo.commit = counting_commit  # type: ignore[method-assign]
        barrier.wait()
        try:
            for payload in lane:
                processor.handle(decode_event(payload))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert comparable_rows(inventory_rows(table_repo(azurite, settings))) == comparable_rows(inventory_rows(expected))
    assert conflicts[0] > 0, "the writers never collided, so this run proved nothing about concurrency"
