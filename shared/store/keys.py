"""Table keys: a reversible encoding, the partition layout, and Table Storage's size limits.

Inventory: PartitionKey = "{family}|{service}|{bucket:02d}", RowKey = the lower-cased path with "/" as "|".
History: "{service}|{bucket of the event id}" and the id. Rejected events: the UTC day ("%Y%m%d") they came,
and a hash of what makes them one rejection. Alert outbox: "pending", then "sent|{day}". Status rows: "service"
and the service. Every key rule is here; the adapters apply them, and nothing outside the store builds a key.

Every key part is percent-encoded for "%", "|", "/", "\\", "#", "?" and control characters, so
the characters Table Storage forbids never reach it and `unquote` gives the part back.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import Kind
from shared.domain.resources import ResourceRef
from shared.store.ports import Condition, Query, Table

BUCKETS = 16
MAX_KEY_CHARS = 512  # Azurite's cap; Azure allows 1 KiB (512 UTF-16 characters)
MAX_STRING_CHARS = 32 * 1024
MAX_PROPERTIES = 252
MAX_ENTITY_BYTES = 1024 * 1024

_ESCAPED = frozenset('%|/\\#?')


def encode_part(text: str) -> str:
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPED or code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000:
            try:
                out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
            except UnicodeEncodeError as exc:
                raise PermanentEventError("forbidden-key", f"key part is not valid Unicode: {text[:100]!r}") from exc
        else:
            out.append(ch)
    return "".join(out)


def decode_part(text: str) -> str:
    return unquote(text)


def bucket(name: str) -> int:
    return zlib.crc32(name.encode("utf-8", errors="surrogatepass")) % BUCKETS


def partition_key(service_key: str, family: str, bucket_no: int) -> str:
    return f"{family}|{encode_part(service_key)}|{bucket_no:02d}"


def family_range(family: str, service_key: str | None = None) -> tuple[str, str]:
    """The PartitionKey range [low, high) of one family, in one service or in all of them.
    "}" follows "|", and a "|" inside a name is encoded, so the range holds nothing else."""
    prefix = family if service_key is None else f"{family}|{encode_part(service_key)}"
    return f"{prefix}|", f"{prefix}}}"


@functools.lru_cache(maxsize=1 << 16)  # a merge and a sync ask for the same resource's keys several times
def resource_keys(ref: ResourceRef) -> tuple[str, str]:
    """(PartitionKey, RowKey) of a resource's inventory row."""
    pk = partition_key(ref.service.key, ref.family, bucket(ref.top_name))
    rk = "|".join(encode_part(segment.lower()) for segment in ref.segments)
    check_key(pk, "PartitionKey")
    check_key(rk, "RowKey")
    return pk, rk


def row_keys(ref: ResourceRef) -> tuple[str, str, str | None]:
    """(PartitionKey, RowKey, the parent's RowKey or None): a resource's row and its parent's share a partition."""
    pk, rk = resource_keys(ref)
    return pk, rk, resource_keys(ref.parent)[1] if ref.parent else None


def with_keys(ref: ResourceRef, entity: dict[str, Any]) -> dict[str, Any]:
    """The entity under the resource's keys, the keys first."""
    pk, rk = resource_keys(ref)
    return {"PartitionKey": pk, "RowKey": rk, **entity}


def check_keys(ref: ResourceRef) -> None:
    """Raise PermanentEventError when the resource's keys would break Table Storage's limits."""
    resource_keys(ref)


def as_continuation(value: object) -> dict[str, str] | None:
    """A continuation token as the read side gives one (the next PartitionKey and RowKey), or None."""
    if not isinstance(value, dict) or set(value) != {"PartitionKey", "RowKey"} or not all(isinstance(v, str) for v in value.values()):
        return None
    return {"PartitionKey": value["PartitionKey"], "RowKey": value["RowKey"]}


def key_of(entity: dict[str, Any]) -> tuple[str, str]:
    return entity["PartitionKey"], entity["RowKey"]


def path_from_row_key(row_key: str) -> str:
    return "/".join(decode_part(part) for part in row_key.split("|"))


