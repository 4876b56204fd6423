"""An in-memory twin of the log archive (shared.integrations.log_archive.LogArchive): append blobs by name, with
their creation times, listed by virtual folder as Blob Storage lists them. For the tests' many examples."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from shared.integrations.log_archive import BlobInfo

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class MemoryArchive:
    def __init__(self, container: str = "insights-logs-gatewaylogs") -> None:
        self._container = container
        self._blobs: dict[str, tuple[datetime, bytearray]] = {}
        self._lock = threading.Lock()
        self._created = 0
        self.reads = 0

    @property
    def container(self) -> str:
        return self._container

    def create(self, name: str, data: bytes = b"") -> None:
        """A new blob, or a replaced one: another creation time (a second later than any before, as Azure's)."""
        with self._lock:
            self._created += 1
            self._blobs[name] = (START + timedelta(seconds=self._created), bytearray(data))

    def append(self, name: str, data: bytes) -> None:
        with self._lock:
            if name not in self._blobs:
                self._created += 1
                self._blobs[name] = (START + timedelta(seconds=self._created), bytearray())
            self._blobs[name][1].extend(data)

    def content(self, name: str) -> bytes:
        with self._lock:
            return bytes(self._blobs[name][1])

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._blobs)

    def prefixes(self, prefix: str) -> list[str]:
        with self._lock:
            found = {prefix + name[len(prefix):].split("/", 1)[0] + "/" for name in self._blobs
                     if name.startswith(prefix) and "/" in name[len(prefix):]}
        return sorted(found)

    def blobs(self, prefix: str) -> Iterator[BlobInfo]:
        with self._lock:
            found = [BlobInfo(name, created, len(data)) for name, (created, data) in sorted(self._blobs.items()) if name.startswith(prefix)]
        yield from found

    def read(self, name: str, offset: int, length: int) -> bytes:
        with self._lock:
            data = self._blobs[name][1]
            if offset >= len(data):
                raise ValueError(f"read at {offset} of a blob of {len(data)} bytes")  # Azure answers 416: callers compare first
            self.reads += 1
            return bytes(data[offset:offset + length])
