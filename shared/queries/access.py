"""Who can call an API, and what a user's subscriptions give access to, read through the access index.

`api_access` reads the API's row, the product API links of the API (index `api`), each such product's row, and the
subscriptions scoped to the API, to each product or to all APIs (index `scope`); every index entry is checked against
the row it points to (shared.store.access_index), so the answer is exact though the index may hold stale entries.
Requests: a few point reads, one range read per scope, one point read per entry: none scans a kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shared.domain.access import Scope, api_value, can_call, linked_api, open_to_anyone, owner_name, parse_scope
from shared.domain.errors import PermanentEventError
from shared.domain.kinds import Kind
from shared.domain.model import Stamp
from shared.domain.resources import ResourceRef, parse_path, row_ref, within
from shared.store.access_index import API, OWNER, SCOPE, children_of, holds, live_row, lookup, status_row
from shared.store.keys import workspace_of_row_key
from shared.store.ports import Entity, Table, TableReader

ENRICHED_ID = "arm"  # the event id of an enrichment's stamp (shared.management.enrichment)


def indexed_rows(reader: TableReader, index: str, service_key: str, value: str) -> Iterator[Entity]:
    """The live rows that hold `value` in `index` now: each entry's row point-read and checked, stale entries skipped."""
    seen: set[tuple[str, str]] = set()
    entries, _ = reader.page(lookup(index, service_key, value), None)
    for entry in entries:
        target = (str(entry["TargetPartition"]), str(entry["TargetRow"]))
        if target in seen:
            continue
        seen.add(target)
        row = reader.get(Table.INVENTORY, *target)
        if row is not None and holds(row.entity, index, value):
            yield row.entity


def _grant(subscription: Entity, scope: Scope) -> Entity:
    return {"CanCall": can_call(subscription), "Subscription": subscription.get("Name"), "Path": subscription.get("Path"),
            "Service": subscription.get("Service"),
            "Owner": owner_name(subscription.get("OwnerId")), "SubscriptionState": subscription.get("SubscriptionState"),
            "Via": "all APIs" if scope.kind is None else scope.kind.value, "Product": scope.name if scope.kind is Kind.PRODUCT else None,
            "DisplayName": subscription.get("DisplayName"), "ExpirationDate": subscription.get("ExpirationDate"),
            "Workspace": scope.workspace or ""}


def link_api_name(link: Entity) -> str:
    """The API a product's API link stands for: a workspace product's link names it by LinkedApiId, a service
    product's link is named after it."""
    linked = linked_api(link.get("LinkedApiId")) if workspace_of_row_key(str(link.get("RowKey", ""))) else None
    return linked.name or "" if linked is not None else str(link.get("Name", "")).lower()


def _product_of(link: Entity) -> ResourceRef | None:
    """The product an API link row belongs to (its workspace's, for a workspace product's link)."""
    try:
        return row_ref(link).parent
    except PermanentEventError:
        return None


def membership_as_of(reader: TableReader, service_key: str, products: list[Entity]) -> datetime | None:
    """When the product API links the answer used were last read: the service's last complete sync, or a product's
    enrichment after it; the oldest of the products'. None when they were never read completely."""
    status = status_row(reader, service_key)
    synced = status.get("LastCompleteSyncAt") if status is not None else None
    times = []
    for product in products:
        key = product.get("DetailsKey")
        enriched = Stamp.decode(key).time if isinstance(key, str) and Stamp.decode(key).event_id == ENRICHED_ID else None
        best = max((t for t in (synced, enriched) if t is not None), default=None)
        times.append(best)
    if not products:
        return synced if isinstance(synced, datetime) else None
    return None if any(t is None for t in times) else min(t for t in times if t is not None)


