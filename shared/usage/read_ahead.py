"""A log archive that reads the next range of a blob on a thread while the caller works on this one: the usage
reader asks for a chunk, cuts it at its last newline, hands it to the sink (parse, tally, writes) and then asks for
the next chunk from that newline, so the bytes after the newline are already here and the rest of the next chunk
is guessed to follow them. A guess that misses costs a read like any other; the bytes served are always exactly the
ones asked for. Below a blob's listed size an append blob's bytes never change within a generation, so a range read
early is the range read now; nothing past the listed size is read ahead."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from shared.integrations.log_archive import BlobInfo, LogArchive


@dataclass
class _Ahead:
    name: str
    offset: int
    future: Future[bytes]


class ReadAhead:
    def __init__(self, archive: LogArchive) -> None:
        self._archive = archive
        self._sizes: dict[str, int] = {}  # the listed sizes: how far a blob may be read ahead
        self._last: tuple[str, int, bytes] | None = None  # the last range served
        self._ahead: _Ahead | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-read-ahead")
        self.hits = self.misses = 0

    @property
    def container(self) -> str:
        return self._archive.container

    def prefixes(self, prefix: str) -> list[str]:
        return self._archive.prefixes(prefix)

    def blobs(self, prefix: str) -> Iterator[BlobInfo]:
        for info in self._archive.blobs(prefix):
            self._sizes[info.name] = info.size
            yield info

    def read(self, name: str, offset: int, length: int) -> bytes:
        data = self._served(name, offset, length)
        if data is None:
            self.misses += 1
            data = self._archive.read(name, offset, length)
        else:
            self.hits += 1
        self._last = (name, offset, data)
        end, size = offset + len(data), self._sizes.get(name, 0)
        if len(data) > 0 and end < size:
            self._ahead = _Ahead(name, end, self._pool.submit(self._archive.read, name, end, min(length, size - end)))
        return data

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _served(self, name: str, offset: int, length: int) -> bytes | None:
        """The range from the last one's tail and the range read ahead (the rest read now), or None."""
        last, ahead, self._ahead = self._last, self._ahead, None
        if ahead is None or ahead.name != name or last is None or last[0] != name:
            if ahead is not None:
                ahead.future.cancel()  # a guess that missed: its bytes (or its failure) are not what was asked for
            return None
        _, last_offset, last_data = last
        if not last_offset <= offset <= ahead.offset == last_offset + len(last_data):
            ahead.future.cancel()
            return None
        data = last_data[offset - last_offset:] + ahead.future.result()  # a failed read raises here, as it would unread
        if len(data) < length:
            more = self._sizes.get(name, 0) - (offset + len(data))
            if more > 0:
                data += self._archive.read(name, offset + len(data), min(length - len(data), more))
        return data[:length]