def check_key(key: str, what: str) -> None:
    if not key:
        raise PermanentEventError("forbidden-key", f"{what} would be empty")
    if len(key) > MAX_KEY_CHARS:
        raise PermanentEventError("key-too-large", f"{what} would be {len(key)} characters; the limit is {MAX_KEY_CHARS}")
    if any(c in key for c in "/\\#?") or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in key):
        raise PermanentEventError("forbidden-key", f"{what} holds a character Table Storage forbids")


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def check_entity(entity: dict[str, Any]) -> None:
    """Table Storage's limits, checked before writing: Azurite does not enforce them, and Azure's
    400 would only turn into retries."""
    props = [k for k in entity if k not in ("PartitionKey", "RowKey")]
    if len(props) > MAX_PROPERTIES:
        raise PermanentEventError("entity-too-large", f"{len(props)} properties; the limit is {MAX_PROPERTIES}")
    size = 4
    for name, value in entity.items():
        size += 8 + 2 * len(name)
        if isinstance(value, str):
            units = _utf16_units(value)
            if units > MAX_STRING_CHARS:
                raise PermanentEventError("entity-too-large", f"property {name} has {units} characters; the limit is {MAX_STRING_CHARS}")
            size += 4 + 2 * units
        elif isinstance(value, datetime | int | float | bool):
            size += 8
        elif value is not None:
            size += len(str(value))
    if size > MAX_ENTITY_BYTES:
        raise PermanentEventError("entity-too-large", f"entity of about {size} bytes; the limit is {MAX_ENTITY_BYTES}")


def child_ranges(parent_row_key: str, kind: str) -> list[tuple[str, str]]:
    """RowKey ranges [low, high) that hold a parent's children in the parent's partition:
    an API's revisions (`apis|a;rev=N`) and releases (`apis|a|releases|r`), a gateway's children."""
    ranges = [(parent_row_key + "|", parent_row_key + "}")]  # "}" follows "|"
    if kind == Kind.API:
        ranges.append((parent_row_key + ";rev=", parent_row_key + ";rev>"))  # ">" follows "="
    return ranges


def history_keys(service_key: str, event_id: str) -> tuple[str, str]:
    """History is keyed on source plus event id: PartitionKey "{service}|{bucket of id}", RowKey the id."""
    pk = f"{encode_part(service_key)}|{bucket(event_id):02d}"
    rk = encode_part(event_id)
    check_key(pk, "PartitionKey")
    check_key(rk, "RowKey")
    return pk, rk


def history_partition_range(service_key: str) -> tuple[str, str]:
    """The first and last history partitions of one service (inclusive)."""
    prefix = encode_part(service_key)
    return f"{prefix}|00", f"{prefix}|{BUCKETS - 1:02d}"


# -- the read side's key ranges ------------------------------------------------------------------
def of_kind(kind: Kind, service_key: str | None = None, conditions: tuple[Condition, ...] = ()) -> Query:
    """Rows of one kind: its family's key range (in one service, or in all), filtered on Kind."""
    return Query(Table.INVENTORY, *family_range(kind.family, service_key), (Condition("Kind", "eq", kind.value), *conditions))


def of_family(family: str, service_key: str) -> Query:
    return Query(Table.INVENTORY, *family_range(family, service_key))


def day_partition(moment: datetime) -> str:
    """The partition of what happened on a UTC day (rejected events, sent alerts)."""
    return f"{moment:%Y%m%d}"


def rejected_keys(received_at: datetime, identity: str) -> tuple[str, str]:
    return day_partition(received_at), hashlib.sha256(identity.encode("utf-8", errors="surrogatepass")).hexdigest()[:40]


def rejected_from(low: datetime | None, high: datetime | None = None, conditions: tuple[Condition, ...] = ()) -> Query:
    """Rejected records of the UTC days from `low` (inclusive) to `high` (exclusive)."""
    return Query(Table.REJECTED, day_partition(low) if low else None, day_partition(high) if high else None, conditions)


PENDING_ALERTS = "pending"
SENT_ALERTS = "sent|"


def sent_partition(now: datetime) -> str:
    return f"{SENT_ALERTS}{day_partition(now)}"


def pending_alerts() -> Query:
    return Query(Table.OUTBOX, conditions=(Condition("PartitionKey", "eq", PENDING_ALERTS),))


def sent_alerts_before(cutoff: datetime) -> Query:
    """Sent alerts of the whole UTC days before the cutoff's."""
    return Query(Table.OUTBOX, SENT_ALERTS, sent_partition(cutoff))


STATUS_PARTITION = "service"


def status_keys(service_key: str) -> tuple[str, str]:
    return STATUS_PARTITION, encode_part(service_key)


def status_rows() -> Query:
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", STATUS_PARTITION),))
