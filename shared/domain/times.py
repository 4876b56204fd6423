"""Times and durations as events and ARM write them: ISO 8601 with up to 7 fractional digits, and
`hh:mm:ss` / `d.hh:mm:ss` durations; and the times a person gives: ISO 8601, or a time ago (`24h`, `7d`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from shared.domain.errors import PermanentEventError

BEFORE_1601 = "before-1601"  # the reason of a bad-time error for a time Table Storage cannot hold


def iso_z(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, fractions only when there are some (a naive datetime is taken as UTC): how
    logs, alerts and the command write a time."""
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    return utc.replace(tzinfo=None).isoformat() + "Z"


def json_time(value: object) -> object:
    """A datetime as `iso_z` writes it; anything else as it is."""
    return iso_z(value) if isinstance(value, datetime) else value


def parse_time(value: object, what: str) -> datetime:
    """An aware UTC datetime. Azure writes 7 fractional digits; Python keeps 6."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if "." in text:
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}" if digits else text
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise PermanentEventError("bad-time", f"{what} is not an ISO 8601 time: {value[:100]!r}") from exc
    else:
        raise PermanentEventError("bad-time", f"the event has no {what}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise PermanentEventError("bad-time", f"{what} is out of range: {value!s:.100}") from None
    if moment.year < 1601:  # Table Storage's Edm.DateTime starts at 1601
        raise PermanentEventError("bad-time", f"{what} is before 1601, which Table Storage cannot hold: {value!s:.100}",
                                  BEFORE_1601)
    return moment


_AGO = re.compile(r"(\d{1,12})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
AGO_EXAMPLES = "30s, 90m, 24h, 7d, 2w"


def parse_ago(text: str) -> timedelta | None:
    """`24h`, `7d`, `90m`, `30s`, `2w` (one whole number and one unit, case ignored) as a duration, else None."""
    match = _AGO.fullmatch(text.strip().lower())
    if match is None:
        return None
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        return timedelta.max


def parse_moment(text: str, what: str, now: datetime) -> datetime:
    """A time a person gives: ISO 8601 (as `parse_time`), or a time ago counted back from `now`."""
    ago = parse_ago(text)
    if ago is None:
        return parse_time(text, what)
    try:
        return parse_time(now - ago, what)
    except OverflowError:  # further back than datetime goes
        raise PermanentEventError("bad-time", f"{what} is before 1601, which Table Storage cannot hold: {text[:100]!r}",
                                  BEFORE_1601) from None


def parse_duration(text: object) -> timedelta | None:
    """`hh:mm:ss` or `d.hh:mm:ss` (fractions allowed), else None."""
    if not isinstance(text, str):
        return None
    days = 0
    body = text.strip()
    if "." in body.split(":")[0]:
        day_text, _, body = body.partition(".")
        if not day_text.isdigit():
            return None
        days = int(day_text)
    parts = body.split(":")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    if hours < 0 or not 0 <= minutes < 60 or not 0 <= seconds < 60:
        return None
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
