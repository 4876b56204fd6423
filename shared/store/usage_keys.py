"""The keys of the usage table (INVENTORY_USAGE_TABLE): what the gateway logs say about use, and where their reader
stands. One module names every key, so the reader that writes them and the reports that read them agree.

    hourly contributions  PK  uh|{service}|{YYYYMMDD}            RK  {kind}|{HH}|{source}|{pack, 4 digits}
    daily roll-ups        PK  ud|{service}|{kind}|{YYYYMM}       RK  {YYYYMMDD}|{id}
    roll-up markers       PK  ur|{service}                       RK  {kind}|{YYYYMMDD}
    last use              PK  ul|{service}|{kind}                RK  {id}
    tracking              PK  ut                                 RK  {service}
    a run's pending uses  PK  uw                                 RK  {the run's id, 32 hex}
    checkpoints           PK  uc|{container}                     RK  {sha256 of the blob's name, 32 hex}
    read marks            PK  um|{container}                     RK  {sha256 of the unit folder, 32 hex}
    stream checkpoints    PK  us|{hub}                           RK  {partition id}
    bad lines             PK  ub|{container}|{YYYYMMDD}           RK  {source}|{offset, 13 digits}

`{service}` is the service's key (its name, lower case), `{kind}` a counted kind (domain/usage.py), `{id}` the
resource's id as the domain normalises it (lower case, key-encoded). An hourly contribution packs every id one read
counted for one (kind, hour) into a few entities (shared/store/usage_rows.py, `packed_rows`), so a busy chunk writes a
handful of entities, not one per id; a service's day is one partition, so a chunk's hours of one day are one
transaction, and a report reads a (kind, day) of the window as one key range. `{source}` names one read of one blob:
`{blob}.{generation}.{start}.{end}` (the blob's hash, its creation time as a number, the byte range), so the same
bytes read again land on the same keys, and a replaced blob (another generation) on others."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from shared.store.keys import encode_part
from shared.store.ports import Condition, Entity, Query, Table

OFFSET_DIGITS = 13  # byte offsets up to 10 TB: an append blob holds at most 50,000 blocks of 100 MiB (about 4.75 TiB)


def keyed(keys: tuple[str, str], columns: Mapping[str, Any]) -> Entity:
    """An entity of the usage table under `keys` (built by the functions below), the keys first."""
    return {"PartitionKey": keys[0], "RowKey": keys[1], **columns}


def blob_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


def source(blob_name: str, generation: int, start: int, end: int) -> str:
    return f"{blob_hash(blob_name)[:16]}.{generation}.{start:0{OFFSET_DIGITS}d}.{end:0{OFFSET_DIGITS}d}"


def source_prefix(blob_name: str, generation: int) -> str:
    """Every source of one generation of one blob starts so (retiring a replaced blob's contributions)."""
    return f"{blob_hash(blob_name)[:16]}.{generation}."


def hour_text(moment: datetime) -> str:
    return f"{moment:%Y%m%d%H}"


PACK_DIGITS = 4


def hourly_partition(service_key: str, moment: datetime) -> str:
    """One service's hourly contributions of one day (every kind, every hour): `uh|{service}|{YYYYMMDD}`."""
    return f"uh|{encode_part(service_key)}|{moment:%Y%m%d}"


def hourly_keys(service_key: str, kind: str, moment: datetime, read: str, pack: int) -> tuple[str, str]:
    """The `pack`-th entity of what one read counted for one (kind, hour) of one service."""
    return hourly_partition(service_key, moment), f"{kind}|{moment:%H}|{read}|{pack:0{PACK_DIGITS}d}"


def hourly_rows(service_key: str, kind: str, first: datetime, last: datetime | None = None) -> Query:
    """One kind's contributions of the hours `first` to `last` (both included; the same day): one partition, one key
    range. `last` defaults to `first`: one hour."""
    last = first if last is None else last
    assert f"{first:%Y%m%d}" == f"{last:%Y%m%d}", "one day's hours: one partition"
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", hourly_partition(service_key, first)),),
                 low_rk=f"{kind}|{first:%H}|", high_rk=f"{kind}|{last:%H}}}")


def daily_partition(service_key: str, kind: str, moment: datetime) -> str:
    return f"ud|{encode_part(service_key)}|{kind}|{moment:%Y%m}"


def daily_keys(service_key: str, kind: str, day: datetime, resource_id: str) -> tuple[str, str]:
    return daily_partition(service_key, kind, day), f"{day:%Y%m%d}|{encode_part(resource_id)}"


def daily_rows(service_key: str, kind: str, day: datetime) -> Query:
    """One day's roll-ups of one kind: a key range of its month's partition."""
    pk = daily_partition(service_key, kind, day)
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=f"{day:%Y%m%d}|", high_rk=f"{day:%Y%m%d}}}")


def rollup_marker_keys(service_key: str, kind: str, day: datetime) -> tuple[str, str]:
    return f"ur|{encode_part(service_key)}", f"{kind}|{day:%Y%m%d}"


def rollup_markers(service_key: str) -> Query:
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", f"ur|{encode_part(service_key)}"),))


