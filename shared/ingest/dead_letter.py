"""Replay of Event Grid dead letters from their blob container, through the function's pipeline.

Event Grid writes the events it could not deliver to blobs named `{TOPIC}/{y}/{m}/{d}/{h}/{guid}.json`
(the date and hour of dead-lettering, UTC, not zero-padded). Each blob is a JSON array of events in the
subscription's delivery schema, each with its delivery metadata beside the event's own fields:
`deadLetterReason`, `deliveryAttempts`, `lastDeliveryOutcome`, `publishTime`, `lastDeliveryAttemptTime`,
`lastHttpStatusCode` (lower-cased in the CloudEvents schema). The metadata is removed and each event
goes through `replay.apply`, as a redelivery would; the history's duplicate detection makes a second
replay change nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError
from azure.storage.blob import BlobProperties, ContainerClient

from shared.domain.errors import one_line
from shared.ingest.pipeline import EventProcessor
from shared.ingest.replay import UNDECODABLE, Undecodable, apply, outcome_text

DELIVERY_METADATA = frozenset({"deadletterreason", "deliveryattempts", "lastdeliveryoutcome", "publishtime",
                               "lastdeliveryattempttime", "lasthttpstatuscode"})
T = TypeVar("T")


class DeadLetterError(Exception):
    """The dead-letter container cannot be used: unreachable, missing, access denied."""


def strip_metadata(entry: Any) -> Any:
    """The event as it was published: the dead-letter fields removed, whatever their case."""
    return {k: v for k, v in entry.items() if k.lower() not in DELIVERY_METADATA} if isinstance(entry, dict) else entry


def read_blob(data: bytes) -> list[Any]:
    """The events of one dead-letter blob. ValueError when it is not a JSON array (or one object)."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise ValueError(f"not a JSON array of events but a {type(document).__name__}")
    return [strip_metadata(entry) for entry in document]


@dataclass
class BlobReport:
    name: str
    events: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # why the blob must be kept
    deleted: bool = False

    def line(self) -> str:
        state = "deleted" if self.deleted else "kept"
        if self.problems and not sum(self.counts.values()):
            return f"{self.name}: {self.problems[0]}; {state}"
        return f"{self.name}: {self.events} events: {outcome_text(self.counts)}; {state}"


@dataclass
class RunReport:
    blobs: int = 0
    deleted: int = 0
    events: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    kept_with_problems: list[str] = field(default_factory=list)


def replay(container: ContainerClient, processor: EventProcessor, on_blob: Callable[[BlobReport], None], *,
           since: datetime | None = None, prefix: str | None = None, delete_after: bool = False) -> RunReport:
    """Every blob (last modified at or after `since`, named with `prefix`) through the pipeline, in name
    order. A blob is deleted (with `delete_after`) only when each of its events had an outcome; one that
    is not JSON is reported and kept. Storage errors of the inventory propagate after the blob's report."""
    run = RunReport()
    for props in _guarded(container.list_blobs(name_starts_with=prefix), "list the blobs"):
        if since is not None and props.last_modified < since:
            continue
        report = _replay_blob(container, processor, props, delete_after, on_blob)
        run.blobs += 1
        run.deleted += report.deleted
        run.events += report.events
        run.counts.update(report.counts)
        if report.problems:
            run.kept_with_problems.append(report.name)
        on_blob(report)
    return run


def _replay_blob(container: ContainerClient, processor: EventProcessor, props: BlobProperties, delete_after: bool,
                 on_blob: Callable[[BlobReport], None]) -> BlobReport:
    report = BlobReport(props.name)
    data = _call(lambda: container.download_blob(props.name).readall(), f"read {props.name}")
    try:
        events = read_blob(data)
    except ValueError as exc:
        report.problems.append(str(exc))
        return report
    report.events = len(events)
    for number, payload in enumerate(events, 1):
        try:
            outcome = apply(processor, payload)
        except Undecodable as exc:
            outcome = UNDECODABLE
            report.problems.append(f"event {number}: the Functions host cannot decode it: {exc}")
        except BaseException:
            report.problems.append(f"stopped at event {number} of {len(events)}")
            on_blob(report)  # kept: replaying again is safe
            raise
        report.counts[outcome] += 1
    if delete_after and not report.problems:
        try:
            _call(lambda: container.delete_blob(props.name, etag=props.etag, match_condition=MatchConditions.IfNotModified),
                  f"delete {props.name}")
            report.deleted = True
        except DeadLetterError as exc:
            if not isinstance(exc.__cause__, ResourceModifiedError):
                raise
            report.problems.append("changed while it was replayed")
    return report


def _call(work: Callable[[], T], what: str) -> T:
    try:
        return work()
    except AzureError as exc:
        raise DeadLetterError(f"cannot {what}: {one_line(exc)}") from exc


def _guarded(items: Iterable[T], what: str) -> Iterator[T]:
    """A lazily paged listing, with its errors as DeadLetterError."""
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except AzureError as exc:
            raise DeadLetterError(f"cannot {what}: {one_line(exc)}") from exc
        yield item
