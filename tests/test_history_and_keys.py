"""History records, duplicates after partial failures, key encoding and Table Storage limits."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.azurite import Azurite
from devtools.worker import decode_event
from shared.domain.errors import PermanentEventError
from shared.domain.outcomes import Outcome
from shared.domain.resources import parse_path, parse_service_id
from shared.ingest.pipeline import EventProcessor
from shared.queries.inventory import InventoryQueries
from shared.store.keys import check_entity, decode_part, encode_part, path_from_row_key, resource_keys
from shared.store.memory import InMemoryStore
from tests.conftest import table_repo
from tests.support import CLOCK, SERVICE_ID, event, feed_entries, history_records, inventory_rows, processor_over


def test_history_of_one_resource_newest_first_with_stale_marked(azurite: Azurite) -> None:
    repo = table_repo(azurite)
    processor = processor_over(repo, CLOCK.now)
    outcomes = [processor.handle(decode_event(e)).outcome for e in [
        event("ProductCreated", "/products/starter", at=1, event_id="p1"),
        event("ProductDeleted", "/products/starter", at=9, event_id="p3"),
        event("ProductUpdated", "/products/Starter", at=5, event_id="p2", schema="eventgrid"),
        event("ProductDeleted", "/products/starter", at=9, event_id="p3"),
        event("ProductCreated", "/products/other", at=2, event_id="o1"),
    ]]
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE, Outcome.APPLIED]
    history = InventoryQueries(repo, repo, CLOCK.now).history("contoso/products/starter")
    assert [h["EventId"] for h in history] == ["p3", "p2", "p1"]
    assert [h["Stale"] for h in history] == [False, True, False]
    assert [h["Change"] for h in history] == ["deleted", "updated", "created"]
    assert history[1]["Schema"] == "eventGrid" and history[1]["Subject"] == "/products/Starter"


class FailFeedOnce(InMemoryStore):
    """Writes the record, the row and the count row, then fails the feed's transaction once, as a crash between
    the two would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_feed = True

    def add_feed(self, records: list[dict[str, Any]]) -> None:
        if self.fail_next_feed:
            self.fail_next_feed = False
            raise ConnectionError("store unreachable")
        super().add_feed(records)


@pytest.mark.unit
def test_redelivery_after_a_crash_before_the_feed_writes_the_feed() -> None:
    repo = FailFeedOnce()
    processor = processor_over(repo, CLOCK.now)
    payload = event("UserCreated", "/users/alice")
    with pytest.raises(ConnectionError):
        processor.handle(decode_event(payload))
    (row,) = inventory_rows(repo)
    assert row["LastEventId"] == payload["id"] and len(history_records(repo)) == 1 and feed_entries(repo) == []
    assert processor.handle(decode_event(payload)).outcome is Outcome.DUPLICATE  # Event Grid delivers again
    (record,) = history_records(repo)
    assert sorted(e["RowKey"][0] for e in feed_entries(repo)) == ["e", "r"]
    assert {(e["HistoryPartition"], e["HistoryRow"]) for e in feed_entries(repo)} == {(record["PartitionKey"], record["RowKey"])}
    assert record["Duplicates"] == 1


def test_odd_names_are_stored_with_escaped_keys_and_original_text(azurite: Azurite) -> None:
    repo = table_repo(azurite)
    processor = processor_over(repo, CLOCK.now)
    names = ["a#b", "q?x", "back\\slash", "pipe|name", "per%cent", "tab\tname", "naïve-ユーザー", "it's"]
    for n, name in enumerate(names):
        result = processor.handle(decode_event(event("UserCreated", f"/users/{name}", data={}, event_id=f"n{n}")))
        assert result.outcome is Outcome.APPLIED, result
    rows = list(inventory_rows(repo))
    assert sorted(r["Name"] for r in rows) == sorted(names)
    for row in rows:
        assert path_from_row_key(row["RowKey"]) == row["Path"].lower()
        assert not any(c in row["PartitionKey"] + row["RowKey"] for c in "/\\#?\t")


@pytest.mark.unit
@settings(max_examples=300)
@given(st.text())
def test_key_encoding_is_reversible_and_never_emits_forbidden_characters(text: str) -> None:
    try:
        encoded = encode_part(text)
    except PermanentEventError:
        assert any(0xD800 <= ord(c) < 0xE000 for c in text)
        return
    assert decode_part(encoded) == text
    assert not any(c in encoded for c in "/\\#?|") and all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 for c in encoded)


@pytest.mark.unit
def test_keys_group_children_with_their_parent() -> None:
    service = parse_service_id(SERVICE_ID)
    api, rev, release = (parse_path(service, p) for p in ("/apis/Orders", "/apis/orders;Rev=3", "/apis/orders/releases/r1"))
    assert resource_keys(api)[0] == resource_keys(rev)[0] == resource_keys(release)[0]
    assert rev.name == "orders;rev=3" and rev.revision == "3" and rev.parent and rev.parent.key == api.key
    pk, rk = resource_keys(parse_path(service, "/gateways/edge/pod-1"))
    assert pk.startswith("gateway|contoso|") and rk == "gateways|edge|instances|pod-1"


@pytest.mark.unit
def test_entity_limits_are_enforced_before_writing() -> None:
    base = {"PartitionKey": "p", "RowKey": "r"}
    check_entity({**base, "A": "x" * 32 * 1024})
    with pytest.raises(PermanentEventError, match="entity-too-large"):
        check_entity({**base, "A": "x" * (32 * 1024 + 1)})
    with pytest.raises(PermanentEventError, match="entity-too-large"):
        check_entity({**base, "A": "\U0001F600" * (16 * 1024 + 1)})  # UTF-16: two units each
    with pytest.raises(PermanentEventError, match="entity-too-large"):
        check_entity({**base, **{f"P{i}": i for i in range(253)}})
    with pytest.raises(PermanentEventError, match="entity-too-large"):
        check_entity({**base, **{f"P{i}": "y" * 30000 for i in range(20)}})
    check_entity({**base, "When": datetime(2026, 1, 1, tzinfo=timezone.utc), "Flag": True})


@pytest.mark.unit
def test_resource_uri_without_providers_segment_is_accepted(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    """The documented resourceUri format omits /providers/; the examples include it."""
    uri = SERVICE_ID.replace("/providers/", "/") + "/products/Gold"
    result = memory_processor.handle(decode_event(event("ProductCreated", "/products/gold", data={"resourceUri": uri})))
    assert result.outcome is Outcome.APPLIED
    (row,) = inventory_rows(memory_store)
    assert row["Path"] == "products/Gold" and row["ResourceId"].startswith(SERVICE_ID)


@pytest.mark.unit
def test_the_threads_of_a_process_write_to_different_count_shards() -> None:
    """Each thread keeps one shard; up to COUNT_SHARDS threads take different ones, so a process's writers do not meet
    on a count row, and one thread's writes of a partition touch one shard whatever rows they write."""
    import threading

    from shared.store.keys import COUNT_ROW, COUNT_SHARDS, count_shard

    taken: list[list[str]] = [[] for _ in range(COUNT_SHARDS)]
    ready = threading.Barrier(COUNT_SHARDS)  # all alive at once, so none reuses another's thread id

    def writer(n: int) -> None:
        ready.wait()
        taken[n] = [count_shard() for _ in range(50)]

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(COUNT_SHARDS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(set(shards)) == 1 for shards in taken)
    assert {shards[0] for shards in taken} == {f"{COUNT_ROW}{n}" for n in range(COUNT_SHARDS)}
