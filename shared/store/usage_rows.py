"""The count columns of the usage table's daily roll-ups, and the packed counts of its hourly contributions: written
by the log reader, read by the reports. One module, so both sides name a column the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.domain.usage import Counters
from shared.store.long_text import read_long, write_long
from shared.store.ports import Entity

_INTS = (("Total", "total"), ("Successful", "successful"), ("Unauthorized", "unauthorized"), ("Failed", "failed"),
         ("Other", "other"), ("BackendFailed", "backend_failed"))


def counters_columns(counters: Counters) -> dict[str, Any]:
    """The counts as columns (durations as doubles, times as ISO text)."""
    columns: dict[str, Any] = {column: getattr(counters, field) for column, field in _INTS}
    columns.update(DurationSumMs=float(counters.duration_sum_ms), DurationMaxMs=float(counters.duration_max_ms),
                   FirstAt=counters.first_at, LastAt=counters.last_at)
    return columns


def counters_of(entity: Entity) -> Counters:
    """A count row's counts (a column that is missing counts as nothing)."""
    counters = Counters()
    for column, field in _INTS:
        setattr(counters, field, int(entity.get(column) or 0))
    counters.duration_sum_ms = float(entity.get("DurationSumMs") or 0.0)
    counters.duration_max_ms = float(entity.get("DurationMaxMs") or 0.0)
    counters.first_at = str(entity.get("FirstAt") or "")
    counters.last_at = str(entity.get("LastAt") or "")
    return counters


# A packed contribution: the ids one read counted for one (service, kind, hour), as one JSON array per id in the long
# text column `Counts` (docs/schema.md). The text is ASCII (JSON's escapes), so a character is 2 bytes stored (UTF-16)
# and 1 on the wire: a pack of PACK_CHARS is 512 KiB of an entity's 1 MiB, and TRANSACTION_CHARS of a transaction's 4 MiB.
PACK_CHARS = 256 * 1024
TRANSACTION_CHARS = 3 * 1024 * 1024


def _entry(resource: str, c: Counters) -> str:
    return json.dumps([resource, c.total, c.successful, c.unauthorized, c.failed, c.other, c.backend_failed,
                       float(c.duration_sum_ms), float(c.duration_max_ms), c.first_at, c.last_at], separators=(",", ":"))


def packs(counts: Mapping[str, Counters]) -> list[tuple[str, int]]:
    """The ids' counts as the `Counts` texts of as few packs as hold them, with how many ids each holds, ids in order:
    the same counts always make the same packs (a range read again lands on the same entities)."""
    texts: list[tuple[str, int]] = []
    entries: list[str] = []
    size = 2
    for resource in sorted(counts):
        entry = _entry(resource, counts[resource])
        if entries and size + len(entry) + 1 > PACK_CHARS:
            texts.append((f"[{','.join(entries)}]", len(entries)))
            entries, size = [], 2
        entries.append(entry)
        size += len(entry) + 1
    if entries:
        texts.append((f"[{','.join(entries)}]", len(entries)))
    return texts


def unpack(entity: Entity) -> list[tuple[str, Counters]]:
    """A packed contribution's ids and their counts."""
    found = []
    for item in json.loads(read_long(entity, "Counts") or "[]"):
        resource, total, successful, unauthorized, failed, other, backend, duration_sum, duration_max, first, last = item
        found.append((str(resource), Counters(int(total), int(successful), int(unauthorized), int(failed), int(other), int(backend),
                                              float(duration_sum), float(duration_max), str(first), str(last))))
    return found


def packed_columns(text: str) -> dict[str, Any]:
    """`text` (one of `packs`) as the columns of one entity: `Counts` and its continuation columns."""
    columns: dict[str, Any] = {}
    write_long(columns, "Counts", text)
    return columns
