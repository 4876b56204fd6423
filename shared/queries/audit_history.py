"""`history` with who made each change: a resource's history records and its audit records (one key range each, in
its partition: shared/store/keys.py and audit_keys.py), joined when reading (domain/audit_join.py). A path the
inventory has no kind for (a named value, a certificate, an API's policy) has only audit records: its history is
those. With `since`, both are read from `since` less the join window, joined, and only then kept from `since`
on: what the whole history shows from `since` on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain.audit import Target
from shared.domain.audit_join import joined
from shared.domain.kinds import Kind
from shared.domain.resources import ResourceRef
from shared.store.audit_keys import audit_range, target_range
from shared.store.ports import Condition, Entity, Query, TableReader

INVENTORY_KINDS = frozenset(k.value for k in Kind)


def audit_rows(reader: TableReader, query: Query, since: datetime | None, window: timedelta) -> list[Entity]:
    if since is not None:  # a record just before `since` may still explain an event just after it
        query = replace(query, conditions=(*query.conditions, Condition("AuditTime", "ge", since - window)))
    rows, _ = reader.page(query, None)
    return rows


def with_callers(reader: TableReader, ref: ResourceRef, records: list[Entity], since: datetime | None, with_children: bool,
                 window: timedelta) -> list[dict[str, Any]]:
    """The records (read from `since` less the window) joined with the resource's audit records: its own and those of the paths below it that the
    inventory has no kind for (its policies, operations); with `with_children`, its children's too."""
    audits = [a for a in audit_rows(reader, audit_range(ref), since, window)
              if with_children or str(a.get("Path", "")).lower() == ref.path.lower() or a.get("ResourceKind") not in INVENTORY_KINDS]
    return _since(joined(records, audits, window), since)


def of_target(reader: TableReader, target: Target, since: datetime | None, window: timedelta) -> list[dict[str, Any]]:
    return _since(joined([], audit_rows(reader, target_range(target), since, window), window), since)


def _since(entries: list[dict[str, Any]], since: datetime | None) -> list[dict[str, Any]]:
    return entries if since is None else [e for e in entries if e["EventTime"] >= since]
