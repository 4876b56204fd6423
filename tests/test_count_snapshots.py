"""The daily count snapshots: the `count_snapshots` timer writes one row per service and day from the summary (again
the same day: the same row), and the summary (so the overview and `apim-inventory summary`) shows each kind's change
over 7 and 30 days from them, with one key range per service. The rule against a brute-force oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.worker import decode_event, fire_timer
from shared import bootstrap
from shared.domain.trends import READ_DAYS, change
from shared.entrypoints.output import to_json
from shared.queries.summary import summarize
from shared.store.keys import snapshot_range
from shared.store.memory import InMemoryStore
from tests.support import ManualClock, event
from tests.test_changes import CountingReader

pytestmark = pytest.mark.unit
START = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)


@given(st.dictionaries(st.integers(0, 40), st.integers(0, 1000), max_size=20), st.integers(0, 1000), st.sampled_from([7, 30]))
def test_the_change_is_against_the_last_snapshot_old_enough(taken: dict[int, int], now: int, days: int) -> None:
    today = date(2026, 11, 20)
    snapshots = {today - timedelta(days=back): n for back, n in taken.items()}
    old_enough = sorted(back for back in taken if back >= days)  # brute force: the youngest snapshot at least `days` old
    assert change(now, snapshots, today, days) == (now - taken[old_enough[0]] if old_enough else None)


@pytest.fixture
def app() -> Iterator[tuple[bootstrap.Services, ManualClock, InMemoryStore]]:
    clock, store = ManualClock(START), InMemoryStore()
    store.create_tables()  # a new inventory: its layout marker
    services = bootstrap.in_memory(clock=clock.now, store=store)
    bootstrap.install(services)
    try:
        yield services, clock, store
    finally:
        bootstrap.install(None)


def users(services: bootstrap.Services, clock: ManualClock, names: range) -> None:
    for n in names:
        services.processor.handle(decode_event(event("UserCreated", f"/users/u{n}", at=clock.now())))


def user_counts(services: bootstrap.Services) -> dict[str, object]:
    summary = services.queries.summary()
    return next({**i, **t} for i, t in zip(summary["resources"], summary["trends"], strict=True) if i["kind"] == "user")


def test_the_summary_shows_the_change_since_the_snapshots(app: tuple[bootstrap.Services, ManualClock, InMemoryStore]) -> None:
    services, clock, store = app
    users(services, clock, range(3))
    fire_timer("count_snapshots")  # day 0: 3 users
    assert user_counts(services)["liveChange7d"] is None, "no snapshot 7 days old yet"
    clock.advance(days=10)
    users(services, clock, range(3, 8))
    fire_timer("count_snapshots")  # day 10: 8 users
    fire_timer("count_snapshots")  # again the same day: the same row
    clock.advance(days=25)
    users(services, clock, range(8, 10))  # day 35: 10 users
    counts = user_counts(services)
    assert (counts["live"], counts["liveChange7d"], counts["liveChange30d"]) == (10, 2, None)  # day 10 is 25 days old; day 0 is past the 31 read
    clock.advance(days=5)  # day 40: day 10 is 30 days old
    assert (user_counts(services)["liveChange7d"], user_counts(services)["liveChange30d"]) == (2, 2)
    rows = store.page(snapshot_range("contoso", START - timedelta(days=1), clock.now()), None)[0]
    assert [r["Live_user"] for r in rows] == [3, 8], "one row per day, the day's last counts"
    daily = services.queries.summary()["snapshots"]
    assert [d["live"] for d in daily[0]["daily"]] == [8], "the last 31 days' snapshots"
    assert json.loads(to_json(daily))[0]["first"] == (START + timedelta(days=10)).date().isoformat(), "the answer is JSON"


def test_a_workspaces_change_comes_from_its_own_counts(app: tuple[bootstrap.Services, ManualClock, InMemoryStore]) -> None:
    services, clock, _ = app
    services.processor.handle(decode_event(event("WorkspaceCreated", "/workspaces/w1", at=clock.now())))
    for n in range(2):
        services.processor.handle(decode_event(event("APICreated", f"/workspaces/w1/apis/a{n}", at=clock.now())))
    services.processor.handle(decode_event(event("APICreated", "/apis/top", at=clock.now())))
    fire_timer("count_snapshots")
    clock.advance(days=8)
    services.processor.handle(decode_event(event("APICreated", "/workspaces/w1/apis/a9", at=clock.now())))

    def api(workspace: str | None) -> tuple[object, object]:
        summary = services.queries.summary(workspace)
        item = next({**i, **t} for i, t in zip(summary["resources"], summary["trends"], strict=True) if i["kind"] == "api")
        return item["live"], item["liveChange7d"]

    assert api("w1") == (3, 1) and api("-") == (1, 0) and api(None) == (4, 1)


def test_the_summary_reads_one_key_range_of_snapshots_per_service(app: tuple[bootstrap.Services, ManualClock, InMemoryStore]) -> None:
    services, clock, store = app
    users(services, clock, range(2))
    asked, returned = [], []
    for days in (0, 40):
        for _ in range(days):
            clock.advance(days=1)
            fire_timer("count_snapshots")
        reader = CountingReader(store)
        summarize(reader, clock.now())
        asked.append(reader.requests)
        returned.append(reader.returned)
    assert asked[1] == asked[0], "one key range of snapshots per service, whatever they hold"
    assert returned[1] - returned[0] == READ_DAYS + 1, "of 40 days of snapshots, the last 31 days' and today's"
