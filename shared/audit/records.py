"""Audit records written: exported Activity Log records (from the archive, or the backfill's conversion of the REST
API's) folded by operation and merged into their rows beside each resource's history (shared/store/audit_keys.py),
with their change-feed entries, the key regenerations they record, and a row for each bad record.

Exactly once without a checkpoint: a row's key is its operation's natural key and its columns the commutative fold
of every record of that operation (domain/audit.py), so a record written twice, or the Start after the Success,
leaves the same row. A row changed by another writer meanwhile (412) is read again and folded again."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain import audit
from shared.domain.errors import ConflictRetriesExhausted, PermanentEventError, WriteConflict
from shared.store.audit_keys import audit_entity, audit_keys, check_keys, feed_entities, record_of, same_record, stale_feed_entries
from shared.store.ports import StoredRow, Table, TableDeleter, TableReader, TableWriter
from shared.store.status import StatusTracker
from shared.store.usage_keys import bad_line_partition, keyed
from shared.store.writer import RowWriter

log = logging.getLogger("apim_inventory")
RETRIES = 8
EXCERPT = 200


@dataclass(frozen=True)
class BadRecord:
    """A record not kept, and why (`audit rejected` lists them: never dropped)."""

    origin: str  # "archive:{blob}@{offset}" or "backfill:{sub}@{window}/page {n}", then "#{n}" for one of several records
    reason: str
    message: str
    excerpt: str


@dataclass
class WriteReport:
    written: int = 0  # audit rows inserted or changed
    ignored: int = 0  # records of other resource providers
    bad: list[BadRecord] = field(default_factory=list)
    records: int = 0  # APIM records read (before the fold)
    unchanged: int = 0  # rows a record left as they were (read again, or a duplicate)
    key_ages: int = 0  # subscription rows whose regeneration time moved

    def add(self, other: WriteReport) -> None:
        self.written += other.written
        self.ignored += other.ignored
        self.records += other.records
        self.unchanged += other.unchanged
        self.key_ages += other.key_ages
        self.bad.extend(other.bad)


class AuditWriter:
    """`write(records, origin)`: the one way audit records reach the store, from the archive's sink and the backfill."""

    def __init__(self, reader: TableReader, writer: TableWriter, deleter: TableDeleter, rows: RowWriter | None,
                 clock: Callable[[], datetime], *, ids_only: bool = False, bad_container: str = "insights-activity-logs",
                 status: StatusTracker | None = None) -> None:
        self._reader, self._writer, self._deleter, self._rows, self._clock = reader, writer, deleter, rows, clock
        self._status = status  # the service's status row before its first record: the purge and `changes` find services by it
        self.ids_only, self.bad_container = ids_only, bad_container

    def write(self, records: Iterable[Mapping[str, Any]], origin: str, *, seen_at: datetime | None = None) -> WriteReport:
        """Records of one place (`origin`): each is told apart by its index (`{origin}#{n}`) when there are several,
        so two bad records alike are two rows."""
        given = list(records)
        return self.write_read([(f"{origin}#{n}" if len(given) > 1 else origin, audit.read_record(dict(r) if isinstance(r, Mapping) else r), r)
                                for n, r in enumerate(given)], seen_at)

    def write_read(self, items: list[tuple[str, audit.AuditRecord | audit.BadRecord | audit.Ignored, object]],
                   seen_at: datetime | None = None) -> WriteReport:
        """Records already read (origin, what domain/audit.py made of it, the raw record for a bad one's excerpt)."""
        report = WriteReport()
        folded: dict[tuple[str, str, str], audit.AuditRecord] = {}
        for origin, read, raw in items:
            if isinstance(read, audit.Ignored):
                report.ignored += 1
            elif isinstance(read, audit.BadRecord):
                report.bad.append(BadRecord(origin, read.reason, read.message, excerpt(raw)))
            elif (too_long := _keys_refused(read)) is not None:  # an id past Table Storage's key limits: recorded, not raised
                report.bad.append(BadRecord(origin, too_long.code, too_long.message, excerpt(raw)))
            else:
                report.records += 1
                key = read.natural_key
                folded[key] = folded[key].merged(read) if key in folded else read
        self.record_bad(report.bad, seen_at or self._clock())
        for record in folded.values():
            self._merge(record, report)
        return report

    def record_bad(self, bad: list[BadRecord], seen_at: datetime) -> None:
        """One row per bad record, keyed by where it was (a re-read lands on the same row), in the day it was seen,
        beside the gateway logs' bad lines under the Activity Log container's name (`audit rejected` lists them)."""
        entities = []
        for b in bad:
            blob, offset = where(b.origin)
            key = hashlib.sha256(f"{b.origin}\n{b.excerpt}".encode("utf-8", errors="surrogatepass")).hexdigest()[:40]
            entities.append(keyed((bad_line_partition(self.bad_container, seen_at), key),
                                  {"SeenAt": seen_at, "Container": self.bad_container, "Blob": blob, "Offset": offset, "Origin": b.origin,
                                   "Reason": b.reason, "Message": b.message[:1000], "Excerpt": b.excerpt}))
        for entity in entities:
            log.warning("audit: bad record at %s: %s: %s", entity["Origin"], entity["Reason"], entity["Message"][:200])
        if entities:
            self._writer.upsert(Table.USAGE, entities)

    def _merge(self, record: audit.AuditRecord, report: WriteReport) -> None:
        pk, rk = audit_keys(record)
        if self._status is not None:  # a service with audit records and no event or sync yet has none otherwise
            self._status.ensure(record.target.service.key, record.target.service.name)
        for _ in range(RETRIES):
            row = self._reader.get(Table.INVENTORY, pk, rk)
            merged = record_of(row.entity).merged(record) if row else record
            entity = audit_entity(merged, row.entity["RecordedAt"] if row else self._clock(), ids_only=self.ids_only)
            if row is not None and same_record(row.entity, entity):
                report.unchanged += 1
                break
            try:
                self._writer.put(Table.INVENTORY, entity, row.etag if row else None)
            except WriteConflict:
                continue
            report.written += 1
            break
        else:
            raise ConflictRetriesExhausted(f"audit record {pk}/{rk}: {RETRIES} write conflicts in a row")
        # Always, also for a row left unchanged: a crash after the row's write left these undone.
        self._writer.upsert(Table.HISTORY, feed_entities(entity))
        stale = stale_feed_entries(entity)
        if stale:
            self._deleter.delete_rows(Table.HISTORY, stale)
        report.key_ages += self._key_age(merged)

    def _key_age(self, record: audit.AuditRecord) -> int:
        """A succeeded regeneration sets the subscription row's column to its maximum, for those who read the table (no
        row yet: nothing to set; `keys` reads the audit record itself beside the row, so its answer does not depend on
        which came first: shared/queries/keys.py)."""
        regenerated = audit.key_regenerations(record)
        if regenerated is None or self._rows is None or record.target.anchor is None:
            return 0
        column, at = regenerated
        ref = record.target.anchor

        def compute(row: StoredRow | None, parent: StoredRow | None) -> dict[str, Any] | None:
            if row is None or (row.entity.get(column) is not None and row.entity[column] >= at):
                return None
            return {**row.entity, column: at}
        return int(self._rows.apply(ref, compute).changed)


def _keys_refused(record: audit.AuditRecord) -> PermanentEventError | None:
    try:
        check_keys(record.target)
    except PermanentEventError as exc:
        return exc
    return None


def where(origin: str) -> tuple[str, int]:
    """The blob and line offset an origin names (`archive:{blob}@{offset}[#{n}]`), or, for the backfill's
    (`backfill:{sub}@{window and page}[#{n}]`), `backfill:{sub}` and 0."""
    head, _, tail = origin.rpartition("#")
    place = head if head and tail.isdigit() else origin
    if place.startswith("archive:"):
        blob, _, offset = place.removeprefix("archive:").rpartition("@")
        return blob, int(offset) if offset.isdigit() else 0
    return place.partition("@")[0], 0


def excerpt(raw: object) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw if isinstance(raw, str) else json.dumps(raw, default=str)
    return text[:EXCERPT]


