"""The rules of usage from APIM's gateway logs (category GatewayLogs): which request category a response code is in,
how the ids a record names are matched to inventory rows, and what makes a line bad. Pure: the reader of the
archive and the store live elsewhere (docs/design.md, "The path of a log record").

The categories are Microsoft's final definitions, from the notice that retired the five request metrics in August
2023, not the wording of the Azure Monitor page this project started from ("smaller than 301", "larger than 500"):
that page would leave 301 out of the successful requests and 500 out of the failed ones."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import Kind
from shared.domain.resources import parse_service_id
from shared.domain.times import iso_z, parse_time

# The kinds a record is counted for, in the order reports print them, and the service's own total.
OPERATION: Final = "operation"  # not an inventory kind: counted as {api}/{operation}
COUNTED_KINDS: Final = (Kind.API.value, OPERATION, Kind.PRODUCT.value, Kind.SUBSCRIPTION.value, Kind.USER.value, Kind.BACKEND.value)
SERVICE_TOTAL: Final = "service"
SERVICE_TOTAL_ID: Final = "-"
ROW_KINDS: Final = (SERVICE_TOTAL, *COUNTED_KINDS)  # every kind a usage row is kept for
NO_SUBSCRIPTION: Final = "(none)"  # a request that named no subscription (an open product, or rejected before)
ALL_ACCESS_SUBSCRIPTION: Final = "master"  # the built-in all-access subscription's name: counted as itself

SUCCESSFUL, UNAUTHORIZED, FAILED, OTHER = range(4)
CATEGORIES: Final = ("successful", "unauthorized", "failed", "other")

# Why a line is not counted (each counted per reason, with the blob and byte offset: `usage rejected`).
NOT_JSON, NOT_AN_OBJECT, NO_TIME, NO_RESOURCE_ID, TOO_LONG = "not-json", "not-an-object", "no-time", "no-resource-id", "too-long"
BAD_LINE_REASONS: Final = (NOT_JSON, NOT_AN_OBJECT, NO_TIME, NO_RESOURCE_ID, TOO_LONG)

_UNAUTHORIZED_CODES = frozenset({401, 403, 429})
_SUCCESSFUL_EXTRA = frozenset({304, 307})
# A UTC time as APIM writes it (`2020-10-14T17:33:12.1234567Z`) is read by slicing; anything else by parse_time.
_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\Z")
_REVISION = re.compile(r";rev=", re.IGNORECASE)


def category(code: object) -> int:
    """The request category of a gateway response code: SUCCESSFUL 0-301, 304, 307; UNAUTHORIZED 401, 403, 429;
    FAILED 400, 500-599; OTHER everything else in 0-999 (302, 303, 305, 306, 308-399, 402, 404-428, 430-499,
    600-999), and a code that is absent or not a number."""
    if isinstance(code, bool) or not isinstance(code, int):
        if not (isinstance(code, str) and code.isdigit()):
            return OTHER
        code = int(code)
    if 0 <= code <= 301 or code in _SUCCESSFUL_EXTRA:
        return SUCCESSFUL
    if code in _UNAUTHORIZED_CODES:
        return UNAUTHORIZED
    if code == 400 or 500 <= code <= 599:
        return FAILED
    return OTHER


def backend_failed(properties: dict[str, Any]) -> bool:
    """The backend failed: it answered 500-599, or it did not answer and the gateway logged an error."""
    code = properties.get("backendResponseCode")
    if isinstance(code, int) and not isinstance(code, bool):
        return 500 <= code <= 599
    return code is None and bool(properties.get("lastError") or properties.get("errors"))


@functools.lru_cache(maxsize=4096)  # a busy service's logs name the same few hundred ids over and over
def resource_id(raw: str) -> str:
    """An id as the log writes it (`echo-api`, `/apis/echo-api`, `Echo-API;rev=2`) as the inventory matches it:
    the last path segment, lower case (APIM ids ignore case), a revision written `;rev=N`."""
    name = raw.rstrip("/").rsplit("/", 1)[-1].strip().lower()
    return _REVISION.sub(";rev=", name)


def api_ids(raw: str) -> tuple[str, ...]:
    """The APIs a record's apiId counts for: a revision for itself and for its API."""
    name = resource_id(raw)
    base = name.split(";rev=", 1)[0]
    return (name, base) if base != name else (name,)


class UsageHit(NamedTuple):
    """One request, as the counts take it: the service, the hour of the record's own time (`YYYY-MM-DDTHH`), the
    (kind, id) pairs it is counted for, its category, whether its backend failed, its duration and its time
    (ISO 8601 to the second, UTC, so times compare as text). A tuple: the hot path builds one per record, and
    hits that differ only in duration and time can be grouped by `hit[:5]`."""

    service: str
    hour: str
    names: tuple[tuple[str, str], ...]
    category: int
    backend_failed: bool
    duration_ms: float
    at: str


@dataclass(frozen=True, slots=True)
class BadLine:
    reason: str
    message: str


