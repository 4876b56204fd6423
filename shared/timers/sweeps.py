"""The timers' work: bring token status and stuck-breaker flags up to the clock, then flush alerts.

A sweep reads only the rows it watches (one family's key range, filtered on Kind), never the
whole inventory, so its cost does not grow with users, APIs or subscriptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.domain.kinds import Kind
from shared.store.outbox import AlertOutbox
from shared.store.ports import StoredRow
from shared.store.writer import RowWriter

log = logging.getLogger("apim_inventory.sweeps")


@dataclass(frozen=True)
class SweepResult:
    kind: str
    rows: int
    changed: int
    alerts_sent: int
    alerts_pending: int


class Sweeper:
    def __init__(self, writer: RowWriter, outbox: AlertOutbox) -> None:
        self.writer = writer
        self.outbox = outbox

    def sweep_gateway_tokens(self) -> SweepResult:
        return self._sweep(Kind.GATEWAY_INSTANCE)

    def sweep_circuit_breakers(self) -> SweepResult:
        return self._sweep(Kind.CIRCUIT_BREAKER_RULE)

    def _sweep(self, kind: Kind) -> SweepResult:
        rows = self.writer.repo.watched(kind, kind.family)
        changed = 0
        for row in rows:
            if row.entity.get("IsDeleted"):
                continue
            if self.writer.write(row.entity["PartitionKey"], row.entity["RowKey"], None, _as_is, loaded=(row, None)):
                changed += 1
        flushed = self.outbox.flush(self.writer.clock())
        result = SweepResult(kind, len(rows), changed, flushed.sent, flushed.pending)
        log.info("sweep %s: %d rows, %d changed, %d alerts sent, %d pending", kind, result.rows, result.changed,
                 result.alerts_sent, result.alerts_pending)
        return result


def _as_is(current: StoredRow | None, _parent: StoredRow | None) -> dict[str, Any]:
    """The row unchanged: the writer brings its flags up to the clock."""
    if current is None:
        raise LookupError("a watched row disappeared during the sweep")
    return dict(current.entity)
