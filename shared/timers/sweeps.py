"""The timers' work: bring token status and stuck-breaker flags up to the clock, then flush alerts.

A sweep reads only the rows it watches (one family's key range, filtered on Kind), never the
whole inventory, so its cost does not grow with users, APIs or subscriptions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.kinds import Kind
from shared.domain.resources import row_ref
from shared.store.keys import of_kind
from shared.store.outbox import LOG, AlertOutbox
from shared.store.ports import StoredRow, TableReader
from shared.store.writer import RowWriter

log = logging.getLogger("apim_inventory.sweeps")


@dataclass(frozen=True)
class SweepResult:
    kind: str
    rows: int
    changed: int
    alerts_sent: int  # published: to the topic, or only to the log (`alerts_to`)
    alerts_pending: int
    alerts_to: str = "topic"


class Sweeper:
    def __init__(self, reader: TableReader, writer: RowWriter, outbox: AlertOutbox, clock: Callable[[], datetime]) -> None:
        self._reader = reader
        self._writer = writer
        self._outbox = outbox
        self._clock = clock

    def sweep_gateway_tokens(self) -> SweepResult:
        return self._sweep(Kind.GATEWAY_INSTANCE)

    def sweep_circuit_breakers(self) -> SweepResult:
        return self._sweep(Kind.CIRCUIT_BREAKER_RULE)

    def _sweep(self, kind: Kind) -> SweepResult:
        rows = [row for page in self._reader.scan(of_kind(kind)) for row in page]
        changed = 0
        for row in rows:
            if row.entity.get("IsDeleted"):
                continue
            if self._writer.apply(row_ref(row.entity), _as_is, loaded=(row, None)).changed:
                changed += 1
        flushed = self._outbox.flush(self._clock())
        result = SweepResult(kind, len(rows), changed, flushed.sent, flushed.pending, flushed.sent_to)
        log.info("sweep %s: %d rows, %d changed, %d alerts %s, %d pending", kind, result.rows, result.changed,
                 result.alerts_sent, "logged" if result.alerts_to == LOG else "sent", result.alerts_pending)
        return result


def _as_is(current: StoredRow | None, _parent: StoredRow | None) -> dict[str, Any]:
    """The row unchanged: the writer brings its flags up to the clock."""
    if current is None:
        raise LookupError("a watched row disappeared during the sweep")
    return dict(current.entity)
