"""A sweep's dry run: the transitions and alerts a sweep would make at a given time and policy, and the pending
alerts its flush would publish, worked out from the same rows and the same rules as the sweep (`shared.domain.flags`),
writing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.flags import Alert, FlagPolicy
from shared.domain.kinds import Kind
from shared.domain.resources import row_ref
from shared.store.keys import of_kind
from shared.store.ports import Entity, TableReader
from shared.store.writer import brought_up

SWEPT = (Kind.GATEWAY_INSTANCE, Kind.CIRCUIT_BREAKER_RULE)  # the gateway token sweep's rows, then the breaker sweep's


@dataclass(frozen=True)
class Transition:
    """One row a sweep would rewrite: the columns that would change (before, after), and the alerts raised."""

    row: Entity
    changes: dict[str, tuple[Any, Any]]
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class SweepPreview:
    kind: Kind
    rows: int
    transitions: tuple[Transition, ...]


def preview(reader: TableReader, policy: FlagPolicy, now: datetime, kind: Kind) -> SweepPreview:
    """What `Sweeper._sweep(kind)` would do at `now` under `policy`: the same rows, each brought up to the clock."""
    rows = [row.entity for page in reader.scan(of_kind(kind)) for row in page]
    found: list[Transition] = []
    for row in rows:
        if row.get("IsDeleted"):
            continue
        prepared = brought_up(row_ref(row), row, dict(row), now, policy)
        if prepared is None:
            continue
        new, alerts = prepared
        changes = {column: (row.get(column), new.get(column)) for column in sorted(set(row) | set(new))
                   if row.get(column) != new.get(column)}
        found.append(Transition(new, changes, alerts))
    return SweepPreview(kind, len(rows), tuple(found))
