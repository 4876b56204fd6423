"""A listed column of the flag row: {RowKey: value} of the partition's rows that have a value now, as one compact JSON
string, so a question reads what it lists and no other row. `Flagged` (`shared.store.counts`) and `Expiring`
(`shared.store.expiry_lists`) are two of them, with their own value of a row.

Moved in the same transaction as the rows (the moves of a write applied to the list; a new flag row starts from an
empty list) and rebuilt by a recount. Past Table Storage's 32K characters a string holds, the list is not written and
its overflow column (`true`) stands instead, until a recount finds the list short enough again; a flag row with
neither (written before the column) does not know its rows either: then the partition's rows are the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.domain.kinds import Kind
from shared.store.keys import MAX_STRING_CHARS, utf16_units
from shared.store.ports import Entity

V = TypeVar("V")
Changes = Iterable[tuple[Entity | None, Entity | None]]  # each row's entity before and after (None: no row)


@dataclass(frozen=True)
class ListedColumn(Generic[V]):
    column: str  # the list, e.g. "Flagged"
    overflow: str  # what stands for a list past 32K characters, e.g. "FlaggedOverflow"
    families: tuple[Kind, ...]  # the families whose flag rows keep the list
    value: Callable[[dict[str, Any] | None], V | None]  # a row's value in the list (None: not listed)

    def moves(self, changes: Changes) -> dict[str, V | None]:
        """The rows whose value changes when each goes from its first entity to its second: {RowKey: value now}."""
        found: dict[str, V | None] = {}
        for before, after in changes:
            old, new = self.value(before), self.value(after)
            if old != new:
                found[str((after or before or {})["RowKey"])] = new
        return found

    def listed(self, count_row: Entity) -> dict[str, V] | None:
        """The partition's listed rows {RowKey: value}, or None when the count row does not know them (overflowed, or
        written before the column)."""
        text = count_row.get(self.column)
        if count_row.get(self.overflow) or not isinstance(text, str):
            return None
        found: dict[str, V] = json.loads(text)
        return found

    def store(self, row: Entity, found: dict[str, V]) -> None:
        text = json.dumps(found, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if utf16_units(text) > MAX_STRING_CHARS:
            row.pop(self.column, None)
            row[self.overflow] = True
        else:
            row[self.column] = text
            row.pop(self.overflow, None)

    def moved(self, row: Entity, moves: dict[str, V | None], new: bool) -> None:
        """`moves` applied to the count row's list in place (a new count row starts from none); an unknown list stays
        unknown."""
        if row.get("Family") not in self.families or not (moves or new):
            return
        found = {} if new else self.listed(row)
        if found is None:
            return
        for row_key, value in moves.items():
            if value is None:
                found.pop(row_key, None)
            else:
                found[row_key] = value
        self.store(row, found)

    def recounted(self, row: Entity, rows: Iterable[Entity]) -> None:
        """The count row's list from a full scan of its partition's rows, in place."""
        if row.get("Family") in self.families:
            self.store(row, {str(r["RowKey"]): value for r in rows if (value := self.value(r)) is not None})
