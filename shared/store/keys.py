"""Table keys: a reversible encoding, the partition layout, and Table Storage's size limits.

Inventory: PartitionKey = "{family}|{service}|{bucket:02d}", RowKey = the lower-cased path with "/" as "|".
Beside the rows, in the same partition (so one transaction writes a row, its history record and the count):
the partition's count row (RowKey "~c") and the history records ("~h|{top row key}|{rest}||{inverted time}|{id}":
one resource's records are one key range, newest first, and a top-level resource's subtree is one range too).
The history table holds the change feed: one partition per service and UTC day ("~feed|{service}|{YYYYMMDD}"), two
entries per record ("e|{inverted event time}|…" in its event time's day, "r|{inverted recorded time}|…" in its
recorded time's day), written in one transaction when the days agree.
Before layout 2, history records lived in the history table under "{service}|{bucket of the event id}" and the
id (`legacy_history_partition_range`); `apim-inventory migrate` moves them. Rejected events: the UTC day ("%Y%m%d") they came,
and a hash of what makes them one rejection. Alert outbox: "pending", then "sent|{day}". Status rows: "service"
and the service. Every key rule is here; the adapters apply them, and nothing outside the store builds a key.

Every key part is percent-encoded for "%", "|", "/", "\\", "#", "?" and control characters, so
the characters Table Storage forbids never reach it and `unquote` gives the part back.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import threading
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import Kind
from shared.domain.resources import WORKSPACES, ResourceRef
from shared.store.ports import Condition, Entity, Query, StoredRow, Table

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
    rk = "|".join(encode_part(segment.lower()) for segment in ref.all_segments)
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


def continuation_after(entity: dict[str, Any]) -> dict[str, str]:
    """The continuation token that goes on after `entity`, in the read side's shape."""
    return {"PartitionKey": str(entity["PartitionKey"]), "RowKey": str(entity["RowKey"])}


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


def utf16_units(text: str) -> int:
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
            units = utf16_units(value)
            if units > MAX_STRING_CHARS:
                raise PermanentEventError("entity-too-large", f"property {name} has {units} characters; the limit is {MAX_STRING_CHARS}")
            size += 4 + 2 * units
        elif isinstance(value, datetime | int | float | bool):
            size += 8
        elif value is not None:
            size += len(str(value))
    if size > MAX_ENTITY_BYTES:
        raise PermanentEventError("entity-too-large", f"entity of about {size} bytes; the limit is {MAX_ENTITY_BYTES}")


def workspace_prefix(workspace: str) -> str:
    """The RowKey prefix of a workspace's rows in every family's partitions ("workspaces|{w}|"). Every service-level
    row's key sorts before "workspaces|" (its collection is one of apis, backends, gateways, products, subscriptions,
    users), so a workspace's rows are one RowKey range, and the service's own rows the range below them."""
    return f"{WORKSPACES}|{encode_part(workspace.lower())}|"


SERVICE_LEVEL_END = f"{WORKSPACES}|"  # every service-level row's RowKey sorts before it


def workspace_of_row_key(row_key: str) -> str:
    """The Workspace a row's RowKey names, lower case as the key holds it: a workspace's rows and the workspace's own
    row ("workspaces|{w}") give w, a service-level row ""."""
    if not row_key.startswith(SERVICE_LEVEL_END):
        return ""
    return decode_part(row_key.split("|")[1])


def workspace_of_path(path: str) -> str:
    """The same from a Path column (`workspaces/w/apis/a`, `workspaces/w`: "w"; `apis/a`: ""), lower case: for what
    carries a path and no RowKey, such as the change feed's entries written before their Workspace column."""
    parts = path.strip("/").split("/")
    return parts[1].lower() if len(parts) >= 2 and parts[0].lower() == WORKSPACES else ""


def in_workspace_ranges(kind: Kind, service_key: str, workspace: str, conditions: tuple[Condition, ...] = ()) -> list[Query]:
    """Rows of one kind of one service in `workspace` ("" for the service-level rows only), Kind and `conditions`
    filtered: one RowKey range in each of the family's partitions, in PartitionKey order, so a query of one workspace
    never reads another's rows. A workspace's own row is "workspaces|{w}": one key in one partition, in no range of ""."""
    kinds = (Condition("Kind", "eq", kind.value), *conditions)
    if kind is Kind.WORKSPACE:
        if not workspace:
            return []
        row_key = f"{WORKSPACES}|{encode_part(workspace.lower())}"
        pk = partition_key(service_key, kind.family, bucket(workspace.lower()))
        return [Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", pk), *kinds), low_rk=row_key, high_rk=row_key + " ")]
    low, high = (workspace_prefix(workspace), workspace_prefix(workspace)[:-1] + "}") if workspace else ("", SERVICE_LEVEL_END)
    return [Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition_key(service_key, kind.family, b)), *kinds),
                  low_rk=low or None, high_rk=high) for b in range(BUCKETS)]


