"""The event buckets of the count rows (layout 2), as docs/schema.md describes them.

A count row's `Events` column is JSON: {"m": {"YYYYMMDDHHMM": [applied, stale, duplicate]}, "h": {"YYYYMMDDHH": [...]}},
the minute buckets of the last hour and the hour buckets of the last day. A day's rejected counter row keeps the same
buckets of one number. "The last hour" is the current minute and the 59 before it; "the last day" the current hour and
the 23 before it: sliding windows, to the minute and to the hour."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

MINUTES, HOURS = "m", "h"
WINDOWS = {"lastHour": (MINUTES, timedelta(minutes=59)), "lastDay": (HOURS, timedelta(hours=23))}
_FORMATS = {MINUTES: "%Y%m%d%H%M", HOURS: "%Y%m%d%H"}


def bucket_of(moment: datetime, unit: str) -> str:
    """The bucket (minute or hour, UTC) a moment falls in."""
    return moment.astimezone(timezone.utc).strftime(_FORMATS[unit])


def window_start(now: datetime, window: str) -> datetime:
    """The first moment of a window: the start of the minute 59 minutes back, or of the hour 23 hours back."""
    unit, back = WINDOWS[window]
    start = now - back
    return start.replace(second=0, microsecond=0) if unit == MINUTES else start.replace(minute=0, second=0, microsecond=0)


def window_totals(events: object, now: datetime, width: int) -> dict[str, list[int]]:
    """The sums of one `Events` column's buckets in each window ({"lastHour": [...], "lastDay": [...]}, `width` numbers
    each). A missing or malformed column counts nothing: the count row is rewritten whole on its next write."""
    try:
        buckets = json.loads(events) if isinstance(events, str) else {}
    except ValueError:
        buckets = {}
    totals: dict[str, list[int]] = {}
    for window, (unit, _) in WINDOWS.items():
        low, high = bucket_of(window_start(now, window), unit), bucket_of(now, unit)
        sums = [0] * width
        found = buckets.get(unit) if isinstance(buckets, dict) else None
        for bucket, counts in (found.items() if isinstance(found, dict) else ()):
            if low <= bucket <= high:
                for at, count in enumerate(counts if isinstance(counts, list) else [counts]):
                    if at < width and isinstance(count, int) and not isinstance(count, bool):
                        sums[at] += count
        totals[window] = sums
    return totals