@dataclass(slots=True)
class Counters:
    """The requests of one resource in one hour (or day): by category, the backend's failures, the duration's sum and
    maximum (for an average and a worst case), and the first and last record times (ISO text, to the second)."""

    total: int = 0
    successful: int = 0
    unauthorized: int = 0
    failed: int = 0
    other: int = 0
    backend_failed: int = 0
    duration_sum_ms: float = 0.0
    duration_max_ms: float = 0.0
    first_at: str = ""
    last_at: str = ""

    def add(self, hit: UsageHit, times: int = 1) -> None:
        self.total += times
        if hit.category == SUCCESSFUL:
            self.successful += times
        elif hit.category == UNAUTHORIZED:
            self.unauthorized += times
        elif hit.category == FAILED:
            self.failed += times
        else:
            self.other += times
        self.backend_failed += times if hit.backend_failed else 0
        self.duration_sum_ms += hit.duration_ms * times
        self.duration_max_ms = max(self.duration_max_ms, hit.duration_ms)
        self.first_at = min(self.first_at, hit.at) if self.first_at else hit.at
        self.last_at = max(self.last_at, hit.at)

    def merge(self, other: Counters) -> None:
        self.total += other.total
        self.successful += other.successful
        self.unauthorized += other.unauthorized
        self.failed += other.failed
        self.other += other.other
        self.backend_failed += other.backend_failed
        self.duration_sum_ms += other.duration_sum_ms
        self.duration_max_ms = max(self.duration_max_ms, other.duration_max_ms)
        if other.first_at:
            self.first_at = min(self.first_at, other.first_at) if self.first_at else other.first_at
        self.last_at = max(self.last_at, other.last_at)

    @property
    def failure_rate(self) -> float:
        """Failed requests (400, 500-599) over all: the share a caller would call errors."""
        return self.failed / self.total if self.total else 0.0

    @property
    def average_ms(self) -> float:
        return self.duration_sum_ms / self.total if self.total else 0.0


def read_record(record: object) -> UsageHit | BadLine:
    """A decoded log line as a hit, or why it is not one."""
    if not isinstance(record, dict):
        return BadLine(NOT_AN_OBJECT, f"a line holds {type(record).__name__}, not a JSON object")
    at = _utc_second(record.get("time"))
    if at is None:
        return BadLine(NO_TIME, f"no ISO 8601 time: {str(record.get('time'))[:100]!r}")
    raw = record.get("resourceId")
    service = _service_key(raw) if isinstance(raw, str) else None
    if service is None:
        return BadLine(NO_RESOURCE_ID, f"resourceId is not an APIM service id: {str(record.get('resourceId'))[:200]!r}")
    properties = record.get("properties")
    props: dict[str, Any] = properties if isinstance(properties, dict) else {}
    duration = record.get("durationMs")
    ms = float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else 0.0
    return UsageHit(service, at[:13], names_of(props), category(props.get("responseCode")), backend_failed(props),
                    ms if math.isfinite(ms) and ms >= 0 else 0.0, at)


def names_of(props: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Every (kind, id) a record's properties name, the service total first; empty fields are omitted by APIM."""
    fields = (props.get(name) for name in ("apiId", "operationId", "apimSubscriptionId", "productId", "userId", "backendId"))
    return _names(*(value if isinstance(value, str) else None for value in fields))  # a list or dict is no id (and unhashable)


@functools.lru_cache(maxsize=65536)  # a busy hour repeats the same few thousand combinations: read each once
def _names(api: str | None, operation: str | None, subscription: str | None, product: str | None, user: str | None,
           backend: str | None) -> tuple[tuple[str, str], ...]:
    names: list[tuple[str, str]] = [(SERVICE_TOTAL, SERVICE_TOTAL_ID)]
    if isinstance(api, str) and api.strip():
        apis = api_ids(api)
        names.extend((Kind.API.value, name) for name in apis)
        if isinstance(operation, str) and operation.strip():
            names.append((OPERATION, f"{apis[-1]}/{resource_id(operation)}"))
    names.append((Kind.SUBSCRIPTION.value, resource_id(subscription) if isinstance(subscription, str) and subscription.strip()
                  else NO_SUBSCRIPTION))
    for kind, value in ((Kind.PRODUCT.value, product), (Kind.USER.value, user), (Kind.BACKEND.value, backend)):
        if isinstance(value, str) and value.strip():
            names.append((kind, resource_id(value)))
    return tuple(names)


def _utc_second(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if len(value) >= 20 and value[19] in ".Z+" and value[-1] in "Z0" and _is_utc(value[19:]) and _is_second(value[:19]):
        return value[:19] + "Z"
    try:
        return iso_z(parse_time(value, "time").replace(microsecond=0))
    except PermanentEventError:
        return None


@functools.lru_cache(maxsize=4096)  # records of one second share their first 19 characters
def _is_second(text: str) -> bool:
    """Digits where APIM writes them, and a moment that exists (not `2026-99-99T99:99:99`)."""
    if not _SECOND.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_utc(tail: str) -> bool:
    """`.1234567Z`, `Z`, `+00:00`: a fraction and a UTC zone (other offsets take parse_time's path)."""
    zone = 1 if tail.endswith("Z") else 6 if tail.endswith("+00:00") else 0
    fraction = tail[:-zone] if zone else "?"
    return fraction == "" or (fraction[0] == "." and 1 < len(fraction) <= 10 and fraction[1:].isdigit())


@functools.lru_cache(maxsize=1024)
def service_of_folder(folder: str) -> str | None:
    """The service key of an archive's unit folder (`resourceId=/SUBSCRIPTIONS/…/SERVICE/NAME/`), or None."""
    return _service_key(folder.removeprefix("resourceId=").rstrip("/"))


def streamed(service: str, services: frozenset[str] | None) -> bool:
    """Whether the stream route counts a service's gateway logs (GATEWAY_LOGS_STREAMED_SERVICES): None is every service.
    The archive route counts the others, so a service whose logs go both ways is counted once."""
    return services is None or service in services


def _service_key(value: str) -> str | None:
    try:
        return parse_service_id(value).key
    except PermanentEventError:
        return None
