"""A sync's checkpoint: one row per service in the status table, holding where the sync is (its phase, the
collection it lists and ARM's nextLink, the family its tombstone pass reads), the time S its listing began
(the stamp of every write of that sync, whichever invocation makes it), what it counted so far, and a lease.

The lease is the row's ETag: every save is a replace under If-Match, so of two invocations that read the
row only the first to save goes on; the other gets a conflict, takes it as a lost lease and stops writing.
An invocation renews the lease with each save (each listed page) and before any write once half of it has
passed; an invocation that died leaves a lease that expires, and the next one takes the row over.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain.errors import WriteConflict
from shared.domain.model import SCHEMA_VERSION
from shared.domain.outcomes import SyncPhase, SyncStop
from shared.domain.resources import ServiceRef
from shared.store.ports import Entity, StoredRow, SyncRecords

LISTING, TOMBSTONES, CLEANUP, DONE = SyncPhase.LISTING, SyncPhase.TOMBSTONES, SyncPhase.CLEANUP, SyncPhase.DONE
LEASE = timedelta(minutes=2)


class LeaseLost(Exception):
    """Another invocation saved the checkpoint since this one did: this one must stop writing."""


@dataclass
class Checkpoint:
    service: str
    started_at: datetime
    phase: str = LISTING
    unit: int = 0  # the collection being listed, in the order the sync lists them
    page: int = 0  # pages of that collection already listed
    next_link: str | None = None  # where that collection's listing goes on (None: at its first page)
    read_free: int = -1  # the collection being listed without reading stored rows first (a first sync), if any
    family: int = 0  # the family the tombstone pass reads
    after: dict[str, str] | None = None  # and where it goes on in it (a Table continuation)
    incomplete: dict[str, str] = field(default_factory=dict)  # kind -> why it was not listed completely
    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    listed: int = 0
    kept: int = 0  # tombstone candidates that ARM still had (a page that shifted skipped them)
    invocations: int = 0
    lease_owner: str = ""
    lease_until: datetime | None = None
    completed_at: datetime | None = None
    resume_at: str | None = None  # in the tombstone pass's page at `after`: "{PartitionKey}\n{RowKey}" of the first row not handled
    unconfirmed: int = 0  # tombstone candidates kept because ARM could not be read (not counted unchanged)

    def entity(self) -> Entity:
        values: Entity = {
            "SchemaVersion": SCHEMA_VERSION, "Service": self.service, "StartedAt": self.started_at, "Phase": self.phase,
            "Unit": self.unit, "Page": self.page, "ReadFreeUnit": self.read_free, "Family": self.family, "Listed": self.listed, "Kept": self.kept,
            "Unconfirmed": self.unconfirmed,
            "Invocations": self.invocations, "Incomplete": json.dumps(self.incomplete, sort_keys=True),
            "Counts": json.dumps({k: dict(v) for k, v in sorted(self.by_kind.items()) if v}, sort_keys=True),
            "LeaseOwner": self.lease_owner, "LeaseUntil": self.lease_until,
        }
        optional = {"NextLink": self.next_link, "After": json.dumps(self.after) if self.after else None,
                    "ResumeAt": self.resume_at, "CompletedAt": self.completed_at}
        return {**values, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_entity(cls, e: Entity) -> Checkpoint:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for kind, outcomes in json.loads(e.get("Counts") or "{}").items():
            counts[kind].update(outcomes)
        return cls(str(e["Service"]), e["StartedAt"], str(e.get("Phase") or LISTING), int(e.get("Unit") or 0),
                   int(e.get("Page") or 0), e.get("NextLink") or None, int(e.get("ReadFreeUnit", -1)), int(e.get("Family") or 0),
                   json.loads(e["After"]) if e.get("After") else None, json.loads(e.get("Incomplete") or "{}"), counts,
                   int(e.get("Listed") or 0), int(e.get("Kept") or 0), int(e.get("Invocations") or 0),
                   str(e.get("LeaseOwner") or ""), e.get("LeaseUntil"), e.get("CompletedAt"), e.get("ResumeAt") or None,
                   int(e.get("Unconfirmed") or 0))


@dataclass
class Held:
    """A lease this invocation holds on a service's checkpoint."""

    records: SyncRecords
    service_key: str
    checkpoint: Checkpoint
    etag: str
    duration: timedelta

    def commit(self, now: datetime) -> None:
        """Save the checkpoint and renew the lease; LeaseLost when another invocation saved it meanwhile."""
        self.checkpoint.lease_until = now + self.duration
        self.save_as_is()

    def release(self, now: datetime) -> None:
        """Save the checkpoint and end the lease, so that the next invocation need not wait for it to expire."""
        self.checkpoint.lease_owner, self.checkpoint.lease_until = "", now
        self.save_as_is()

    def save_as_is(self) -> None:
        try:
            self.etag = self.records.save_sync(self.service_key, self.checkpoint.entity(), self.etag).etag
        except WriteConflict as exc:
            raise LeaseLost(f"the checkpoint of {self.checkpoint.service} was taken over") from exc

    def ensure(self, now: datetime) -> None:
        """Renew the lease before writing once half of it has passed, so that no write comes after it ends."""
        until = self.checkpoint.lease_until
        if until is None or now >= until - self.duration / 2:
            self.commit(now)


def acquire(records: SyncRecords, service: ServiceRef, now: datetime, *, interval: timedelta | None = None,
            duration: timedelta = LEASE) -> Held | SyncStop:
    """Take the lease on the service's checkpoint: resume the sync in progress, or start one (S = now) when
    there is none, or the last one is done and older than `interval`. Else why not: busy (another
    invocation holds a lease that has not expired) or not due."""
    owner = uuid.uuid4().hex
    for _ in range(3):
        stored: StoredRow | None = records.load_sync(service.key)
        checkpoint = Checkpoint.from_entity(stored.entity) if stored else None
        if checkpoint is not None and checkpoint.phase != DONE:
            if checkpoint.lease_until is not None and checkpoint.lease_until > now and checkpoint.lease_owner:
                return SyncStop.BUSY
        elif checkpoint is not None and interval and checkpoint.started_at + interval > now:
            return SyncStop.NOT_DUE
        else:
            checkpoint = Checkpoint(service.name, now)
        checkpoint.lease_owner, checkpoint.lease_until = owner, now + duration
        checkpoint.invocations += 1
        try:
            saved = records.save_sync(service.key, checkpoint.entity(), stored.etag if stored else None)
        except WriteConflict:
            continue  # another invocation saved it first: look again
        return Held(records, service.key, checkpoint, saved.etag, duration)
    return SyncStop.BUSY
