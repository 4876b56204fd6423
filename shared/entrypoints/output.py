"""Formatting for people and scripts: aligned tables, JSON and CSV. Used by the command and the demo."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain.times import iso_z

PREFIX = "microsoft.apimanagement."
FIRST_COLUMNS = ("PartitionKey", "RowKey", "Service", "Kind", "Path", "Name")
NARROWEST = 8  # a cell is cut no narrower than this (or its header)
ELLIPSIS = "…"
_fit: list[int | None] = [None]  # the width tables are cut to: the terminal's (set by the command), or None for no limit


def fit_tables(columns: int | None) -> None:
    """Cut the tables printed from now on to `columns` terminal columns (None: print every cell whole)."""
    _fit[0] = columns


def width(text: str) -> int:
    """Columns on a terminal: East Asian wide characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(header: Sequence[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """An aligned table; when `fit_tables` set a width, the widest cells are cut (ending in …) until each line fits."""
    widths = [max(width(r[i]) for r in [list(header), *rows]) for i in range(len(header))]
    if _fit[0] is not None:
        widths = fitted(widths, [width(h) for h in header], _fit[0] - len(indent) - 2 * (len(header) - 1))
    lines = [list(header), ["-" * w for w in widths], *rows]
    return [indent + "  ".join(clip(cell, w) + " " * (w - width(clip(cell, w))) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]


def fitted(widths: list[int], floors: list[int], room: int) -> list[int]:
    """Column widths whose sum is at most `room`, narrowing the widest column first, none below its header or NARROWEST
    (so a table of very many columns may still be wider)."""
    widths = list(widths)
    least = [min(w, max(f, NARROWEST)) for w, f in zip(widths, floors, strict=True)]
    while sum(widths) > room:
        cuttable = [i for i in range(len(widths)) if widths[i] > least[i]]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def clip(text: str, columns: int) -> str:
    """`text` in at most `columns` terminal columns, ending in … when cut."""
    if width(text) <= columns:
        return text
    kept, used = [], 0
    for char in text:
        if used + width(char) > columns - 1:
            break
        kept.append(char)
        used += width(char)
    return "".join(kept) + ELLIPSIS


def when(value: object) -> str:
    """A datetime as ISO 8601 in UTC with a Z, fractions only when there are some; else ""."""
    return iso_z(value) if isinstance(value, datetime) else ""


def short_type(event_type: object) -> str:
    text = str(event_type or "")
    return text[len(PREFIX):] if text.lower().startswith(PREFIX) else text


def plain(value: Any) -> Any:
    """A value as JSON has it: datetimes as ISO 8601 Z strings, Table SDK typed values unwrapped."""
    if isinstance(value, datetime):
        return when(value)
    if hasattr(value, "edm_type") and hasattr(value, "value"):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def cell(value: Any) -> str:
    """One value as a table or CSV cell."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def to_json(document: Any) -> str:
    return json.dumps(plain(document), ensure_ascii=False, indent=2)


def columns(rows: Iterable[Mapping[str, Any]], first: Sequence[str] = FIRST_COLUMNS) -> list[str]:
    """Every column of the rows: the keys and identity columns first, then the rest alphabetically."""
    seen = {key for row in rows for key in row}
    return [c for c in first if c in seen] + sorted(seen.difference(first))


def to_csv(rows: Sequence[Mapping[str, Any]], header: Sequence[str] | None = None) -> str:
    header = list(header) if header is not None else columns(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([cell(row.get(column)) for column in header] for row in rows)
    return out.getvalue()


def progress(done: int, total: int, width: int = 30) -> str:
    """A progress bar that redraws itself on a terminal: `\\r[#####.....] 1234/20000`."""
    filled = width * done // max(total, 1)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def row_value(row: Mapping[str, Any], column: str) -> str:
    """A cell of an inventory table: State from IsDeleted, event types without the APIM prefix."""
    if column == "State":
        return "deleted" if row.get("IsDeleted") else "live"
    return short_type(row.get(column)) if column.endswith("EventType") else cell(row.get(column))


def by_path(row: Mapping[str, Any]) -> tuple[str, str]:
    """The order rows are printed in: by service, then path, ignoring case."""
    return str(row.get("Service", "")).lower(), str(row.get("Path", "")).lower()


def row_table(header: Sequence[str], rows: Sequence[Mapping[str, Any]], indent: str = "") -> list[str]:
    return table(header, [[row_value(row, column) for column in header] for row in rows], indent)


def record_lines(row: Mapping[str, Any]) -> list[str]:
    """Every column of one row, as `Column  value` lines."""
    names = columns([row])
    width = max((len(name) for name in names), default=0)
    return [f"{name.ljust(width)}  {row_value(row, name)}".rstrip() for name in names]
