"""Text as the inventory keeps it."""

from __future__ import annotations


def table_text(text: str, limit: int) -> str:
    """`text` as Table Storage accepts it: lone surrogates replaced, cut to `limit` characters."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"
