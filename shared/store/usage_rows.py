"""The count columns of the usage table's hourly contributions and daily roll-ups: written by the log reader, read
by the reports. One module, so both sides name a column the same way."""

from __future__ import annotations

from typing import Any

from shared.domain.usage import Counters
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
