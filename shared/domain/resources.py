"""What an APIM resource is: its service, kind and path, parsed from ARM ids and event subjects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import FACTS, IN_WORKSPACE, Kind, child_kind, children, collection_of, top_level

_SERVICE_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"(?:/providers)?/Microsoft\.ApiManagement/service/(?P<name>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_REVISION_RE = re.compile(r"^(?P<base>.*);rev=(?P<rev>[^;]*)$", re.IGNORECASE)
WORKSPACES = FACTS[Kind.WORKSPACE].collection  # the collection segment before a workspace's name


@dataclass(frozen=True)
class ServiceRef:
    subscription: str
    resource_group: str
    name: str

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.name}"
        )

    def same_as(self, other: ServiceRef) -> bool:
        return (self.subscription.lower(), self.resource_group.lower(), self.key) == (
            other.subscription.lower(),
            other.resource_group.lower(),
            other.key,
        )


@dataclass(frozen=True)
class ResourceRef:
    """One resource in one APIM service. `segments` alternate collection and name, under the workspace when
    `workspace` is set (`apis/a` of workspace `w` is the path `workspaces/w/apis/a`). A workspace itself is
    `workspaces/{w}` with no `workspace`."""

    service: ServiceRef
    kind: Kind
    family: Kind
    segments: tuple[str, ...]
    revision: str | None = None
    workspace: str | None = None

    @property
    def all_segments(self) -> tuple[str, ...]:
        """The segments under the service: the workspace's first."""
        return (WORKSPACES, self.workspace, *self.segments) if self.workspace is not None else self.segments

    @property
    def path(self) -> str:
        return "/".join(self.all_segments)

    @property
    def workspace_name(self) -> str:
        """The `Workspace` column: the workspace a resource is in, a workspace's own name, or "" at the service."""
        if self.kind is Kind.WORKSPACE:
            return self.name
        return self.workspace or ""

    @property
    def key(self) -> str:
        return self.path.lower()

    @property
    def name(self) -> str:
        return self.segments[-1]

    @property
    def top_name(self) -> str:
        """The top-level resource's name, without any revision: the partition bucket is hashed on it."""
        return _REVISION_RE.sub(r"\g<base>", self.segments[1]).lower()

    @property
    def resource_id(self) -> str:
        return f"{self.service.resource_id}/{self.path}"

    @property
    def parent(self) -> ResourceRef | None:
        """The resource whose deletion deletes this one: an API for its revisions and releases,
        a gateway for its children."""
        if self.kind is Kind.API and self.revision is not None:
            base = _REVISION_RE.sub(r"\g<base>", self.segments[1])
            return ResourceRef(self.service, Kind.API, Kind.API, (self.segments[0], base), workspace=self.workspace)
        parent = FACTS[self.kind].parent
        if parent is not None:
            base = _REVISION_RE.sub(r"\g<base>", self.segments[1])
            return ResourceRef(self.service, parent, self.family, (self.segments[0], base), workspace=self.workspace)
        return None

    @property
    def workspace_ref(self) -> ResourceRef | None:
        """The workspace this resource is in, whose deletion deletes it (across partitions: docs/design.md)."""
        if self.workspace is None:
            return None
        return ResourceRef(self.service, Kind.WORKSPACE, Kind.WORKSPACE, (WORKSPACES, self.workspace))

    @property
    def has_children(self) -> bool:
        return self.revision is None and bool(children(self.kind))


def within(workspace: str | None, path: str) -> str:
    """A service-relative path of a resource in `workspace` (None: at the service)."""
    return f"{WORKSPACES}/{workspace}/{path}" if workspace is not None else path


def parse_service_id(text: object) -> ServiceRef:
    """The APIM service of an event's `topic` or `source`."""
    if not isinstance(text, str) or not text:
        raise PermanentEventError("not-apim", "the event has no topic or source naming an APIM service")
    match = _SERVICE_RE.match(text.strip())
    if not match or match.group("rest"):
        raise PermanentEventError("not-apim", f"topic/source is not an APIM service id: {text[:300]!r}")
    return ServiceRef(match.group("sub"), match.group("rg"), match.group("name"))


