"""A text longer than one string property holds (32K UTF-16 characters), over continuation columns `{column}_1`,
`{column}_2`, … (read back in that order; an entity holds 1 MiB and 252 properties, far beyond what is stored so)."""

from __future__ import annotations

from shared.store.ports import Entity

CHUNK = 16 * 1024  # characters per column: at most 32K UTF-16 units, whatever the characters


def read_long(row: Entity, column: str) -> str:
    parts, n = [], 0
    while isinstance(part := row.get(column if n == 0 else f"{column}_{n}"), str):
        parts.append(part)
        n += 1
    return "".join(parts)


def write_long(row: Entity, column: str, text: str) -> None:
    """`text` into `column` and its continuation columns, the old ones removed (nothing at all for an empty text)."""
    for name in [c for c in row if c == column or c.startswith(f"{column}_")]:
        del row[name]
    for n, at in enumerate(range(0, len(text), CHUNK)):
        row[column if n == 0 else f"{column}_{n}"] = text[at:at + CHUNK]
