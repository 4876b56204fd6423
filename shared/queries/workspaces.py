"""The `workspace` filter of the read side: a workspace's name, or "-" for the service-level rows only.

A row's workspace is its `Workspace` column (empty at the service; a workspace's own row carries its own name), which
its RowKey also holds (`shared.store.keys.workspace_of_row_key`), so the filter is a RowKey range in each partition
(`shared.store.keys.in_workspace_ranges`), never a scan. APIM compares workspace names without regard to case, and so
does the filter."""

from __future__ import annotations

from shared.domain.errors import InvalidQuery, PermanentEventError
from shared.store.keys import encode_part

SERVICE_LEVEL = "-"  # what a person types for "the service's own rows, in no workspace"
MAX_NAME = 256


def parse_workspace(text: str | None) -> str | None:
    """None (no filter), "" (service-level rows only, from "-"), or a workspace's name in lower case."""
    if text is None or text == "":
        return None
    name = text.strip()
    if name == SERVICE_LEVEL:
        return ""
    if not name or "/" in name or len(name) > MAX_NAME:
        raise InvalidQuery(f"workspace must be a workspace's name (or - for the service-level rows), not {text[:80]!r}")
    try:
        encode_part(name)
    except PermanentEventError:
        raise InvalidQuery("workspace is not valid Unicode") from None
    return name.lower()


def shown(workspace: str | None) -> str | None:
    """The filter as the answer echoes it: the name, "-" for the service level, None for none."""
    return None if workspace is None else workspace or SERVICE_LEVEL
