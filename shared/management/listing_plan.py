"""The collections a full sync lists, in order, in stages: the service's top-level collections; then those of each
API, gateway and product, and each workspace's own collections; then those of each workspace's APIs and products.
A stage's collections are named by the scratch entities of the stage before (the parents its pages listed), so the
order, which a checkpoint's unit numbers count on, holds across invocations (docs/design.md, "Workspaces in the sync").
"""

from __future__ import annotations

from shared.domain.kinds import FACTS, IN_WORKSPACE, TOP_LEVEL, WORKSPACE_FAMILIES, Kind, children, collection_of
from shared.domain.resources import ServiceRef, within
from shared.store.keys import seen_pages
from shared.store.ports import TableReader

Unit = tuple[Kind, str]  # a collection to list: its items' kind and its ARM id
# Top-level kinds whose children are listed after the top-level collections, in this order (a checkpoint's unit
# numbers count on it: a new parent goes last). Under a workspace: its APIs' and products' children.
PARENTS = (Kind.API, Kind.GATEWAY, Kind.PRODUCT)
_WORKSPACE_PARENTS = tuple(p for p in PARENTS if p in IN_WORKSPACE)


def units(reader: TableReader, service: ServiceRef, reached: int) -> list[Unit]:
    """The collections a sync lists, in order, as far as the units before `reached` name them: the top-level ones;
    then those of each API, gateway and product, and each workspace's collections; then those of each workspace's
    APIs and products (each named by the scratch entities of its parent's listing, so the order holds across
    invocations)."""
    base = service.resource_id
    planned: list[Unit] = [(kind, f"{base}/{FACTS[kind].collection}") for kind in TOP_LEVEL]
    if reached < len(planned):
        return planned
    for parent in PARENTS:
        planned += [(kind, f"{base}/{FACTS[parent].collection}/{name}/{FACTS[kind].collection}")
                    for name in parents_listed(reader, service, TOP_LEVEL.index(parent)) for kind in listed_children(parent)]
    workspaces = parents_listed(reader, service, TOP_LEVEL.index(Kind.WORKSPACE))
    first = len(planned)
    for workspace in workspaces:
        planned += [(kind, f"{base}/{within(workspace, collection_of(kind, True))}") for kind in WORKSPACE_FAMILIES]
    if reached < len(planned):
        return planned
    for n, workspace in enumerate(workspaces):
        for parent in _WORKSPACE_PARENTS:
            at = first + n * len(WORKSPACE_FAMILIES) + WORKSPACE_FAMILIES.index(parent)
            planned += [(kind, f"{base}/{within(workspace, f'{collection_of(parent, True)}/{name}/{collection_of(kind, True)}')}")
                        for name in parents_listed(reader, service, at) for kind in listed_children(parent)]
    return planned


def parents_listed(reader: TableReader, service: ServiceRef, unit: int) -> list[str]:
    """The names of the APIs, gateways, products or workspaces a unit's pages listed, sorted."""
    pages = reader.scan(seen_pages(service.key, unit))
    return sorted({n for page in pages for row in page for n in str(row.entity.get("Parents") or "").split("\n") if n})


def listed_children(kind: Kind) -> tuple[Kind, ...]:
    return tuple(child for child in children(kind) if FACTS[child].listed)


def unlisted_children(incomplete: dict[str, str]) -> None:
    """Mark in `incomplete` the kinds whose collections were not listed since their parents' were not: a backend's
    rules (read from its configuration), and the children of a parent not listed completely."""
    if Kind.BACKEND in incomplete:
        incomplete.setdefault(Kind.CIRCUIT_BREAKER_RULE, "backends not listed completely")
    for parent in PARENTS:
        if parent in incomplete:
            for child in listed_children(parent):
                incomplete.setdefault(child, f"{parent} not listed completely")
