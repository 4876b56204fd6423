"""The exceptions the pipeline raises and catches. Anything else from azure-core is transient."""

from __future__ import annotations

import re
from typing import Any


class PermanentEventError(Exception):
    """An event that no retry can fix. It is logged, recorded as rejected and acknowledged."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class WriteConflict(Exception):
    """Another writer changed (or created) the row since it was read: reload and merge again."""


class AlreadyRecorded(Exception):
    """The history already holds a record under this source and event id."""

    def __init__(self, existing: dict[str, Any]) -> None:
        super().__init__("event already recorded")
        self.existing = existing


class ConflictRetriesExhausted(Exception):
    """Optimistic concurrency kept failing; raising makes Event Grid deliver the event again."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An exception's message on one line, without the connection repr urllib3 starts with."""
    return re.sub(r"^<[^>]*>:\s*", "", " ".join(str(exc).split()))[:limit]
