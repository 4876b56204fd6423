"""The `Expiring` list of a count row: what `expiring` reads instead of every subscription and gateway instance.

The flag rows of the families whose rows expire (subscriptions, gateways: `shared.domain.expiry`) keep `Expiring`,
{RowKey: whole seconds since 1970, rounded down} of the partition's live rows that have an expiry, moved in the same
transaction as the rows, as `Flagged` is (`shared.store.counts`): both are a `shared.store.listed_columns.ListedColumn`.
Rounding down only ever lists a row early; the question reads the row itself for the exact time. Past Table Storage's
32K characters a string holds (about 800 rows of a partition), `ExpiringOverflow` = true stands instead and `expiring`
reads that partition's rows of the kind that expires there, until a recount finds the list short enough again. A count
row with neither (written before the column) does not know its expiring rows either.
"""

from __future__ import annotations

import math

from shared.domain.expiry import EXPIRY_FAMILIES, expiry_of
from shared.store.listed_columns import ListedColumn
from shared.store.ports import Entity

ExpiryMoves = dict[str, int | None]  # RowKey -> its expiry now, in seconds (None: no longer listed)


def _seconds(row: Entity | None) -> int | None:
    moment = expiry_of(row)
    return None if moment is None else math.floor(moment.timestamp())


EXPIRING_LIST: ListedColumn[int] = ListedColumn("Expiring", "ExpiringOverflow", EXPIRY_FAMILIES, _seconds)
EXPIRING, EXPIRING_OVERFLOW = EXPIRING_LIST.column, EXPIRING_LIST.overflow
expiry_moves = EXPIRING_LIST.moves  # the rows whose listed expiry changes
listed = EXPIRING_LIST.listed  # the partition's rows with an expiry {RowKey: seconds}, or None when unknown
moved = EXPIRING_LIST.moved
recounted = EXPIRING_LIST.recounted
