"""The in-memory twin's key index against a plain dict: every key written and not deleted is read back in key order,
through folds of the short list and of deleted keys (the index is a long and a short sorted list, merged as read)."""

from __future__ import annotations

import random

import pytest

from shared.store.memory import _Rows
from shared.store.ports import Query, StoredRow, Table


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(4))
def test_the_key_index_reads_what_a_dict_holds(seed: int) -> None:
    chance = random.Random(seed)
    rows = _Rows()
    oracle: dict[tuple[str, str], StoredRow] = {}
    for step in range(12_000):
        key = (f"p{chance.randrange(4)}", f"r{chance.randrange(3000):05d}")
        if chance.random() < 0.35 and key in oracle:
            if chance.random() < 0.5:
                del rows[key]
            else:
                rows.pop(key)
            del oracle[key]
        else:
            rows[key] = oracle[key] = StoredRow({"PartitionKey": key[0], "RowKey": key[1], "n": step}, str(step))
        if step % 997 == 0 or step > 11_990:
            for partition in ("p0", "p3"):
                got = [k for k, _ in rows.in_range(Query(Table.INVENTORY, partition, partition + "\0"), None)]
                assert got == sorted(k for k in oracle if k[0] == partition), step
