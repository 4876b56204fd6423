"""Packed hourly contributions (docs/schema.md, "Packed counts"): any ids and counts unpack to themselves, each id in
exactly one pack, packs within an entity's limits (ASCII text, columns of at most 16K characters, at most
PACK_CHARS a pack), and the same counts always make the same packs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.usage import Counters
from shared.store.keys import MAX_PROPERTIES
from shared.store.long_text import CHUNK
from shared.store.usage_rows import PACK_CHARS, packed_columns, packs, unpack

pytestmark = pytest.mark.unit

counters = st.builds(Counters, st.integers(0, 2**40), st.integers(0, 2**31), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9),
                     st.integers(0, 9), st.floats(0, 1e12, allow_nan=False), st.floats(0, 1e6, allow_nan=False),
                     st.just("2026-12-02T13:00:07Z"), st.just("2026-12-02T13:59:59Z"))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=40), counters, max_size=40))
def test_any_ids_unpack_to_themselves_each_in_one_pack(ids: dict[str, Counters]) -> None:
    made = packs(ids)
    assert made == packs(dict(reversed(list(ids.items()))))  # the same counts, the same packs, whatever the order
    found: list[tuple[str, Counters]] = []
    for text, held in made:
        assert text.isascii() and len(text) <= PACK_CHARS
        columns = packed_columns(text)
        assert all(len(value) <= CHUNK for value in columns.values()) and len(columns) < MAX_PROPERTIES - 10
        unpacked = unpack(columns)
        assert len(unpacked) == held
        found += unpacked
    assert sorted(resource for resource, _ in found) == sorted(ids)
    assert dict(found) == ids


def test_a_busy_hour_of_many_ids_is_split_over_packs() -> None:
    ids = {f"user-{n:06d}-{'x' * 60}": Counters(1, 1, 0, 0, 0, 0, 1.5, 1.5, "2026-12-02T13:00:07Z", "2026-12-02T13:00:07Z")
           for n in range(5000)}
    made = packs(ids)
    assert len(made) == 3 and sum(held for _, held in made) == 5000
    assert all(len(text) <= PACK_CHARS for text, _ in made)