def parse_resource_id(text: object) -> tuple[ServiceRef, ResourceRef]:
    """Parse `data.resourceUri`, with or without `/providers/`."""
    if not isinstance(text, str) or not text.strip():
        raise PermanentEventError("bad-resource-uri", "data.resourceUri is missing or not a string")
    match = _SERVICE_RE.match(text.strip())
    if not match or not match.group("rest"):
        raise PermanentEventError("bad-resource-uri", f"not an APIM resource id: {text[:300]!r}")
    service = ServiceRef(match.group("sub"), match.group("rg"), match.group("name"))
    return service, parse_path(service, match.group("rest"), what="resourceUri")


def parse_path(service: ServiceRef, path: object, *, what: str = "subject") -> ResourceRef:
    """A path under the service, such as `/apis/a1;Rev=2`, `/gateways/g1/apis/a1` or `/workspaces/w1/apis/a1`."""
    if not isinstance(path, str):
        raise PermanentEventError("bad-subject", f"{what} is missing or not a string")
    raw = path.strip().strip("/").split("/")
    if any(not part.strip() for part in raw):
        raise PermanentEventError("bad-subject", f"{what} has an empty segment: {path[:300]!r}")
    parts = [part.strip() for part in raw]
    if parts[0].lower() == WORKSPACES and len(parts) > 2:
        return _parse_under(service, parts[2:], path, what, workspace=parts[1])
    return _parse_under(service, parts, path, what, workspace=None)


def _parse_under(service: ServiceRef, parts: list[str], path: str, what: str, workspace: str | None) -> ResourceRef:
    """The resource `parts` name at the service, or under `workspace` (where only IN_WORKSPACE kinds live)."""
    in_workspace = workspace is not None
    kind = top_level(parts[0], in_workspace)
    if kind is None:
        where = f"workspace {workspace!r}" if in_workspace else "the service"
        raise PermanentEventError("bad-subject", f"{what} names no APIM resource collection of {where}: {path[:300]!r}")
    family = kind
    segments: list[str] = [collection_of(kind, in_workspace)]
    if len(parts) < 2:
        raise PermanentEventError("bad-subject", f"{what} has no resource name: {path[:300]!r}")
    first, revision = _split_revision(parts[1], kind, what)
    segments.append(first)
    rest = parts[2:]
    rule = FACTS[Kind.CIRCUIT_BREAKER_RULE]
    if family is rule.family and [r.lower() for r in rest[:2]] == rule.collection.split("/") and len(rest) == 3:
        return ResourceRef(service, Kind.CIRCUIT_BREAKER_RULE, family, (*segments, *rule.collection.split("/"), rest[2]),
                           workspace=workspace)
    if family is FACTS[Kind.GATEWAY_INSTANCE].family and len(rest) == 1:
        # Token events name an instance as /gateways/{gateway}/{instanceId}.
        instances = FACTS[Kind.GATEWAY_INSTANCE].collection
        return ResourceRef(service, Kind.GATEWAY_INSTANCE, family, (*segments, instances, rest[0]))
    if rest:
        child = child_kind(family, rest[0], in_workspace) if len(rest) == 2 else None
        if child is None:
            raise PermanentEventError("bad-subject", f"{what} is not a known APIM resource path: {path[:300]!r}")
        if revision is not None and family is Kind.API:
            raise PermanentEventError("bad-subject", f"{what} names a release of a revision: {path[:300]!r}")
        return ResourceRef(service, child, family, (*segments, collection_of(child, in_workspace), rest[1]), workspace=workspace)
    assert kind in IN_WORKSPACE or not in_workspace
    return ResourceRef(service, kind, family, tuple(segments), revision, workspace)


def _split_revision(name: str, kind: Kind, what: str) -> tuple[str, str | None]:
    match = _REVISION_RE.match(name)
    if not match:
        return name, None
    if kind is not Kind.API:
        raise PermanentEventError("bad-subject", f"{what}: only APIs have revisions, got {name[:200]!r}")
    rev = match.group("rev")
    if not rev.isdigit() or not match.group("base"):
        raise PermanentEventError("bad-subject", f"{what}: revision must be a number, got {name[:200]!r}")
    return f"{match.group('base')};rev={int(rev)}", str(int(rev))


def row_ref(row: Mapping[str, Any]) -> ResourceRef:
    """The resource an inventory row is of, from its ResourceId and Path columns."""
    return parse_path(parse_resource_id(row["ResourceId"])[0], row["Path"])
