"""The log archive as the log reader (shared.logread) sees it: a container of append blobs, one per source and hour, named
`{unit}y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json` as Azure Monitor archives every log (the gateway logs' unit is a
service's `resourceId=/SUBSCRIPTIONS/…/SERVICE/{NAME}/`, the Activity Log's a subscription's). A Protocol only:
the capability reads through it, the composition root gives it `log_blobs.BlobArchive` (or a twin in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class BlobInfo:
    name: str
    created: datetime  # tells a replaced blob: an append blob's ETag changes on every append
    size: int


class LogArchive(Protocol):
    @property
    def container(self) -> str:
        """The container's name (the checkpoints' partition)."""

    def prefixes(self, prefix: str) -> list[str]:
        """The virtual folders right under `prefix` (a listing with delimiter "/"), each ending in "/"."""

    def blobs(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob whose name starts with `prefix`, in name order."""

    def read(self, name: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`, which must be below the blob's size (the caller compares first)."""