def rollup_marker_range(service_key: str, kind: str, first_day: datetime, last_day: datetime) -> Query:
    """The roll-up markers of one kind from `first_day` to `last_day` (both included): a report's window, one key range."""
    pk, low = rollup_marker_keys(service_key, kind, first_day)
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=low,
                 high_rk=rollup_marker_keys(service_key, kind, last_day)[1] + " ")  # no key holds a character below a space


def last_use_partition(service_key: str, kind: str) -> str:
    return f"ul|{encode_part(service_key)}|{kind}"


def last_use_keys(service_key: str, kind: str, resource_id: str) -> tuple[str, str]:
    return last_use_partition(service_key, kind), encode_part(resource_id)


def last_use_rows(service_key: str, kind: str) -> Query:
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", last_use_partition(service_key, kind)),))


TRACKING_PARTITION = "ut"


def tracking_keys(service_key: str) -> tuple[str, str]:
    return TRACKING_PARTITION, encode_part(service_key)


def tracking_rows() -> Query:
    """One row per service whose logs were read: when its records begin (one partition: the services)."""
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", TRACKING_PARTITION),))


PENDING_USES_PARTITION = "uw"


def pending_use_keys(run: str) -> tuple[str, str]:
    """A run's hours whose last uses it has not written yet (they are written once a run)."""
    return PENDING_USES_PARTITION, run


def pending_use_rows() -> Query:
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", PENDING_USES_PARTITION),))


def checkpoint_keys(container: str, blob_name: str) -> tuple[str, str]:
    return f"uc|{container}", blob_hash(blob_name)


def checkpoint_rows(container: str) -> Query:
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", f"uc|{container}"),))


def bad_line_partition(container: str, day: datetime) -> str:
    return f"ub|{container}|{day:%Y%m%d}"


def bad_line_keys(container: str, day: datetime, read: str, offset: int) -> tuple[str, str]:
    return bad_line_partition(container, day), f"{read}|{offset:0{OFFSET_DIGITS}d}"


def bad_line_rows(container: str, day: datetime) -> Query:
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", bad_line_partition(container, day)),))


def stream_checkpoint_keys(hub: str, partition: str) -> tuple[str, str]:
    """How far an Event Hubs partition is read (`hub` names the namespace, the hub and the consumer group)."""
    return f"us|{encode_part(hub)}", encode_part(partition)


def mark_keys(container: str, unit_prefix: str) -> tuple[str, str]:
    """How far one unit of a container (a service's folder) is read: PK `um|{container}`, RK the folder's hash."""
    return f"um|{container}", blob_hash(unit_prefix)


def partition_rows(partition_key: str) -> Query:
    """Every row of one partition the keys above name (retiring a replaced blob's contributions)."""
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", partition_key),))


def read_of(row_key: str) -> str:
    """The source a contribution's RowKey names (`{kind}|{HH}|{source}|{pack}`)."""
    return row_key.split("|")[2]


def day_of_partition(partition_key: str) -> datetime:
    """The day an hourly partition is of."""
    text = partition_key.rsplit("|", 1)[-1]
    return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), tzinfo=timezone.utc)


def day_of_row(row_key: str) -> datetime:
    """The day a daily roll-up counts: its RowKey's (`{YYYYMMDD}|{id}`)."""
    return day_of_partition(row_key.split("|", 1)[0])


def hour_of_row(partition_key: str, row_key: str) -> datetime:
    """The hour an hourly contribution counts: its partition's day, its RowKey's hour."""
    return day_of_partition(partition_key).replace(hour=int(row_key.split("|")[1]))


def hourly_before(service_key: str, moment: datetime) -> Query:
    """Every hourly contribution of one service in the days before `moment`'s (a range of partitions)."""
    low = f"uh|{encode_part(service_key)}|"
    return Query(Table.USAGE, low_pk=low, high_pk=f"{low}{moment:%Y%m%d}")


def hourly_day(service_key: str, kind: str, day: datetime) -> Query:
    """One day's hourly contributions of one kind: one key range of the day's partition."""
    return Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", hourly_partition(service_key, day)),),
                 low_rk=f"{kind}|", high_rk=f"{kind}}}")


def daily_before(service_key: str, kind: str, day: datetime) -> tuple[Query, Query]:
    """The daily roll-ups of the days before `day`: the months before its own, then its month's earlier days."""
    low = f"ud|{encode_part(service_key)}|{kind}|"
    return (Query(Table.USAGE, low_pk=low, high_pk=daily_partition(service_key, kind, day)),
            Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", daily_partition(service_key, kind, day)),),
                  high_rk=f"{day:%Y%m%d}|"))


def rollup_markers_before(service_key: str, day: datetime, kinds: tuple[str, ...]) -> list[Query]:
    pk = f"ur|{encode_part(service_key)}"
    return [Query(Table.USAGE, conditions=(Condition("PartitionKey", "eq", pk),), low_rk=f"{kind}|", high_rk=f"{kind}|{day:%Y%m%d}")
            for kind in kinds]


def bad_lines_before(container: str, day: datetime) -> Query:
    """The bad lines seen in the days before `day`'s: whole partitions."""
    return Query(Table.USAGE, low_pk=f"ub|{container}|", high_pk=bad_line_partition(container, day))