def api_access(reader: TableReader, ref: ResourceRef) -> dict[str, Any] | None:
    """Every subscription that can call the API, and why; None when the inventory has no live API of this id."""
    api_ref = ref.parent if ref.kind is Kind.API and ref.revision is not None and ref.parent else ref
    api = live_row(reader, api_ref)
    if api is None:
        return None
    service_key, name = api_ref.service.key, api_ref.name.lower()
    workspace = api_ref.workspace.lower() if api_ref.workspace is not None else None
    products = []
    for link in indexed_rows(reader, API, service_key, api_value(workspace, name)):
        product_ref = _product_of(link)
        product = live_row(reader, product_ref) if product_ref is not None else None
        if product is not None:
            products.append(product)
    products.sort(key=lambda p: str(p.get("Name", "")).lower())
    # A workspace's API: its own scope, its workspace's products, the workspace's all-APIs scope, and the service's
    # all-APIs scope too: Microsoft says nothing of whether the service's all-access subscription reaches APIs in
    # workspaces, so the answer lists it (a caller too many rather than one missed; docs/design.md).
    product_scopes = [Scope(Kind.PRODUCT, str(p["Name"]).lower(), workspace_of_row_key(str(p["RowKey"])) or None) for p in products]
    scopes = [Scope(Kind.API, name, workspace), *product_scopes, *([Scope(None, workspace=workspace)] if workspace else []), Scope(None)]
    grants = [_grant(sub, scope) for scope in scopes for sub in indexed_rows(reader, SCOPE, service_key, scope.key)]
    grants.sort(key=lambda g: (str(g["Subscription"]).lower(), str(g["Via"]), str(g["Product"] or "")))
    anyone = (["the API requires no subscription"] if open_to_anyone(api) else []) + [
        f"product {p['Name']} requires no subscription" for p in products if open_to_anyone(p)]
    return {"name": api.get("Name"), "service": api.get("Service"), "path": api.get("Path"), "workspace": api_ref.workspace or "",
            "openToAnyone": anyone,
            "products": [{"Product": p.get("Name"), "DisplayName": p.get("DisplayName"), "ProductState": p.get("ProductState"),
                          "SubscriptionRequired": p.get("SubscriptionRequired"), "Workspace": p.get("Workspace") or ""} for p in products],
            "membershipAsOf": membership_as_of(reader, service_key, products),
            "callers": [g for g in grants if g["CanCall"]], "notCallable": [g for g in grants if not g["CanCall"]]}


def product_apis(reader: TableReader, product: ResourceRef, kind: Kind = Kind.PRODUCT_API) -> list[Entity]:
    """A product's live API links (or groups): one key range in the product's partition."""
    rows: list[Entity] = []
    for query in children_of(product, kind):
        found, _ = reader.page(query, None)
        rows += [r for r in found if not r.get("IsDeleted")]
    return rows


def user_access(reader: TableReader, ref: ResourceRef, workspace: str | None = None) -> dict[str, Any] | None:
    """What a user's subscriptions give access to, one entry per subscription and API (or all APIs); None when the
    inventory knows neither the user nor any subscription of theirs. With `workspace` (lower case; "" for the service
    level) only the subscriptions of that workspace. A user is the service's, whichever workspace a subscription of
    theirs is in."""
    service_key, name = ref.service.key, ref.name.lower()
    user = live_row(reader, ref)
    subscriptions = sorted(indexed_rows(reader, OWNER, service_key, name), key=lambda s: str(s.get("Name", "")).lower())
    if user is None and not subscriptions:
        return None
    if workspace is not None:
        subscriptions = [sub for sub in subscriptions if workspace_of_row_key(str(sub["RowKey"])) == workspace]
    items, products = [], []
    for sub in subscriptions:
        scope = parse_scope(sub.get("Scope"))
        base = {"Subscription": sub.get("Name"), "Path": sub.get("Path"), "SubscriptionState": sub.get("SubscriptionState"),
                "CanCall": can_call(sub), "Workspace": scope.workspace or "" if scope is not None else ""}
        if scope is None:
            continue
        if scope.kind is None:
            items.append({**base, "Via": "all APIs", "Product": None, "Api": "*"})
        elif scope.kind is Kind.API:
            items.append({**base, "Via": Kind.API.value, "Product": None, "Api": scope.name})
        else:
            product_ref = parse_path(ref.service, within(scope.workspace, f"products/{scope.name}"))
            product = live_row(reader, product_ref)
            if product is None:
                continue
            products.append(product)
            links = sorted(link_api_name(link) for link in product_apis(reader, product_ref))
            items += [{**base, "Via": Kind.PRODUCT.value, "Product": scope.name, "Api": api} for api in links]
    return {"name": name, "service": ref.service.name, "membershipAsOf": membership_as_of(reader, service_key, products),
            "items": items}


def _scope_key(subscription: Entity) -> str | None:
    scope = parse_scope(subscription.get("Scope"))
    return scope.key if scope is not None else None


def indexed_subscriptions(reader: TableReader, service_key: str, owner: str | None, scope: Scope | None) -> list[Entity]:
    """Live subscriptions of an owner and/or a scope, read through the index (both: the owner's, kept if in scope)."""
    if owner is not None:
        rows = list(indexed_rows(reader, OWNER, service_key, owner))
        return [r for r in rows if scope is None or _scope_key(r) == scope.key]
    assert scope is not None
    return list(indexed_rows(reader, SCOPE, service_key, scope.key))
