"""The change of a count over 7 and 30 days, from the daily count snapshots: today's count less the count of the last
snapshot taken on or before the day 7 (30) days ago; none when no snapshot is that old (a new install, or a gap longer
than the snapshots read). Pure: the snapshot timer and the summary agree through these rules alone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

SPANS = (7, 30)  # the days the overview and the summary show a change over
READ_DAYS = max(SPANS) + 1  # the snapshots read per service: enough for the longest span, and a day's gap before it


def baseline(snapshots: Mapping[date, int], today: date, days: int) -> int | None:
    """The count of the latest snapshot on or before `today - days` among those read, else None."""
    cutoff = today - timedelta(days=days)
    older = [day for day in snapshots if day <= cutoff]
    return snapshots[max(older)] if older else None


def change(now: int, snapshots: Mapping[date, int], today: date, days: int) -> int | None:
    """How much the count grew (or shrank) over `days`, or None when no snapshot is that old."""
    then = baseline(snapshots, today, days)
    return None if then is None else now - then