def child_ranges(parent_row_key: str, kind: str) -> list[tuple[str, str]]:
    """RowKey ranges [low, high) that hold a parent's children in the parent's partition:
    an API's revisions (`apis|a;rev=N`) and releases (`apis|a|releases|r`), a gateway's children."""
    ranges = [(parent_row_key + "|", parent_row_key + "}")]  # "}" follows "|"
    if kind == Kind.API:
        ranges.append((parent_row_key + ";rev=", parent_row_key + ";rev>"))  # ">" follows "="
    return ranges


# -- history records, the count rows and the change feed (layout 2) -----------------------------
LAYOUT = 2
HISTORY_PREFIX = "~h|"  # after every row of a partition: a row's key starts with a collection's lower-case letters
COUNT_ROW = "~c"  # the partition's flag row, which also counts: before the history records, after the rows
COUNT_SHARDS = 8  # the count rows "~c0".."~c7" beside it, so concurrent writers of a partition rarely meet (docs/design.md)
_COUNT_END = "~d"  # after "~c" and every "~c{n}", before "~h|"
FEED_PREFIX = "~feed|"
BY_EVENT, BY_RECORDED = "e", "r"  # the feed's two orders
_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)  # Table Storage's earliest time
_INVERT = 10**18  # microseconds from 1601 to 9999 are fewer than 3.2e17
_LONG_ID = 64  # ids longer than this are keyed by a hash (the record keeps the whole id)


def inverted_time(moment: datetime) -> str:
    """18 digits that sort the newer time first, to the microsecond."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return f"{_INVERT - micros:018d}"


def _top_and_rest(ref: ResourceRef) -> tuple[str, str]:
    """The top-level resource's RowKey, and the rest of this resource's ("" for the top, ";rev=2" for a revision,
    "releases|r" for a release)."""
    rk = resource_keys(ref)[1]
    top = f"{workspace_prefix(ref.workspace) if ref.workspace is not None else ''}{encode_part(ref.segments[0].lower())}|{encode_part(ref.top_name)}"
    return top, rk[len(top):].removeprefix("|")


top_and_rest = _top_and_rest  # the audit records' keys (audit_keys.py) spell a resource's path the same way


def _own_prefix(ref: ResourceRef) -> str:
    top, rest = _top_and_rest(ref)
    return f"{HISTORY_PREFIX}{top}|{rest}||"  # no segment is empty, so "||" ends this resource's part


def _id_part(event_id: str) -> str:
    encoded = encode_part(event_id)
    if len(encoded) <= _LONG_ID:
        return encoded
    return "~" + hashlib.sha256(event_id.encode("utf-8", errors="surrogatepass")).hexdigest()[:40]


def history_keys(ref: ResourceRef, event_time: datetime, event_id: str) -> tuple[str, str]:
    """A history record's keys: in the resource's row partition, from the resource, the event's time and its id,
    so a redelivery always lands on the same key (and an id reused elsewhere is another record)."""
    pk = resource_keys(ref)[0]
    rk = f"{_own_prefix(ref)}{inverted_time(event_time)}|{_id_part(event_id)}"
    check_key(rk, "RowKey")
    return pk, rk


def history_range(ref: ResourceRef, with_children: bool = False) -> Query:
    """One resource's history records (with its children's, for a top-level resource), one key range in one
    partition. Newest first within each resource."""
    pk = resource_keys(ref)[0]
    top, rest = _top_and_rest(ref)
    prefix = f"{HISTORY_PREFIX}{top}|" if with_children and not rest else _own_prefix(ref)
    return Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=prefix, high_rk=prefix[:-1] + "}")


def count_keys(ref: ResourceRef) -> tuple[str, str]:
    """The flag row of the resource's partition (a count row too: the one that keeps the partition's flagged rows)."""
    return resource_keys(ref)[0], COUNT_ROW


_shard_slots = itertools.count(random.randrange(COUNT_SHARDS))  # each process starts at a random shard
_writer = threading.local()


def count_shard() -> str:
    """The count row this thread's writes move when they change no flag: each thread of a process takes the next of
    COUNT_SHARDS in turn (from a random start), and keeps it. So up to COUNT_SHARDS threads of one process never
    rewrite the same count row, and a cold process reads one shard per partition it writes, not all of them (a hash
    of the row's key spread one thread's writes over every shard: docs/design.md has the figures). Any shard is
    right: only the sum of a partition's count rows is a count."""
    slot: int | None = getattr(_writer, "slot", None)
    if slot is None:
        slot = _writer.slot = next(_shard_slots) % COUNT_SHARDS
    return f"{COUNT_ROW}{slot}"


