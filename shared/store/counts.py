"""Count rows: what a summary reads instead of the rows and the history.

Every inventory partition that holds rows has count rows: the flag row (`keys.COUNT_ROW`, "~c") and up to
`keys.COUNT_SHARDS` shards ("~c0".."~c7"). Each holds `Live_{kind}` and `Deleted_{kind}` for each kind of the
partition's family and `Events`, moved in the same transaction as the rows; the partition's counts are their sums. A
write moves one of them: the flag row when it changes a row's flag or listed expiry (rare), else the shard of its row's key, so that
concurrent writers of one partition seldom rewrite the same entity (docs/design.md has the figures). A shard's own
numbers may be negative (a batch counts all its rows in its first row's shard); only the sum is a count. `Events`
holds the outcomes of the events recorded by minute (the last 60) and by hour (the last 24):
`{"m": {"YYYYMMDDHHMM": [applied, stale, duplicate]}, "h": {"YYYYMMDDHH": [...]}}`. Each day partition of the
rejected table has a counter row (`keys.REJECTED_COUNT_ROW`) with the same buckets of one number, the rejections
received. "lastHour" is the current minute and the 59 before it; "lastDay" the current hour and the 23 before it.

The count rows of the families flagged rows live in (gateways, backends) also keep `Flagged`, {RowKey: "token" or
"breaker"} of the partition's rows flagged now (`shared.domain.flags.flag_of`), so `flags` reads what it lists and
no other row. Past Table Storage's 32K characters a string holds, `FlaggedOverflow` = true stands instead, and
`flags` reads that partition's rows, until a recount finds the list short enough again. A count row with neither
(written before the column) does not know its flagged rows either. The flag rows of subscriptions and gateways keep
`Expiring` the same way (`shared.store.expiry_lists`), for `expiring`: both are `shared.store.listed_columns`.

`Workspaces` counts the rows in workspaces apart, moved with the columns above: `{"w1": {"Live_api": 2, ...}}` of the
rows whose RowKey names a workspace (`keys.workspace_of_row_key`: a workspace's rows and its own row), zeros left
out; the service-level counts are the totals less every workspace's. A shard's numbers may be negative here too. Past
the 32K characters a string holds, the text goes on in `Workspaces_1`, `Workspaces_2`, … (read back in that order); a
count row of a partition with no workspace rows has no such column.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.flags import FLAGGED_FAMILIES, flag_of
from shared.domain.kinds import Kind
from shared.domain.model import SCHEMA_VERSION
from shared.domain.outcomes import Outcome
from shared.store import expiry_lists
from shared.store.keys import COUNT_ROW, workspace_of_row_key
from shared.store.listed_columns import ListedColumn
from shared.store.long_text import read_long, write_long
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


WorkspaceCounts = dict[str, Counter[str]]  # workspace -> count column -> n
WORKSPACES = "Workspaces"


def workspace_deltas(changes: Iterable[tuple[Entity | None, Entity | None]]) -> WorkspaceCounts:
    """How each workspace's count columns move (a row keeps its RowKey, so its workspace, from before to after)."""
    moved: WorkspaceCounts = {}
    for before, after in changes:
        keyed = after if after and "RowKey" in after else before
        workspace = workspace_of_row_key(str(keyed["RowKey"])) if keyed and "RowKey" in keyed else ""
        if workspace:
            moved.setdefault(workspace, Counter()).update(deltas([(before, after)]))
    return {w: c for w, c in moved.items() if any(c.values())}


def workspace_counts(row: Entity) -> WorkspaceCounts:
    """A count row's `Workspaces` (over its continuation columns), as counters."""
    text = read_long(row, WORKSPACES)
    loaded: dict[str, dict[str, int]] = json.loads(text) if text else {}
    return {w: Counter(c) for w, c in loaded.items()}


def _set_workspaces(row: Entity, counted_: WorkspaceCounts) -> None:
    """`Workspaces` (and its continuation columns) from the counters, zeros and empty workspaces left out."""
    kept = {w: {c: n for c, n in sorted(counts.items()) if n} for w, counts in sorted(counted_.items())}
    kept = {w: c for w, c in kept.items() if c}
    write_long(row, WORKSPACES, json.dumps(kept, separators=(",", ":")) if kept else "")


def _move_workspaces(row: Entity, moved: WorkspaceCounts | None) -> None:
    if not moved:
        return
    current = workspace_counts(row)
    for workspace, counts in moved.items():
        current.setdefault(workspace, Counter()).update(counts)
    _set_workspaces(row, current)


