"""The kinds of resource the inventory holds, and one table of facts per kind.

`Kind` is a StrEnum, so a kind is still the same string in rows, keys and output ("gatewayInstance").
Every rule that depends on the kind reads it from `FACTS` (or from a `Kind` member), never from a
bare string: `tests/test_vocabulary.py` fails on a kind's name written out anywhere else in `shared/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    USER = "user"
    API = "api"
    API_RELEASE = "apiRelease"
    PRODUCT = "product"
    PRODUCT_API = "productApi"
    PRODUCT_GROUP = "productGroup"
    SUBSCRIPTION = "subscription"
    GATEWAY = "gateway"
    GATEWAY_API = "gatewayApi"
    GATEWAY_HOSTNAME_CONFIGURATION = "gatewayHostnameConfiguration"
    GATEWAY_CERTIFICATE_AUTHORITY = "gatewayCertificateAuthority"
    GATEWAY_INSTANCE = "gatewayInstance"
    BACKEND = "backend"
    CIRCUIT_BREAKER_RULE = "circuitBreakerRule"
    WORKSPACE = "workspace"

    @property
    def facts(self) -> KindFacts:
        return FACTS[self]

    @property
    def family(self) -> Kind:
        return FACTS[self].family


@dataclass(frozen=True)
class KindFacts:
    """What the rest of the package needs to know of one kind."""

    collection: str  # its collection's segment(s) in ARM ids and subjects, under its parent's (canonical spelling)
    family: Kind  # the partition group: a resource and its children share one, so they are read in one request
    parent: Kind | None  # whose deletion deletes it (cascades); an API's revisions have their API, see ResourceRef
    listed: bool  # a full sync can list it completely (gateway instances exist only in events)
    fetchable: bool  # ARM has a GET for one (a gateway's API links and a backend's rules have none)
    # its collection's segment(s) under a workspace (`…/workspaces/{w}/…`), or None when a workspace cannot hold one
    in_workspace: str | None = None


_K = Kind
FACTS: dict[Kind, KindFacts] = {
    _K.USER: KindFacts("users", _K.USER, None, listed=True, fetchable=True),
    _K.API: KindFacts("apis", _K.API, None, listed=True, fetchable=True, in_workspace="apis"),
    _K.API_RELEASE: KindFacts("releases", _K.API, _K.API, listed=True, fetchable=True, in_workspace="releases"),
    _K.PRODUCT: KindFacts("products", _K.PRODUCT, None, listed=True, fetchable=True, in_workspace="products"),
    # A product's membership: the APIs it contains (who can call) and the groups that may see it (who can subscribe).
    # No event announces a change of either: a sync and an enrichment of the product list them. A workspace's product
    # lists them as links (`apiLinks/{link}` with `properties.apiId`, `groupLinks/{link}` with `properties.groupId`).
    _K.PRODUCT_API: KindFacts("apis", _K.PRODUCT, _K.PRODUCT, listed=True, fetchable=False, in_workspace="apiLinks"),
    _K.PRODUCT_GROUP: KindFacts("groups", _K.PRODUCT, _K.PRODUCT, listed=True, fetchable=False, in_workspace="groupLinks"),
    _K.SUBSCRIPTION: KindFacts("subscriptions", _K.SUBSCRIPTION, None, listed=True, fetchable=True, in_workspace="subscriptions"),
    _K.GATEWAY: KindFacts("gateways", _K.GATEWAY, None, listed=True, fetchable=True),
    _K.GATEWAY_API: KindFacts("apis", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=False),
    _K.GATEWAY_HOSTNAME_CONFIGURATION: KindFacts("hostnameConfigurations", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=True),
    _K.GATEWAY_CERTIFICATE_AUTHORITY: KindFacts("certificateAuthorities", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=True),
    _K.GATEWAY_INSTANCE: KindFacts("instances", _K.GATEWAY, _K.GATEWAY, listed=False, fetchable=False),
    _K.BACKEND: KindFacts("backends", _K.BACKEND, None, listed=True, fetchable=True, in_workspace="backends"),
    # A rule lives in its backend's properties: a backend's deletion leaves the rule's row to the next sync.
    _K.CIRCUIT_BREAKER_RULE: KindFacts("circuit-breaker/rules", _K.BACKEND, None, listed=True, fetchable=False,
                                       in_workspace="circuit-breaker/rules"),
    # A workspace holds the kinds with an `in_workspace` collection; its rows sit in their own families' partitions
    # (RowKey "workspaces|{w}|…"), so its deletion reaches them by a cascade across families (docs/design.md).
    _K.WORKSPACE: KindFacts("workspaces", _K.WORKSPACE, None, listed=True, fetchable=True),
}
TOP_LEVEL: tuple[Kind, ...] = tuple(k for k in Kind if FACTS[k].family is k)  # the families, in listing order
LISTED: frozenset[Kind] = frozenset(k for k in Kind if FACTS[k].listed)
FETCHABLE: frozenset[Kind] = frozenset(k for k in Kind if FACTS[k].fetchable)
IN_WORKSPACE: frozenset[Kind] = frozenset(k for k in Kind if FACTS[k].in_workspace is not None)
WORKSPACE_FAMILIES: tuple[Kind, ...] = tuple(k for k in TOP_LEVEL if k in IN_WORKSPACE)  # where a workspace's rows live


def children(kind: Kind) -> tuple[Kind, ...]:
    """The kinds whose parent (in the cascade sense) is `kind`, in table order."""
    return tuple(k for k in Kind if FACTS[k].parent is kind)


def collection_of(kind: Kind, in_workspace: bool = False) -> str:
    """A kind's collection segment(s), at the service or under a workspace (ValueError where a workspace holds none)."""
    collection = FACTS[kind].in_workspace if in_workspace else FACTS[kind].collection
    if collection is None:
        raise ValueError(f"a workspace holds no {kind.value}")
    return collection


def child_kind(family: Kind, collection: str, in_workspace: bool = False) -> Kind | None:
    """The child kind a collection under a top-level resource names, matched without regard to case."""
    return next((k for k in Kind if k is not family and FACTS[k].family is family and FACTS[k].parent is family
                 and (not in_workspace or k in IN_WORKSPACE) and collection_of(k, in_workspace).lower() == collection.lower()),
                None)


def top_level(collection: str, in_workspace: bool = False) -> Kind | None:
    """The top-level kind of a collection (`users`, `apis`, ...), matched without regard to case; under a workspace,
    only the kinds a workspace holds."""
    return next((k for k in TOP_LEVEL if (not in_workspace or k in IN_WORKSPACE)
                 and collection_of(k, in_workspace).lower() == collection.lower()), None)


def parse_kind_name(text: str) -> Kind | None:
    """A kind from its name, without regard to case (`GatewayInstance`)."""
    return next((k for k in Kind if k.lower() == text.strip().lower()), None)
