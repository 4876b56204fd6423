"""Count rows: what a summary reads instead of the rows and the history.

Every inventory partition that holds rows has one count row (`keys.COUNT_ROW`): `Live_{kind}` and `Deleted_{kind}`
for each kind of the partition's family, moved in the same transaction as the rows, and `Events`, the outcomes of
the events recorded in the partition by minute (the last 60) and by hour (the last 24):
`{"m": {"YYYYMMDDHHMM": [applied, stale, duplicate]}, "h": {"YYYYMMDDHH": [...]}}`. Each day partition of the
rejected table has a counter row (`keys.REJECTED_COUNT_ROW`) with the same buckets of one number, the rejections
received. "lastHour" is the current minute and the 59 before it; "lastDay" the current hour and the 23 before it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.kinds import Kind
from shared.domain.model import SCHEMA_VERSION
from shared.domain.outcomes import Outcome
from shared.store.ports import Entity

EVENT_OUTCOMES = (Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE)  # the slots of an event bucket
MINUTES, HOURS = 60, 24
_MINUTE, _HOUR = "%Y%m%d%H%M", "%Y%m%d%H"


def kind_columns(family: Kind) -> dict[str, int]:
    """The count columns of a family's partition, at zero."""
    kinds = [k for k in Kind if k.family is family]
    return {f"{state}_{k.value}": 0 for k in kinds for state in ("Live", "Deleted")}


def _state(entity: Entity | None) -> str | None:
    """The count column a row is counted in, or None for no row."""
    if not entity or "Kind" not in entity:
        return None
    return f"{'Deleted' if entity.get('IsDeleted') else 'Live'}_{entity['Kind']}"


def deltas(changes: Iterable[tuple[Entity | None, Entity | None]]) -> Counter[str]:
    """How the count columns move when each row goes from its first entity to its second (None: no row)."""
    moved: Counter[str] = Counter()
    for before, after in changes:
        old, new = _state(before), _state(after)
        if old != new:
            if old:
                moved[old] -= 1
            if new:
                moved[new] += 1
    return moved


def add_to_buckets(events: str | None, slot: int, slots: int, at: datetime) -> str:
    """`Events` with one more in `slot` of `at`'s minute and hour, the buckets past the windows dropped."""
    buckets: dict[str, dict[str, list[int]]] = json.loads(events) if events else {}
    for scale, fmt, keep in (("m", _MINUTE, timedelta(minutes=MINUTES - 1)), ("h", _HOUR, timedelta(hours=HOURS - 1))):
        mine = buckets.setdefault(scale, {})
        oldest = (at - keep).strftime(fmt)
        for key in [k for k in mine if k < oldest]:
            del mine[key]
        counts = mine.setdefault(at.strftime(fmt), [0] * slots)
        counts[slot] += 1
    return json.dumps(buckets, sort_keys=True, separators=(",", ":"))


WINDOWS = ("lastHour", "lastDay")


def window_start(now: datetime, window: str) -> datetime:
    """The first moment a window counts: the start of the minute 59 minutes back, or of the hour 23 hours back."""
    if window == "lastHour":
        return (now - timedelta(minutes=MINUTES - 1)).replace(second=0, microsecond=0)
    return (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)


def window_totals(events: str | None, now: datetime, slots: int = len(EVENT_OUTCOMES)) -> dict[str, list[int]]:
    """The buckets summed over the windows: {"lastHour": [...], "lastDay": [...]}."""
    buckets: dict[str, dict[str, list[int]]] = json.loads(events) if events else {}
    totals = {"lastHour": [0] * slots, "lastDay": [0] * slots}
    for label, scale, fmt, keep in (("lastHour", "m", _MINUTE, timedelta(minutes=MINUTES - 1)),
                                    ("lastDay", "h", _HOUR, timedelta(hours=HOURS - 1))):
        low, high = (now - keep).strftime(fmt), now.strftime(fmt)
        for key, counts in buckets.get(scale, {}).items():
            if low <= key <= high:
                totals[label] = [a + b for a, b in zip(totals[label], counts, strict=True)]
    return totals


def counted(current: Entity | None, keys: tuple[str, str], header: dict[str, Any], family: Kind,
            moved: Counter[str], outcome: str | None, at: datetime | None) -> Entity | None:
    """The count row after `moved` and one `outcome` at `at`; None when neither changes it."""
    moved = Counter({column: n for column, n in moved.items() if n})
    if not moved and outcome is None:
        return None
    row: Entity = {**kind_columns(family), **(current or {})}
    row.update({"PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION, **header, "Family": family.value})
    for column, n in moved.items():
        row[column] = int(row.get(column, 0)) + n
    if outcome is not None:
        if at is None:
            raise ValueError("an outcome is counted at a time")
        row["Events"] = add_to_buckets(row.get("Events"), EVENT_OUTCOMES.index(Outcome(outcome)), len(EVENT_OUTCOMES), at)
    return row


def rejected_counted(current: Entity | None, keys: tuple[str, str], at: datetime) -> Entity:
    """The day's rejected counter row after one more rejection received at `at`."""
    row: Entity = {"Rejected": 0, **(current or {}), "PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION}
    row["Rejected"] = int(row["Rejected"]) + 1
    row["Events"] = add_to_buckets(row.get("Events"), 0, 1, at)
    return row


def recounted(current: Entity | None, keys: tuple[str, str], header: dict[str, Any], family: Kind, rows: Iterable[Entity]) -> Entity:
    """The count row from a full scan of its partition's rows; the event buckets kept."""
    row: Entity = {**(current or {}), **kind_columns(family)}
    row.update({"PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION, **header, "Family": family.value})
    for column, n in deltas((None, r) for r in rows).items():
        row[column] = int(row.get(column, 0)) + n
    return row
