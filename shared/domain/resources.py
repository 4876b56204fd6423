"""What an APIM resource is: its service, kind and path, parsed from ARM ids and event subjects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import PermanentEventError

# Top-level collection -> (kind, family). The family is the partition group: a resource and all
# its children share one partition, so a child and its parent are read in one request.
_TOP: dict[str, tuple[str, str]] = {
    "users": ("user", "user"),
    "apis": ("api", "api"),
    "products": ("product", "product"),
    "subscriptions": ("subscription", "subscription"),
    "gateways": ("gateway", "gateway"),
    "backends": ("backend", "backend"),
}
# (parent collection, child collection) -> (kind, canonical collection spelling)
_CHILD: dict[tuple[str, str], tuple[str, str]] = {
    ("apis", "releases"): ("apiRelease", "releases"),
    ("gateways", "apis"): ("gatewayApi", "apis"),
    ("gateways", "certificateauthorities"): ("gatewayCertificateAuthority", "certificateAuthorities"),
    ("gateways", "hostnameconfigurations"): ("gatewayHostnameConfiguration", "hostnameConfigurations"),
    ("gateways", "instances"): ("gatewayInstance", "instances"),
}

_SERVICE_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"(?:/providers)?/Microsoft\.ApiManagement/service/(?P<name>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_REVISION_RE = re.compile(r"^(?P<base>.*);rev=(?P<rev>[^;]*)$", re.IGNORECASE)


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
    """One resource in one APIM service. `segments` alternate collection and name."""

    service: ServiceRef
    kind: str
    family: str
    segments: tuple[str, ...]
    revision: str | None = None

    @property
    def path(self) -> str:
        return "/".join(self.segments)

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
        if self.kind == "api" and self.revision is not None:
            base = _REVISION_RE.sub(r"\g<base>", self.segments[1])
            return ResourceRef(self.service, "api", "api", ("apis", base))
        if self.kind in ("apiRelease", "gatewayApi", "gatewayCertificateAuthority",
                         "gatewayHostnameConfiguration", "gatewayInstance"):
            top_kind = _TOP[self.segments[0]][0]
            base = _REVISION_RE.sub(r"\g<base>", self.segments[1])
            return ResourceRef(self.service, top_kind, self.family, (self.segments[0], base))
        return None

    @property
    def has_children(self) -> bool:
        return (self.kind == "api" and self.revision is None) or self.kind == "gateway"


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
    """A path under the service, such as `/apis/a1;Rev=2` or `/gateways/g1/apis/a1`."""
    if not isinstance(path, str):
        raise PermanentEventError("bad-subject", f"{what} is missing or not a string")
    raw = path.strip().strip("/").split("/")
    if any(not part.strip() for part in raw):
        raise PermanentEventError("bad-subject", f"{what} has an empty segment: {path[:300]!r}")
    parts = [part.strip() for part in raw]
    top = parts[0].lower()
    if top not in _TOP:
        raise PermanentEventError("bad-subject", f"{what} names no APIM resource collection: {path[:300]!r}")
    kind, family = _TOP[top]
    segments: list[str] = [top]
    if len(parts) < 2:
        raise PermanentEventError("bad-subject", f"{what} has no resource name: {path[:300]!r}")
    first, revision = _split_revision(parts[1], kind, what)
    segments.append(first)
    rest = parts[2:]
    if top == "backends" and len(rest) == 3 and rest[0].lower() == "circuit-breaker" and rest[1].lower() == "rules":
        return ResourceRef(service, "circuitBreakerRule", family, (*segments, "circuit-breaker", "rules", rest[2]))
    if top == "gateways" and len(rest) == 1:
        # Token events name an instance as /gateways/{gateway}/{instanceId}.
        return ResourceRef(service, "gatewayInstance", family, (*segments, "instances", rest[0]))
    if rest:
        if len(rest) != 2 or (top, rest[0].lower()) not in _CHILD:
            raise PermanentEventError("bad-subject", f"{what} is not a known APIM resource path: {path[:300]!r}")
        if revision is not None and top == "apis":
            raise PermanentEventError("bad-subject", f"{what} names a release of a revision: {path[:300]!r}")
        kind, spelling = _CHILD[(top, rest[0].lower())]
        return ResourceRef(service, kind, family, (*segments, spelling, rest[1]))
    return ResourceRef(service, kind, family, tuple(segments), revision)


def _split_revision(name: str, kind: str, what: str) -> tuple[str, str | None]:
    match = _REVISION_RE.match(name)
    if not match:
        return name, None
    if kind != "api":
        raise PermanentEventError("bad-subject", f"{what}: only APIs have revisions, got {name[:200]!r}")
    rev = match.group("rev")
    if not rev.isdigit() or not match.group("base"):
        raise PermanentEventError("bad-subject", f"{what}: revision must be a number, got {name[:200]!r}")
    return f"{match.group('base')};rev={int(rev)}", str(int(rev))


def row_ref(row: Mapping[str, Any]) -> ResourceRef:
    """The resource an inventory row is of, from its ResourceId and Path columns."""
    return parse_path(parse_resource_id(row["ResourceId"])[0], row["Path"])
