"""What became of an event, and of a row in a full sync: the words logs, summaries and the command print.

StrEnums, so each is still the same string in log lines, JSON and tables.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """One event's outcome. The first four are the pipeline's; a replay adds `undecodable` for a
    payload the Functions host would fail before the function runs."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    REJECTED = "rejected"
    UNDECODABLE = "undecodable"


# The pipeline's outcomes, in the order summaries print them; each is present in every summary line.
EVENT_OUTCOMES: tuple[Outcome, ...] = (Outcome.APPLIED, Outcome.DUPLICATE, Outcome.STALE, Outcome.REJECTED)
# Outcomes that show the event's service is live and real (a rejected event names no trustworthy service).
SEEN: frozenset[Outcome] = frozenset({Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE})


class SyncOutcome(StrEnum):
    """What a full sync did to one row, in the order its report prints them."""

    ADDED = "added"
    UPDATED = "updated"
    TOMBSTONED = "tombstoned"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # an event changed the row after the listing began


class EnrichmentOutcome(StrEnum):
    """What an ARM GET did to one row, and what the later pass counts."""

    ENRICHED = "enriched"
    PENDING = "pending"  # the GET failed; the row is marked for the later pass
    THROTTLED = "throttled"  # ARM asked to wait; the later pass stops
    WAITING = "waiting"  # the later pass left the row: its retry time has not come


class SyncStop(StrEnum):
    """Why an invocation of a sync stopped before the sync's end."""

    BUDGET = "budget"  # its time budget ran out; the next invocation resumes
    THROTTLED = "throttled"  # ARM asked to wait longer than the client waits, or its read allowance nearly ran out
    BUSY = "busy"  # another invocation holds the lease on the checkpoint
    NOT_DUE = "not-due"  # the last sync began less than SYNC_INTERVAL_HOURS ago
    LEASE_LOST = "lease-lost"  # another invocation took the sync over: this one stopped writing


class SyncPhase(StrEnum):
    """Where a sync is, as its checkpoint row says (GET /api/health shows it)."""

    LISTING = "listing"
    TOMBSTONES = "tombstones"
    CLEANUP = "cleanup"
    DONE = "done"
