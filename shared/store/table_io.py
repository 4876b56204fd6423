"""azure-data-tables at the Table store's edge: SDK entities into plain dicts, the store's operations into the SDK's
transaction tuples, conditional single writes, and queries as parameterised filters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.errors import WriteConflict
from shared.store.ports import Entity, Query, StoredRow
from shared.store.transactions import CREATE, DELETE, MERGE, REPLACE, Op


def as_entity(entity: Any) -> Entity:
    """An SDK entity as a plain dict, its datetimes as plain aware UTC datetimes (not the SDK's subclass)."""
    out: Entity = {}
    for key, value in entity.items():
        if isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                             value.microsecond, tzinfo=timezone.utc)
        out[key] = value
    return out


def stored(entity: Any) -> StoredRow:
    return StoredRow(as_entity(entity), entity.metadata["etag"])


def operation(op: Op) -> tuple[Any, ...]:
    """One operation as azure-data-tables takes it in a transaction."""
    if op.action == CREATE:
        return ("create", op.entity)
    if op.action == DELETE:
        when = MatchConditions.IfNotModified if op.etag else MatchConditions.Unconditionally
        return ("delete", op.entity, {"etag": op.etag, "match_condition": when})
    if op.action in (REPLACE, MERGE):
        mode = UpdateMode.REPLACE if op.action == REPLACE else UpdateMode.MERGE
        return ("update", op.entity, {"mode": mode, "etag": op.etag, "match_condition": MatchConditions.IfNotModified})
    return ("upsert", op.entity, {"mode": UpdateMode.REPLACE})


def put(table: TableClient, entity: Entity, etag: str | None) -> StoredRow:
    """Insert when etag is None, else replace under If-Match; WriteConflict when someone else wrote first."""
    try:
        if etag is None:
            meta = table.create_entity(entity)
        else:
            meta = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
    except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
        raise WriteConflict(f"{(entity['PartitionKey'], entity['RowKey'])} changed since it was read") from exc
    return StoredRow(dict(entity), meta["etag"])


def entities(table: TableClient, query: Query, page_size: int | None, select: tuple[str, ...] | None = None) -> Any:
    """The query as a filter of `column op @pN` with the values as parameters (never pasted into the text)."""
    parts, params = [], {}
    if query.low_pk is not None:
        parts.append("PartitionKey ge @low")
        params["low"] = query.low_pk
    if query.high_pk is not None:
        parts.append("PartitionKey lt @high")
        params["high"] = query.high_pk
    if query.low_rk is not None:
        parts.append("RowKey ge @lowrk")
        params["lowrk"] = query.low_rk
    if query.high_rk is not None:
        parts.append("RowKey lt @highrk")
        params["highrk"] = query.high_rk
    for n, condition in enumerate(query.conditions):
        parts.append(f"{condition.column} {condition.op} @p{n}")
        params[f"p{n}"] = condition.value
    columns = list(select) if select else None
    if parts:
        return table.query_entities(" and ".join(parts), parameters=params, results_per_page=page_size, select=columns)
    return table.list_entities(results_per_page=page_size, select=columns)
