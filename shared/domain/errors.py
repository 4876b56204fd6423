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


def one_line(exc: BaseException | str, limit: int = 500) -> str:
    """An exception's message on one line, without the connection repr urllib3 starts with, nor the request ids and
    response bodies azure-core appends; shortened to whole sentences (`sentences`)."""
    text = str(exc)
    kept = [line for line in text.splitlines() if not _APPENDIX.match(line.strip())] or [text]
    return sentences(re.sub(r"^<[^>]*>:\s*", "", " ".join(" ".join(kept).split())), limit)


def sentences(text: str, limit: int = 500) -> str:
    """`text`'s whole sentences that fit in `limit` characters; the first sentence whole even when it is longer (up to
    twice the limit, then cut after a word, with an ellipsis): a message is never cut mid-sentence."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    ends = [m.end() for m in _SENTENCE_END.finditer(flat)]
    fitting = [end for end in ends if end <= limit]
    if fitting:
        return flat[:fitting[-1]]
    first = ends[0] if ends else len(flat)
    if first <= 2 * limit:
        return flat[:first]
    cut = flat.rfind(" ", 0, limit)
    return flat[:cut if cut > 0 else limit] + " …"


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# The lines azure-core and the storage SDKs append to a service's message: the request's id and time, the error code
# again, and the response body.
_APPENDIX = re.compile(r"^(RequestId|Time|ErrorCode|Error|Content|Code|Message|Status|Reason):|^<")
