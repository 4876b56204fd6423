"""The exceptions the pipeline raises and catches. Anything else from azure-core is transient."""

from __future__ import annotations

import re
from typing import Any


class InvalidInput(Exception):
    """Input that no retry can fix: an event, a setting, a command argument or a query. `code` says which
    rule it broke, for code to decide on (never the message); `reason` narrows it where a caller needs to."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


class PermanentEventError(InvalidInput):
    """An event that no retry can fix. It is logged, recorded as rejected and acknowledged."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidSettings(InvalidInput):
    """App settings the app cannot start with (docs/settings.md)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad-settings", message)


class InvalidArgument(InvalidInput):
    """A command-line argument that cannot be used: exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__("bad-argument", message)


class InvalidQuery(InvalidInput):
    """Input that cannot be a valid query: a 400, or exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__("bad-query", message)


class WriteConflict(Exception):
    """Another writer changed (or created) the row since it was read: reload and merge again."""


class AlreadyRecorded(Exception):
    """The history already holds this event's record (same resource, event time and id): a redelivery."""

    def __init__(self, existing: dict[str, Any], etag: str = "") -> None:
        super().__init__("event already recorded")
        self.existing = existing
        self.etag = etag


class ConflictRetriesExhausted(Exception):
    """Optimistic concurrency kept failing for one row, every writer alike (rows, status rows); raising makes
    Event Grid deliver the event again. Not a WriteConflict: that one means "reload and merge again"."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An exception's message on one line, without the connection repr urllib3 starts with."""
    return re.sub(r"^<[^>]*>:\s*", "", " ".join(str(exc).split()))[:limit]
