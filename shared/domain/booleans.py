"""True/false words, read the same way by the app settings and the query parameters; each says which words it takes."""

from __future__ import annotations

QUERY_TRUE, QUERY_FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})
# App settings also take yes/no, and an empty value as false.
SETTING_TRUE, SETTING_FALSE = QUERY_TRUE | {"yes"}, QUERY_FALSE | {"no", ""}


def parse_bool(text: str, true: frozenset[str], false: frozenset[str]) -> bool | None:
    """The word as a bool (case and surrounding spaces ignored), or None when it is in neither set."""
    value = text.strip().lower()
    return True if value in true else False if value in false else None