def count_range(partition: str) -> Query:
    """Every count row of one partition (the flag row and its shards): one key range, one request."""
    return Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition),), low_rk=COUNT_ROW, high_rk=_COUNT_END)


def count_partitions(service_key: str, families: tuple[str, ...]) -> list[str]:
    """Every partition of one service that may hold a count row: families x buckets, read by point reads."""
    return [partition_key(service_key, family, b) for family in families for b in range(BUCKETS)]


def rows_only(query: Query) -> Query:
    """The query restricted to rows: not the count row or history records beside the inventory rows, nor the counter
    row of a day's rejected events (every row's key sorts before "~")."""
    return Query(query.table, query.low_pk, query.high_pk, query.conditions, query.low_rk, query.high_rk or "~")


def feed_partition(service_key: str, moment: datetime) -> str:
    """The service's feed partition of the UTC day of `moment`: one partition a day, so none grows without bound."""
    return f"{FEED_PREFIX}{encode_part(service_key)}|{day_partition(moment.astimezone(timezone.utc))}"


def feed_keys(service_key: str, order: str, moment: datetime, history_pk: str, history_rk: str) -> tuple[str, str]:
    """A feed entry's keys: the service's partition of the entry's own day; the order, the inverted time, and a hash
    of the history record's keys (so both entries of a record are rewritten in place, never doubled)."""
    tail = hashlib.sha256(f"{history_pk}\n{history_rk}".encode("utf-8", errors="surrogatepass")).hexdigest()[:24]
    return feed_partition(service_key, moment), f"{order}|{inverted_time(moment)}|{tail}"


def time_of_feed_row(row_key: str) -> datetime:
    """The time a feed entry's RowKey holds (so a RowKey cursor also names its day's partition)."""
    try:
        micros = _INVERT - int(row_key.split("|")[1])
        return _EPOCH + timedelta(microseconds=micros)
    except (IndexError, ValueError, OverflowError):
        raise ValueError(f"not a feed entry's RowKey: {row_key[:60]!r}") from None


def feed_range(service_key: str, order: str, since: datetime, until: datetime,
               conditions: tuple[Condition, ...] = (), start: str | None = None) -> list[Query]:
    """Feed entries of one service and order with since <= time < until, newest first: one key range in each UTC day's
    partition, the newest day first; from the RowKey `start` on when given (a page's cursor: the RowKey order is the
    same in every partition and across days, and its day is the first one read)."""
    since, last = since.astimezone(timezone.utc), (until - timedelta(microseconds=1)).astimezone(timezone.utc)
    low = f"{order}|{inverted_time(last)}"
    if start is not None and start > low:
        low, last = start, min(last, time_of_feed_row(start))
    high = f"{order}|{inverted_time(since)}|~"  # "~" follows the tail's hex digits
    days = []
    day = datetime(last.year, last.month, last.day, tzinfo=timezone.utc)
    while day >= datetime(since.year, since.month, since.day, tzinfo=timezone.utc) and low < high:
        days.append(Query(Table.HISTORY, None, None, (Condition("PartitionKey", "eq", feed_partition(service_key, day)), *conditions),
                          low, high))
        day -= timedelta(days=1)
    return days


def feed_recorded_before(service_key: str, cutoff: datetime) -> list[Query]:
    """A service's `r|` entries recorded before the cutoff: the whole days before the cutoff's (one PartitionKey range,
    which also holds those days' `e|` entries of records not yet due), then the cutoff's own day up to the cutoff."""
    prefix = f"{FEED_PREFIX}{encode_part(service_key)}|"
    today = feed_partition(service_key, cutoff)
    return [Query(Table.HISTORY, prefix, today, (), f"{BY_RECORDED}|", f"{BY_RECORDED}}}"),
            Query(Table.HISTORY, None, None, (Condition("PartitionKey", "eq", today),),
                  f"{BY_RECORDED}|{inverted_time(cutoff - timedelta(microseconds=1))}", f"{BY_RECORDED}}}")]


