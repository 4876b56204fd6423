"""The read-ahead archive serves exactly the bytes the archive holds, whatever the reads asked (the usage reader's
pattern: each read from somewhere in the last one's range, or anywhere else), and reads ahead only below the
listed size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.memory_archive import MemoryArchive
from shared.usage.read_ahead import ReadAhead

pytestmark = pytest.mark.unit
NAMES = ("a/y=2026/m=12/d=02/h=10/m=00/PT1H.json", "a/y=2026/m=12/d=02/h=11/m=00/PT1H.json")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=2, max_size=2),
       st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1), st.integers(1, 120), st.booleans()), max_size=30))
def test_every_read_gives_the_archives_bytes(contents: list[bytes], reads: list[tuple[int, float, int, bool]]) -> None:
    archive = MemoryArchive()
    for name, data in zip(NAMES, contents, strict=True):
        archive.append(name, data)
    ahead = ReadAhead(archive)
    assert {info.name for prefix in ("a/",) for info in ahead.blobs(prefix)} == set(NAMES)
    last: tuple[int, int, int] | None = None
    for blob, where, length, follow in reads:
        size = len(contents[blob])
        follows = follow and last is not None and last[0] == blob and last[1] + last[2] < size
        # from within the last range, as the reader goes on from its last newline; or anywhere
        offset = min(last[1] + round(where * last[2]) if follows and last else round(where * (size - 1)), size - 1)
        got = ahead.read(NAMES[blob], offset, length)
        assert got == contents[blob][offset:offset + length]
        last = (blob, offset, len(got))
    ahead.close()


def test_a_blob_read_in_chunks_from_each_ones_last_newline_is_read_ahead() -> None:
    archive = MemoryArchive()
    data = b"".join(b"x" * (n % 37) + b"\n" for n in range(400))
    archive.append(NAMES[0], data)
    ahead = ReadAhead(archive)
    list(ahead.blobs("a/"))
    offset = 0
    while offset < len(data):
        chunk = ahead.read(NAMES[0], offset, min(500, len(data) - offset))
        assert chunk == data[offset:offset + 500]
        offset += chunk.rfind(b"\n") + 1
    ahead.close()
    assert ahead.misses == 1 and ahead.hits > 10