FlagMoves = dict[str, str | None]  # RowKey -> its flag now (None: no longer flagged)
FLAGGED_LIST: ListedColumn[str] = ListedColumn("Flagged", "FlaggedOverflow", FLAGGED_FAMILIES, flag_of)
FLAGGED, FLAGGED_OVERFLOW = FLAGGED_LIST.column, FLAGGED_LIST.overflow
flag_moves = FLAGGED_LIST.moves  # the rows whose flag changes
flagged = FLAGGED_LIST.listed  # the partition's flagged rows {RowKey: flag}, or None when unknown: then read the rows


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
            moved: Counter[str], outcome: str | None, at: datetime | None, moves: FlagMoves | None = None,
            expiries: expiry_lists.ExpiryMoves | None = None, workspaces: WorkspaceCounts | None = None) -> Entity | None:
    """The count row after `moved` (and its `workspaces` part), the flag `moves` and the `expiries` (the flag row's
    alone) and one `outcome` at `at`; None when none changes it."""
    moved = Counter({column: n for column, n in moved.items() if n})
    if not moved and outcome is None and not moves and not expiries:
        return None
    row: Entity = {**kind_columns(family), **(current or {})}
    row.update({"PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION, **header, "Family": family.value})
    for column, n in moved.items():
        row[column] = int(row.get(column, 0)) + n
    _move_workspaces(row, workspaces)
    if outcome is not None:
        if at is None:
            raise ValueError("an outcome is counted at a time")
        row["Events"] = add_to_buckets(row.get("Events"), EVENT_OUTCOMES.index(Outcome(outcome)), len(EVENT_OUTCOMES), at)
    if keys[1] == COUNT_ROW:
        FLAGGED_LIST.moved(row, moves or {}, current is None)
        expiry_lists.moved(row, expiries or {}, current is None)
    return row


def uncounted(current: Entity | None, keys: tuple[str, str], removed: list[Entity]) -> Entity | None:
    """The count row after deleting `removed` (tombstones: their Kind and IsDeleted read); None when nothing moves."""
    moved = Counter({column: n for column, n in deltas((row, None) for row in removed).items() if n})
    moves = flag_moves((row, None) for row in removed)
    expiries = expiry_lists.expiry_moves((row, None) for row in removed)
    workspaces = workspace_deltas((row, None) for row in removed)
    if not moved and not moves and not expiries:
        return None
    if current is None:  # a shard no write used yet
        first = next(row for row in removed if "Kind" in row)
        header: dict[str, Any] = {k: first[k] for k in ("Service", "ServiceKey") if k in first}
        return counted(None, keys, header, Kind(first["Kind"]).family, moved, None, None, moves, expiries, workspaces)
    row = dict(current)
    for column, n in moved.items():
        row[column] = int(row.get(column, 0)) + n
    _move_workspaces(row, workspaces)
    if keys[1] == COUNT_ROW:
        FLAGGED_LIST.moved(row, moves, False)
        expiry_lists.moved(row, expiries, False)
    return row


def rejected_counted(current: Entity | None, keys: tuple[str, str], at: datetime) -> Entity:
    """The day's rejected counter row after one more rejection received at `at`."""
    row: Entity = {"Rejected": 0, **(current or {}), "PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION}
    row["Rejected"] = int(row["Rejected"]) + 1
    row["Events"] = add_to_buckets(row.get("Events"), 0, 1, at)
    return row


def recounted(current: Entity | None, keys: tuple[str, str], header: dict[str, Any], family: Kind, rows: Iterable[Entity],
              shards: Iterable[Entity] = ()) -> Entity:
    """The flag row from a full scan of its partition's rows, less what the `shards` count (so that the sum is the
    scan); the event buckets kept."""
    row: Entity = {**(current or {}), **kind_columns(family)}
    row.update({"PartitionKey": keys[0], "RowKey": keys[1], "SchemaVersion": SCHEMA_VERSION, **header, "Family": family.value})
    rows = list(rows)
    for column, n in deltas((None, r) for r in rows).items():
        row[column] = int(row.get(column, 0)) + n
    in_workspaces = workspace_deltas((None, r) for r in rows)
    for shard in shards:
        for column, value in shard.items():
            if column.startswith(("Live_", "Deleted_")) and isinstance(value, int):
                row[column] = int(row.get(column, 0)) - value
        for workspace, counts in workspace_counts(shard).items():
            in_workspaces.setdefault(workspace, Counter()).subtract(counts)
    _set_workspaces(row, in_workspaces)
    FLAGGED_LIST.recounted(row, rows)
    expiry_lists.recounted(row, rows)
    return row