def feed_entry_keys(entry: Entity) -> list[tuple[str, str]]:
    """Both feed entries' keys of the record behind one feed entry (HistoryPartition, HistoryRow, EventTime and
    RecordedAt read): the service's partition is the entry's own, less its day."""
    service_part = entry["PartitionKey"].rsplit("|", 1)[0]
    keys = []
    for order, moment in ((BY_EVENT, entry["EventTime"]), (BY_RECORDED, entry["RecordedAt"])):
        pk, rk = feed_keys("", order, moment, entry["HistoryPartition"], entry["HistoryRow"])
        keys.append((f"{service_part}|{pk.rsplit('|', 1)[1]}", rk))
    return keys


def feed_purge(entries: list[StoredRow]) -> tuple[list[StoredRow], list[StoredRow]]:
    """What purging the feed's `r|` entries (HistoryPartition, HistoryRow, EventTime and RecordedAt read) deletes:
    their history records (inventory table), then both feed entries of each (history table, each in its day)."""
    records = [StoredRow({"PartitionKey": e.entity["HistoryPartition"], "RowKey": e.entity["HistoryRow"]}, "") for e in entries]
    feed = [StoredRow({"PartitionKey": pk, "RowKey": rk}, "") for e in entries for pk, rk in feed_entry_keys(e.entity)]
    return records, feed


def service_of_status(row_key: str) -> str:
    """The service key of a status row (its RowKey)."""
    return decode_part(row_key)


def partition_rows(partition_key: str, conditions: tuple[Condition, ...] = ()) -> Query:
    """The inventory rows of one partition (not its count row or history records)."""
    return rows_only(Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition_key), *conditions)))


def all_count_rows() -> Query:
    """Every partition's count rows (a filter on RowKey in every partition: a table scan, for a migration)."""
    return Query(Table.INVENTORY, conditions=(Condition("RowKey", "ge", COUNT_ROW), Condition("RowKey", "lt", _COUNT_END)))


def history_records(low_pk: str | None = None, high_pk: str | None = None) -> Query:
    """Layout 2's history records among the inventory's rows (the RowKey range of the prefix, in every partition)."""
    return Query(Table.INVENTORY, low_pk, high_pk, (), HISTORY_PREFIX, HISTORY_PREFIX[:-1] + "}")


def legacy_history_keys(service_key: str, event_id: str) -> tuple[str, str]:
    """Layout 1: PartitionKey "{service}|{bucket of id}", RowKey the id."""
    pk = f"{encode_part(service_key)}|{bucket(event_id):02d}"
    rk = encode_part(event_id)
    check_key(pk, "PartitionKey")
    check_key(rk, "RowKey")
    return pk, rk


def legacy_history_partition_range(service_key: str) -> tuple[str, str]:
    """Layout 1: the first and last history partitions of one service (inclusive)."""
    prefix = encode_part(service_key)
    return f"{prefix}|00", f"{prefix}|{BUCKETS - 1:02d}"


def legacy_history_query() -> Query:
    """Layout 1's history records: every history-table partition but the feed's."""
    return Query(Table.HISTORY, None, FEED_PREFIX)


# -- the read side's key ranges ------------------------------------------------------------------
def of_kind(kind: Kind, service_key: str | None = None, conditions: tuple[Condition, ...] = ()) -> Query:
    """Rows of one kind: its family's key range (in one service, or in all), filtered on Kind."""
    return Query(Table.INVENTORY, *family_range(kind.family, service_key), (Condition("Kind", "eq", kind.value), *conditions))


def in_workspace(family: str, service_key: str, workspace: str) -> Query:
    """A workspace's rows of one family: the family's partitions of the service, the workspace's RowKey range."""
    prefix = workspace_prefix(workspace)
    return Query(Table.INVENTORY, *family_range(family, service_key), (), prefix, prefix[:-1] + "}")


def of_family(family: str, service_key: str) -> Query:
    """A family's rows in one service (not the count rows and history records beside them)."""
    return rows_only(Query(Table.INVENTORY, *family_range(family, service_key)))


def day_partition(moment: datetime) -> str:
    """The partition of what happened on a UTC day (rejected events, sent alerts)."""
    return f"{moment:%Y%m%d}"


def rejected_keys(received_at: datetime, identity: str) -> tuple[str, str]:
    return day_partition(received_at), hashlib.sha256(identity.encode("utf-8", errors="surrogatepass")).hexdigest()[:40]


REJECTED_COUNT_ROW = "~count"  # each day partition's counter row, after every record (a hash in hex digits)


def rejected_count_keys(received_at: datetime) -> tuple[str, str]:
    return day_partition(received_at), REJECTED_COUNT_ROW


