"""A workspace's deletion carried to every row in it (shared.store.workspace_cascade): `cascade` after the workspace's
row is deleted, `inherit` after every event write in a workspace. Together they leave a row deleted exactly when the
newest of its own changes and its workspace's deletions is a deletion, in any order, a late event, a cut-short
cascade or a race between the two included. The workspace's row is deleted as the sync deletes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from devtools.worker import decode_event
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.outcomes import Outcome
from shared.domain.resources import ResourceRef, parse_path, parse_service_id
from shared.ingest.pipeline import EventProcessor
from shared.store import workspace_cascade
from shared.store.memory import InMemoryStore
from shared.store.ports import Store
from shared.store.workspace_cascade import CASCADED, DELETED_TYPE, cascade, unfinished
from tests.conftest import fresh_settings, table_repo
from tests.support import CLOCK, PREFIX, SERVICE_ID, T0, event, history_records, inventory_rows, processor_over, stored_row
from tests.test_counts import Crashing
from tests.test_threads import run_together

SERVICE = parse_service_id(SERVICE_ID)
SYNCED, TOMBSTONED = "ApimInventory.Synced", "ApimInventory.SyncTombstoned"  # what the sync writes


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("azurite", marks=pytest.mark.azurite)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore()
    else:
        yield table_repo(request.getfixturevalue("azurite"))


def ref_of(path: str) -> ResourceRef:
    return parse_path(SERVICE, path)


def workspace(name: str) -> ResourceRef:
    ref = ref_of(f"workspaces/{name}")
    assert ref.kind is Kind.WORKSPACE
    return ref


def stamp(second: float, event_id: str) -> Stamp:
    return Stamp(T0 + timedelta(seconds=second), event_id)


def sync_sees(processor: EventProcessor, path: str, second: float, event_id: str = "", *, gone: bool = False) -> None:
    """What a full sync writes for a resource it lists (or tombstones)."""
    op, kind = (Op.DELETED, TOMBSTONED) if gone else (Op.SYNCED, SYNCED)
    ref = ref_of(path)
    processor.writer.apply(ref, [Change(ref, op, stamp(second, event_id or f"sync-{second}"), kind)])


def delete_workspace(store: Store, processor: EventProcessor, name: str, second: float) -> list[Any]:
    """The sync's deletion of the workspace's row, then its cascade."""
    sync_sees(processor, f"workspaces/{name}", second, gone=True)
    return cascade(store, store, processor.writer, workspace(name))


def send(processor: EventProcessor, *payloads: dict[str, Any]) -> list[Outcome]:
    return [processor.handle(decode_event(payload)).outcome for payload in payloads]


def rows_by_path(store: Store) -> dict[str, dict[str, Any]]:
    return {r["Path"]: r for r in inventory_rows(store)}


def workspace_row(store: Store, name: str) -> dict[str, Any] | None:
    row, _ = store.load(workspace(name), fresh=True)
    return row.entity if row else None


# One of every kind a workspace holds: events for those events announce, the sync's writes for the rest.
EVENTS = [("APICreated", "apis/orders"), ("APICreated", "apis/orders;rev=2"), ("APIReleaseCreated", "apis/orders/releases/r1"),
          ("ProductCreated", "products/starter"), ("SubscriptionCreated", "subscriptions/sub1")]


def synced_only(where: str) -> list[str]:
    """The kinds no event announces, which the sync writes: a product's API and group links (a workspace's product
    lists them as `apiLinks`/`groupLinks`), a backend and its circuit-breaker rule."""
    links = ["products/starter/apiLinks/link1", "products/starter/groupLinks/link2"] if where else [
        "products/starter/apis/orders", "products/starter/groups/developers"]
    return [f"{where}{path}" for path in (*links, "backends/payments", "backends/payments/circuit-breaker/rules/r1")]


def populate(processor: EventProcessor, where: str, second: float) -> list[str]:
    """Every kind in one place ("" for the service level, "workspaces/w/" for a workspace); the paths written."""
    for n, (suffix, path) in enumerate(EVENTS):
        send(processor, event(suffix, f"/{where}{path}", at=second, event_id=f"{where}{n}"))
    for path in synced_only(where):
        sync_sees(processor, path, second)
    return [f"{where}{path}" for _, path in EVENTS] + synced_only(where)


def test_cascade_deletes_every_row_of_the_workspace_and_nothing_else(store: Store) -> None:
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    sync_sees(processor, "workspaces/wks2", 0)
    doomed = populate(processor, "workspaces/wks1/", 1)
    kept = populate(processor, "workspaces/wks2/", 1) + populate(processor, "", 1)
    assert {ref_of(p).family for p in doomed} == {Kind.API, Kind.PRODUCT, Kind.SUBSCRIPTION, Kind.BACKEND}
    assert not unfinished(workspace_row(store, "wks1"))

    sync_sees(processor, "workspaces/wks1", 10, gone=True)
    assert unfinished(workspace_row(store, "wks1"))
    applied = cascade(store, store, processor.writer, workspace("wks1"))
    assert sum(a.changed for a in applied) == len(doomed)

    rows = rows_by_path(store)
    for path in doomed:
        row = rows[path]
        assert (row["IsDeleted"], row["LastEventType"], row["DeletedAt"]) == (True, DELETED_TYPE, T0 + timedelta(seconds=10)), path
    for path in kept:
        assert rows[path]["IsDeleted"] is False, path
    assert rows["workspaces/wks2"]["IsDeleted"] is False
    ws = workspace_row(store, "wks1")
    assert ws is not None and ws[CASCADED] == ws["LastDeleteEventKey"] and not unfinished(ws)


def test_cascade_is_idempotent_and_a_second_writes_nothing(store: Store) -> None:
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    populate(processor, "workspaces/wks1/", 1)
    assert delete_workspace(store, processor, "wks1", 10)
    before = [(r["PartitionKey"], r["RowKey"]) for r in inventory_rows(store)]
    etags = {key: stored_row(store, *key).etag for key in before}  # type: ignore[union-attr]
    assert not any(a.changed for a in cascade(store, store, processor.writer, workspace("wks1")))
    assert {key: stored_row(store, *key).etag for key in before} == etags  # type: ignore[union-attr]
    # Deleted again later (by a second sync that saw it gone again): a newer deletion, so the cascade runs again.
    sync_sees(processor, "workspaces/wks1", 20, gone=True)
    assert unfinished(workspace_row(store, "wks1"))
    cascade(store, store, processor.writer, workspace("wks1"))
    assert not unfinished(workspace_row(store, "wks1"))


def test_a_cascade_asks_before_each_transaction_and_stops_unfinished_when_told(store: Store) -> None:
    """`between` (the sync's lease and budget) is asked before each partition's transaction with what was applied so
    far; False stops the cascade there, the workspace's row left `unfinished`, and a later cascade goes on from there."""
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    doomed = populate(processor, "workspaces/wks1/", 1)
    sync_sees(processor, "workspaces/wks1", 10, gone=True)
    asked: list[int] = []  # rows written when asked

    def between(applied: list[Any]) -> bool:
        asked.append(sum(a.changed for a in applied))
        return len(asked) < 3

    first = cascade(store, store, processor.writer, workspace("wks1"), between=between)
    assert len(asked) == 3 and asked[0] == 0 < asked[1] < asked[2] == sum(a.changed for a in first) < len(doomed)
    rows = rows_by_path(store)
    assert sum(rows[p]["IsDeleted"] for p in doomed) == asked[2] and unfinished(workspace_row(store, "wks1"))

    rest = cascade(store, store, processor.writer, workspace("wks1"), between=lambda applied: True)
    assert sum(a.changed for a in rest) == len(doomed) - asked[2]
    assert all(r["IsDeleted"] for p, r in rows_by_path(store).items() if p in doomed) and not unfinished(workspace_row(store, "wks1"))


def test_a_cascade_of_no_deleted_workspace_does_nothing(store: Store) -> None:
    processor = processor_over(store, CLOCK.now)
    assert cascade(store, store, processor.writer, workspace("ghost")) == []
    sync_sees(processor, "workspaces/wks1", 0)
    populate(processor, "workspaces/wks1/", 1)
    assert cascade(store, store, processor.writer, workspace("wks1")) == []
    assert not any(r["IsDeleted"] for r in inventory_rows(store))


def test_a_late_event_after_the_cascade_stays_deleted_and_a_newer_one_revives(store: Store) -> None:
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    send(processor, event("APICreated", "/workspaces/wks1/apis/orders", at=1))
    delete_workspace(store, processor, "wks1", 10)
    # Late: the event happened before the deletion. Its row (a new one, and an existing one) is written deleted.
    outcomes = send(processor, event("APIUpdated", "/workspaces/wks1/apis/orders", at=5, event_id="late1"),
                    event("ProductCreated", "/workspaces/wks1/products/late", at=6, event_id="late2"),
                    event("CircuitBreaker.Opened", "/workspaces/wks1/backends/b1/circuit-breaker/rules/r1", at=7, event_id="late3",
                          data={"backendName": "b1", "circuitBreaker": {"rules": {"r1": {}}}}))
    assert outcomes == [Outcome.STALE] * 3
    rows = rows_by_path(store)
    for path in ("workspaces/wks1/apis/orders", "workspaces/wks1/products/late", "workspaces/wks1/backends/b1",
                 "workspaces/wks1/backends/b1/circuit-breaker/rules/r1"):
        assert (rows[path]["IsDeleted"], rows[path]["LastEventType"]) == (True, DELETED_TYPE), path
    assert {r["EventId"]: r["Stale"] for r in history_records(store) if r["EventId"].startswith("late")} == {
        "late1": True, "late2": True, "late3": True}
    # Newer than the deletion: the workspace was made again (the sync has not seen it yet), and so was its API.
    assert send(processor, event("APICreated", "/workspaces/wks1/apis/orders", at=15)) == [Outcome.APPLIED]
    assert send(processor, event("ProductUpdated", "/workspaces/wks1/products/late", at=16)) == [Outcome.APPLIED]
    rows = rows_by_path(store)
    assert rows["workspaces/wks1/apis/orders"]["IsDeleted"] is False
    assert rows["workspaces/wks1/products/late"]["IsDeleted"] is False
    assert rows["workspaces/wks1"]["IsDeleted"] is True
    # The sync sees the workspace again; a later cascade of the old deletion leaves the newer rows alive.
    sync_sees(processor, "workspaces/wks1", 20)
    cascade(store, store, processor.writer, workspace("wks1"))
    rows = rows_by_path(store)
    assert rows["workspaces/wks1/apis/orders"]["IsDeleted"] is False and rows["workspaces/wks1"]["IsDeleted"] is False
    assert rows["workspaces/wks1/backends/b1"]["IsDeleted"] is True  # nothing newer than the deletion came for it


def test_deleting_a_workspace_api_by_event_after_the_workspace_is_gone_keeps_it_deleted(store: Store) -> None:
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    send(processor, event("APICreated", "/workspaces/wks1/apis/orders", at=1), event("APICreated", "/workspaces/wks1/apis/orders;rev=2", at=1))
    delete_workspace(store, processor, "wks1", 10)
    send(processor, event("APIDeleted", "/workspaces/wks1/apis/orders", at=12))  # its own deletion, newer
    rows = rows_by_path(store)
    assert rows["workspaces/wks1/apis/orders"]["LastEventType"] == PREFIX + "APIDeleted"
    assert rows["workspaces/wks1/apis/orders;rev=2"]["LastEventType"] == PREFIX + "APIDeleted"
    assert all(r["IsDeleted"] for r in rows.values())


@pytest.mark.parametrize("after", [1, 2, 3, 5, 8])
def test_a_cut_short_cascade_is_finished_by_the_next(store: Store, after: int) -> None:
    """The store goes away `after` calls into the cascade: what was written stays, the workspace's row says the
    cascade is unfinished, and the next cascade (the next sync's) completes it."""
    processor = processor_over(store, CLOCK.now)
    sync_sees(processor, "workspaces/wks1", 0)
    doomed = populate(processor, "workspaces/wks1/", 1)
    sync_sees(processor, "workspaces/wks1", 10, gone=True)
    crashing = Crashing(store)
    crashing.countdown = after
    with pytest.raises(ServiceRequestError):
        cascade(crashing, crashing, processor_over(crashing, CLOCK.now).writer, workspace("wks1"))  # type: ignore[arg-type]
    assert unfinished(workspace_row(store, "wks1"))
    assert not all(rows_by_path(store)[p]["IsDeleted"] for p in doomed)
    cascade(store, store, processor.writer, workspace("wks1"))
    rows = rows_by_path(store)
    assert all(rows[p]["IsDeleted"] for p in doomed)
    assert not unfinished(workspace_row(store, "wks1"))


@pytest.mark.azurite
def test_a_process_whose_cache_holds_the_workspace_alive_still_deletes_a_late_write(azurite: Any) -> None:
    """Two processes (two Table stores, each with its own row cache) over one set of tables: the first has read the
    workspace alive; the second deletes it and cascades before the first writes a late event's new row. The first's
    read after its write goes to the table, not its cache, and finds the deletion."""
    settings = fresh_settings()
    first_store, second_store = table_repo(azurite, settings), table_repo(azurite, settings)
    first, second = processor_over(first_store, CLOCK.now), processor_over(second_store, CLOCK.now)
    sync_sees(first, "workspaces/wks1", 0)
    assert send(first, event("APICreated", "/workspaces/wks1/apis/orders", at=1)) == [Outcome.APPLIED]  # caches the workspace
    delete_workspace(second_store, second, "wks1", 10)
    assert send(first, event("ProductCreated", "/workspaces/wks1/products/late", at=5)) == [Outcome.APPLIED]
    rows = rows_by_path(second_store)
    assert rows["workspaces/wks1/apis/orders"]["IsDeleted"] is True
    assert (rows["workspaces/wks1/products/late"]["IsDeleted"], rows["workspaces/wks1/products/late"]["LastEventType"]) == (True, DELETED_TYPE)


def _race(store_for: Any, rounds: int) -> None:
    """Each round: a workspace alive, then at once an old event (a new row in it) and its deletion with the cascade,
    each from its own process (store). Whichever wins, the row ends deleted."""
    stores = [store_for(), store_for()]
    processors = [processor_over(s, CLOCK.now) for s in stores]
    for n in range(rounds):
        name = f"race{n}"
        sync_sees(processors[0], f"workspaces/{name}", 0)

        def work(i: int, name: str = name, n: int = n) -> None:
            if i == 0:
                send(processors[0], event("APICreated", f"/workspaces/{name}/apis/a", at=5, event_id=f"r{n}"))
            else:
                delete_workspace(stores[1], processors[1], name, 10)

        errors = run_together(work, threads=2)
        assert not errors, errors
        row = rows_by_path(stores[0])[f"workspaces/{name}/apis/a"]
        assert row["IsDeleted"] is True, (n, row)


@pytest.mark.unit
def test_an_event_racing_a_cascade_ends_deleted_in_memory() -> None:
    shared = InMemoryStore()
    _race(lambda: shared, rounds=60)


@pytest.mark.slow
def test_an_event_racing_a_cascade_ends_deleted_on_azurite(azurite: Any) -> None:
    settings = fresh_settings()
    _race(lambda: table_repo(azurite, settings), rounds=20)


@pytest.mark.unit
def test_inherit_outside_any_workspace_reads_nothing() -> None:
    store = InMemoryStore()
    processor = processor_over(store, CLOCK.now)
    reads: list[Any] = []

    class Counting:
        def load(self, ref: ResourceRef, *, fresh: bool = False) -> Any:
            reads.append(ref)
            return store.load(ref, fresh=fresh)

    assert workspace_cascade.inherit(Counting(), processor.writer, [ref_of("apis/a"), ref_of("users/u")]) == []  # type: ignore[arg-type]
    assert workspace_cascade.deletion_of(Counting(), ref_of("apis/a")) == []  # type: ignore[arg-type]
    assert reads == []
    workspace_cascade.inherit(Counting(), processor.writer, [ref_of("workspaces/w/apis/a"), ref_of("workspaces/w/products/p")])  # type: ignore[arg-type]
    assert [r.path for r in reads] == ["workspaces/w"]  # one read per workspace named
