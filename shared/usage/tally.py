"""Gateway-log lines as counts: per (service, kind, hour, id), the Counters of the requests the lines record
(domain/usage.py says what is counted and what makes a line bad). It knows nothing of where lines come from."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.domain.usage import FAILED, NOT_JSON, OTHER, SUCCESSFUL, UNAUTHORIZED, BadLine, Counters, UsageHit, read_record

Key = tuple[str, str, str, str]  # service, kind, hour (YYYY-MM-DDTHH), id
EXCERPT = 200
# Where each category's count is in a Counters as a list (total, successful, unauthorized, failed, other, ...).
_FIELD = tuple(dict(((SUCCESSFUL, 1), (UNAUTHORIZED, 2), (FAILED, 3), (OTHER, 4)))[n] for n in range(4))


@dataclass(frozen=True)
class Rejected:
    offset: int
    reason: str
    message: str
    excerpt: str


@dataclass
class Tally:
    counts: dict[Key, Counters] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0


def tally(lines: Iterable[tuple[int, bytes]]) -> Tally:
    """Requests that differ only in duration and time are grouped first (a busy hour repeats a few thousand
    combinations), then each group is counted for every (kind, id) it names."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    result = Tally()
    for offset, line in lines:
        for hit in _hits(offset, line, result):
            result.records += 1
            group = groups.get(hit[:5])
            if group is None:
                groups[hit[:5]] = [1, hit.duration_ms, hit.duration_ms, hit.at, hit.at]
            else:
                group[0] += 1
                group[1] += hit.duration_ms
                group[2] = max(group[2], hit.duration_ms)
                group[3] = min(group[3], hit.at)
                group[4] = max(group[4], hit.at)
    # Each (kind, id) a group names is counted in place, as a list in Counters' field order (total, the four categories,
    # backend failures, duration sum and maximum, first and last time): a Counters merge per group and name was a
    # fifth of the tally's time.
    found: dict[Key, list[Any]] = {}
    for (service, hour, names, category, backend), (n, total_ms, max_ms, first, last) in groups.items():
        failed_backend = n if backend else 0
        for kind, resource in names:
            key = (service, kind, hour, resource)
            c = found.get(key)
            if c is None:
                found[key] = c = [0, 0, 0, 0, 0, 0, 0.0, 0.0, first, last]
            c[0] += n
            c[_FIELD[category]] += n
            c[5] += failed_backend
            c[6] += total_ms
            if max_ms > c[7]:
                c[7] = max_ms
            if first < c[8]:
                c[8] = first
            if last > c[9]:
                c[9] = last
    result.counts = {key: Counters(*c) for key, c in found.items()}
    return result


def _hits(offset: int, line: bytes, result: Tally) -> Iterator[UsageHit]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # not UTF-8 either; nested deeper than the parser goes
        result.rejected.append(Rejected(offset, NOT_JSON, str(exc)[:EXCERPT], _excerpt(line)))
        return
    # Before November 2018 the archive wrapped a blob's records as {"records": [...]}, as Event Hubs still does.
    records = record["records"] if isinstance(record, dict) and isinstance(record.get("records"), list) and "time" not in record else [record]
    for one in records:
        hit = read_record(one)
        if isinstance(hit, BadLine):
            result.rejected.append(Rejected(offset, hit.reason, hit.message, _excerpt(line)))
        else:
            yield hit


# A request URL's key or SAS signature is a secret: never kept in a bad line's excerpt (docs/schema.md).
_SECRET = re.compile(r"((?:subscription-key|sig|code|access_token)=)[^&\"\s]*", re.IGNORECASE)


def _excerpt(line: bytes) -> str:
    return _SECRET.sub(r"\1***", line[:EXCERPT * 4].decode("utf-8", "replace"))[:EXCERPT]
