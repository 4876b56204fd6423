"""`apim-inventory audit backfill`: the Activity Log of the last 90 days (at most) read through its REST API, one
subscription and one time window after another, each page converted to the exported record shape and handed to the
audit-record writer.

No checkpoint is kept: audit rows are keyed by their natural key (resource, operation, correlation id), so a record
written twice changes nothing, and an interrupted backfill is resumed by running it again from the start of the window
it stopped in (its error says which) or simply again from the start. Windows share their boundary instants (the API's
`ge … le` includes both ends): an event at a boundary is read twice, which the same idempotence makes harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain.errors import InvalidArgument, one_line
from shared.domain.resources import parse_service_id
from shared.domain.times import iso_z
from shared.integrations.activity_log_api import KEPT, to_exported
from shared.integrations.arm import ArmError

log = logging.getLogger("apim_inventory.audit")
WINDOW = timedelta(days=1)


class EventPages(Protocol):
    """The Activity Log's EventData items of one subscription in [since, until], page by page."""

    def pages(self, subscription: str, since: datetime, until: datetime) -> Iterator[list[dict[str, Any]]]: ...


class WriteReportLike(Protocol):
    """What the writer reports of one write (shared.audit.records.WriteReport)."""

    @property
    def written(self) -> int: ...

    @property
    def ignored(self) -> int: ...  # records of other resource providers

    @property
    def bad(self) -> Sequence[Any]: ...  # BadRecord each


class RecordWriter(Protocol):
    """The audit-record writer's one method (shared.audit.records.AuditWriter)."""

    def write(self, records: Iterable[Mapping[str, Any]], origin: str) -> WriteReportLike: ...


class BackfillFailed(Exception):
    """A read or a write failed: the message names the subscription, the window and the part that failed, and how to resume."""

    def __init__(self, message: str, resume_since: datetime) -> None:
        super().__init__(message)
        self.resume_since = resume_since


@dataclass(frozen=True)
class Span:
    since: datetime
    until: datetime
    warnings: tuple[str, ...] = ()


@dataclass
class WindowReport:
    subscription: str
    since: datetime
    until: datetime
    pages: int = 0
    read: int = 0
    written: int = 0
    ignored: int = 0
    bad: int = 0


@dataclass
class BackfillReport:
    span: Span
    subscriptions: tuple[str, ...]
    windows: list[WindowReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(window, name)) for window in self.windows)


def clamp(since: datetime, until: datetime | None, now: datetime) -> Span:
    """The span to read: `until` at most now (default now), `since` no further back than the 90 days the Activity Log
    keeps (clamped, with a warning line); an empty or reversed span is refused."""
    warnings: list[str] = []
    end = now if until is None else until
    if end > now:
        warnings.append(f"--until {iso_z(end)} is in the future: reading up to now, {iso_z(now)}")
        end = now
    oldest = now - KEPT
    start = since
    if start < oldest:
        warnings.append(f"--since {iso_z(since)} is more than 90 days ago, further back than the Activity Log keeps: "
                        f"reading from {iso_z(oldest)}")
        start = oldest
    if start >= end:
        raise InvalidArgument(f"nothing to read: --since {iso_z(start)} is not before --until {iso_z(end)}")
    return Span(start, end, tuple(warnings))


def windows(span: Span, size: timedelta = WINDOW) -> list[tuple[datetime, datetime]]:
    """[since, until] cut into consecutive windows of `size` (the last one shorter), sharing their boundaries."""
    if size <= timedelta(0):
        raise ValueError("a window must be longer than zero")
    cuts, start = [], span.since
    while start < span.until:
        end = min(start + size, span.until)
        cuts.append((start, end))
        start = end
    return cuts


def subscriptions_of(services: Iterable[str]) -> tuple[str, ...]:
    """The Azure subscriptions of these APIM service ids (RECONCILE_SERVICES), each once, in the order first named."""
    found: dict[str, str] = {}
    for service in services:
        subscription = parse_service_id(service).subscription
        found.setdefault(subscription.lower(), subscription)
    return tuple(found.values())


class Backfill:
    def __init__(self, pages: EventPages, writer: RecordWriter, *, window: timedelta = WINDOW,
                 progress: Callable[[WindowReport], None] | None = None) -> None:
        self._pages = pages
        self._writer = writer
        self._window = window
        self._progress = progress

    def run(self, span: Span, subscriptions: Sequence[str]) -> BackfillReport:
        """Each subscription's windows, oldest first; raises BackfillFailed at the first read or write that fails."""
        if not subscriptions:
            raise InvalidArgument("no subscription to read: give --subscription, or set RECONCILE_SERVICES to the APIM services' ids")
        report = BackfillReport(span, tuple(subscriptions))
        for subscription in subscriptions:
            for since, until in windows(span, self._window):
                window = self._window_of(subscription, since, until)
                report.windows.append(window)
                if self._progress is not None:
                    self._progress(window)
        return report

    def _window_of(self, subscription: str, since: datetime, until: datetime) -> WindowReport:
        window = WindowReport(subscription, since, until)
        where = f"the Activity Log of subscription {subscription} from {iso_z(since)} to {iso_z(until)}"
        resume = f"run again with --subscription {subscription} --since {iso_z(since)} to resume"
        pages = self._pages.pages(subscription, since, until)
        while True:
            try:
                items = next(pages, None)
            except ArmError as exc:
                raise BackfillFailed(f"reading {where} failed: {one_line(exc, 300)}; {resume}", since) from exc
            if items is None:
                return window
            window.pages += 1
            window.read += len(items)
            try:
                # the window and the page in the origin: bad records of other pages are rows of their own
                written = self._writer.write([to_exported(item) for item in items],
                                             f"backfill:{subscription}@{iso_z(since)}/{iso_z(until)}/page {window.pages}")
            except Exception as exc:  # a storage failure: named as the writer's, never as ARM's
                raise BackfillFailed(f"writing the audit records of {where} failed: {one_line(exc, 300)}; {resume}", since) from exc
            window.written += written.written
            window.ignored += written.ignored
            window.bad += len(written.bad)