def rejected_from(low: datetime | None, high: datetime | None = None, conditions: tuple[Condition, ...] = ()) -> Query:
    """Rejected records of the UTC days from `low` (inclusive) to `high` (exclusive), not their counter rows."""
    return Query(Table.REJECTED, day_partition(low) if low else None, day_partition(high) if high else None, conditions, None, "~")


def rejected_counters(low: datetime | None, high: datetime | None = None) -> Query:
    """The counter rows of the UTC days from `low` (inclusive) to `high` (exclusive)."""
    return Query(Table.REJECTED, day_partition(low) if low else None, day_partition(high) if high else None, (),
                 REJECTED_COUNT_ROW, REJECTED_COUNT_ROW + "\0")


PENDING_ALERTS = "pending"
SENT_ALERTS = "sent|"


def sent_partition(now: datetime) -> str:
    return f"{SENT_ALERTS}{day_partition(now)}"


def pending_alerts() -> Query:
    return Query(Table.OUTBOX, conditions=(Condition("PartitionKey", "eq", PENDING_ALERTS),))


def sent_alerts_from(since: datetime | None) -> Query:
    """Sent alerts of the UTC days from `since`'s on (an alert is sent on or after the day it was raised); all of
    them when None."""
    return Query(Table.OUTBOX, sent_partition(since) if since else SENT_ALERTS, SENT_ALERTS[:-1] + "}")


def sent_alerts_before(cutoff: datetime) -> Query:
    """Sent alerts of the whole UTC days before the cutoff's."""
    return Query(Table.OUTBOX, SENT_ALERTS, sent_partition(cutoff))


STATUS_PARTITION = "service"
LAYOUT_KEYS = ("layout", "layout")  # the status table's layout marker: Layout (2) and CountsBuiltAt


def status_keys(service_key: str) -> tuple[str, str]:
    return STATUS_PARTITION, encode_part(service_key)


def status_rows() -> Query:
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", STATUS_PARTITION),))


# -- a sync's checkpoint and the keys its listing saw (status table) ----------------------------
SYNC_PARTITION = "sync"
SEEN_PREFIX = "sync-seen|"


def sync_keys(service_key: str) -> tuple[str, str]:
    """The checkpoint row of a service's sync (one per service: its lease, position and counts)."""
    return SYNC_PARTITION, encode_part(service_key)


def sync_rows() -> Query:
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", SYNC_PARTITION),))


def seen_keys(service_key: str, unit: int, page: int) -> tuple[str, str]:
    """The scratch entity of one listed page: the RowKeys it saw. Unit, then page, so a unit's pages are one range."""
    return SEEN_PREFIX + encode_part(service_key), f"{unit:05d}|{page:07d}"


def seen_pages(service_key: str, unit: int | None = None) -> Query:
    """Every scratch entity of a service's sync, or one unit's."""
    pk = SEEN_PREFIX + encode_part(service_key)
    low, high = (f"{unit:05d}|", f"{unit:05d}}}") if unit is not None else (None, None)  # "}" follows "|"
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=low, high_rk=high)


def rows_between(partition: str, low_rk: str, high_rk: str) -> Query:
    """The rows of one partition from low_rk to high_rk, both included (keys hold no character below a space)."""
    return Query(Table.INVENTORY, conditions=(Condition("PartitionKey", "eq", partition),), low_rk=low_rk, high_rk=high_rk + " ")


# -- daily count snapshots (status table) ------------------------------------------------------
SNAPSHOT_PREFIX = "snap|"


def snapshot_keys(service_key: str, day: datetime) -> tuple[str, str]:
    """A service's counts as the snapshot timer found them on a UTC day: one row per service and day."""
    return f"{SNAPSHOT_PREFIX}{encode_part(service_key)}", day_partition(day)


def snapshot_range(service_key: str, first_day: datetime, last_day: datetime) -> Query:
    """A service's snapshots from `first_day` to `last_day` (both included): one key range of its partition."""
    pk, low = snapshot_keys(service_key, first_day)
    return Query(Table.STATUS, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=low, high_rk=day_partition(last_day) + "~")


def day_of_snapshot(row_key: str) -> datetime:
    return datetime(int(row_key[:4]), int(row_key[4:6]), int(row_key[6:8]), tzinfo=timezone.utc)


def snapshot_entity(service_key: str, day: datetime, columns: dict[str, Any]) -> dict[str, Any]:
    pk, rk = snapshot_keys(service_key, day)
    return {"PartitionKey": pk, "RowKey": rk, **columns}
