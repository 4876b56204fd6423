"""THE property of the join: for any order in which a resource's events and its Activity Log records arrive (some
records twice, the Start and the Success apart), `history` gives the same answer, the one the same events and records
give when the records are all written first; and `keys` reports the same key ages. Many examples in the in-memory twin, a few on Azurite."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared import bootstrap
from shared.config import Settings
from shared.integrations.alerts import LoggingAlertPublisher
from shared.queries.keys import old_keys
from shared.store.memory import InMemoryStore
from tests.audit_support import PIPELINE, operation
from tests.conftest import fresh_settings, table_repo
from tests.support import T0, ManualClock, event

RESOURCES = (("API", "/apis/orders", "APIS"), ("Subscription", "/subscriptions/s1", "SUBSCRIPTIONS"))
STEPS = {"Created": "WRITE", "Updated": "WRITE", "Deleted": "DELETE"}
# What depends on arrival, not on the sets: when a record was written, whether an event was stale on arrival.
SKIP = {"RecordedAt", "Stale", "Duplicates", "LastDuplicateAt", "Timestamp", "etag", "PartitionKey", "RowKey"}

# A story: per resource, a few events; each has an audit record within a minute of it (or none), of the user or the
# pipeline, and failed attempts; plus a change to a backend, which has no events.
story = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(sorted(STEPS)), st.integers(0, 1200), st.integers(-60, 60),
                           st.sampled_from(["user", "pipeline", "none", "failed"])), min_size=1, max_size=6)


def items(plan: list[tuple[int, str, int, int, str]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for n, (resource, verb, at, gap, who) in enumerate(plan):
        kind, subject, collection = RESOURCES[resource]
        out.append(("event", event(f"{kind}{verb}", subject, at=T0 + timedelta(seconds=at), event_id=f"e-{n}")))
        if who != "none":
            claims = PIPELINE if who == "pipeline" else None
            result = "Failure" if who == "failed" else "Success"
            start, end = operation(subject.strip("/"), f"{collection}/{STEPS[verb]}", T0 + timedelta(seconds=at + gap), f"c-{n}", claims, result)
            out += [("audit", start), ("audit", end)]
    out.append(("audit", operation("backends/b1", "BACKENDS/WRITE", T0, "c-backend")[1]))
    out.append(("audit", operation("subscriptions/s1", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", T0 + timedelta(seconds=30), "c-key")[1]))
    return out


def delivered(services: bootstrap.Services, clock: ManualClock, order: list[tuple[str, Any]]) -> list[list[dict[str, Any]]]:
    writer = bootstrap.audit_writer(services)
    for n, (what, payload) in enumerate(order):
        clock.moment = T0 + timedelta(hours=1, seconds=n)
        if what == "event":
            services.processor.handle(decode_event(payload))
        else:
            assert not writer.write([payload], "archive:test@0").bad
    answers = []
    for subject in (*(r[1] for r in RESOURCES), "/backends/b1"):
        try:
            answers.append([{k: v for k, v in e.items() if k not in SKIP} for e in services.queries.history(f"contoso{subject}")])
        except LookupError:
            answers.append([])
    # The key-age report too: a regeneration read before its subscription's row counts as one read after it.
    answers.append([{k: v for k, v in i.items()} for i in old_keys(services.store, T0 + timedelta(days=1), timedelta(hours=1))["items"]])
    return answers


def memory_services(clock: ManualClock) -> bootstrap.Services:
    store = InMemoryStore()
    store.create_tables()
    return bootstrap.in_memory(Settings(), clock.now, store=store)


def first_records_then_events(order: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [i for i in order if i[0] == "audit"] + [i for i in order if i[0] == "event"]


@pytest.mark.unit
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(story, st.randoms(), st.integers(0, 3))
def test_any_arrival_order_gives_the_same_history(plan: list[Any], rnd: Any, twice: int) -> None:
    base = items(plan)
    order = base + [i for i in base if i[0] == "audit"][:twice]  # some records read twice
    rnd.shuffle(order)
    clock = ManualClock()
    expected = delivered(memory_services(clock), clock, first_records_then_events(base))
    assert delivered(memory_services(clock), clock, order) == expected


_examples = itertools.count(1)


@pytest.mark.azurite
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(story, st.randoms())
def test_any_arrival_order_gives_the_same_history_on_azurite(azurite: Azurite, plan: list[Any], rnd: Any) -> None:
    base = items(plan)
    order = base[:]
    rnd.shuffle(order)
    clock = ManualClock()
    expected = delivered(memory_services(clock), clock, first_records_then_events(base))
    settings_ = fresh_settings()
    on_azurite = bootstrap.wire(table_repo(azurite, settings_), settings_, LoggingAlertPublisher(), clock.now)
    assert delivered(on_azurite, clock, order) == expected
