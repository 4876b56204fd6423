"""The `Expiring` list of a count row: what `expiring` reads instead of every subscription and gateway instance.

The count rows of the families whose rows expire (subscriptions, gateways: `shared.domain.expiry`) keep `Expiring`,
{RowKey: whole seconds since 1970, rounded down} of the partition's live rows that have an expiry, moved in the same
transaction as the rows, as `Flagged` is (`shared.store.counts`). Rounding down only ever lists a row early; the
question reads the row itself for the exact time. Past Table Storage's 32K characters a string holds (about 800
rows of a partition), `ExpiringOverflow` = true stands instead and `expiring` reads that partition's rows of the kind
that expires there, until a recount finds the list short enough again. A count row with neither (written before
the column) does not know its expiring rows either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from shared.domain.expiry import EXPIRY_FAMILIES, expiry_of
from shared.store.keys import MAX_STRING_CHARS, utf16_units
from shared.store.ports import Entity

EXPIRING, EXPIRING_OVERFLOW = "Expiring", "ExpiringOverflow"
ExpiryMoves = dict[str, int | None]  # RowKey -> its expiry now, in seconds (None: no longer listed)


def _seconds(row: Entity | None) -> int | None:
    moment = expiry_of(row)
    return None if moment is None else math.floor(moment.timestamp())


def expiry_moves(changes: Iterable[tuple[Entity | None, Entity | None]]) -> ExpiryMoves:
    """The rows whose listed expiry changes when each goes from its first entity to its second (None: no row)."""
    moves: ExpiryMoves = {}
    for before, after in changes:
        old, new = _seconds(before), _seconds(after)
        if old != new:
            moves[str((after or before or {})["RowKey"])] = new
    return moves


def listed(count_row: Entity) -> dict[str, int] | None:
    """The partition's rows with an expiry {RowKey: seconds}, or None when the count row does not know them."""
    text = count_row.get(EXPIRING)
    if count_row.get(EXPIRING_OVERFLOW) or not isinstance(text, str):
        return None
    found: dict[str, int] = json.loads(text)
    return found


def _store(row: Entity, found: dict[str, int]) -> None:
    text = json.dumps(found, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if utf16_units(text) > MAX_STRING_CHARS:
        row.pop(EXPIRING, None)
        row[EXPIRING_OVERFLOW] = True
    else:
        row[EXPIRING] = text
        row.pop(EXPIRING_OVERFLOW, None)


def moved(row: Entity, moves: ExpiryMoves, new: bool) -> None:
    """`moves` applied to the count row's list in place (a new count row starts from none); an unknown list stays
    unknown."""
    if row.get("Family") not in EXPIRY_FAMILIES or not (moves or new):
        return
    found = {} if new else listed(row)
    if found is None:
        return
    for row_key, seconds in moves.items():
        if seconds is None:
            found.pop(row_key, None)
        else:
            found[row_key] = seconds
    _store(row, found)


def recounted(row: Entity, rows: Iterable[Entity]) -> None:
    """The count row's list from a full scan of its partition's rows, in place."""
    if row.get("Family") in EXPIRY_FAMILIES:
        _store(row, {str(r["RowKey"]): seconds for r in rows if (seconds := _seconds(r)) is not None})
