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


_K = Kind
FACTS: dict[Kind, KindFacts] = {
    _K.USER: KindFacts("users", _K.USER, None, listed=True, fetchable=True),
    _K.API: KindFacts("apis", _K.API, None, listed=True, fetchable=True),
    _K.API_RELEASE: KindFacts("releases", _K.API, _K.API, listed=True, fetchable=True),
    _K.PRODUCT: KindFacts("products", _K.PRODUCT, None, listed=True, fetchable=True),
    # A product's membership: the APIs it contains (who can call) and the groups that may see it (who can subscribe).
    # No event announces a change of either: a sync and an enrichment of the product list them.
    _K.PRODUCT_API: KindFacts("apis", _K.PRODUCT, _K.PRODUCT, listed=True, fetchable=False),
    _K.PRODUCT_GROUP: KindFacts("groups", _K.PRODUCT, _K.PRODUCT, listed=True, fetchable=False),
    _K.SUBSCRIPTION: KindFacts("subscriptions", _K.SUBSCRIPTION, None, listed=True, fetchable=True),
    _K.GATEWAY: KindFacts("gateways", _K.GATEWAY, None, listed=True, fetchable=True),
    _K.GATEWAY_API: KindFacts("apis", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=False),
    _K.GATEWAY_HOSTNAME_CONFIGURATION: KindFacts("hostnameConfigurations", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=True),
    _K.GATEWAY_CERTIFICATE_AUTHORITY: KindFacts("certificateAuthorities", _K.GATEWAY, _K.GATEWAY, listed=True, fetchable=True),
    _K.GATEWAY_INSTANCE: KindFacts("instances", _K.GATEWAY, _K.GATEWAY, listed=False, fetchable=False),
    _K.BACKEND: KindFacts("backends", _K.BACKEND, None, listed=True, fetchable=True),
    # A rule lives in its backend's properties: a backend's deletion leaves the rule's row to the next sync.
    _K.CIRCUIT_BREAKER_RULE: KindFacts("circuit-breaker/rules", _K.BACKEND, None, listed=True, fetchable=False),
}
TOP_LEVEL: tuple[Kind, ...] = tuple(k for k in Kind if FACTS[k].family is k)  # the families, in listing order
LISTED: frozenset[Kind] = frozenset(k for k in Kind if FACTS[k].listed)
FETCHABLE: frozenset[Kind] = frozenset(k for k in Kind if FACTS[k].fetchable)


def children(kind: Kind) -> tuple[Kind, ...]:
    """The kinds whose parent (in the cascade sense) is `kind`, in table order."""
    return tuple(k for k in Kind if FACTS[k].parent is kind)


def child_kind(family: Kind, collection: str) -> Kind | None:
    """The child kind a collection under a top-level resource names, matched without regard to case."""
    return next((k for k in Kind if k is not family and FACTS[k].family is family and FACTS[k].parent is family
                 and FACTS[k].collection.lower() == collection.lower()), None)


def top_level(collection: str) -> Kind | None:
    """The top-level kind of a collection (`users`, `apis`, ...), matched without regard to case."""
    return next((k for k in TOP_LEVEL if FACTS[k].collection == collection.lower()), None)


def parse_kind_name(text: str) -> Kind | None:
    """A kind from its name, without regard to case (`GatewayInstance`)."""
    return next((k for k in Kind if k.lower() == text.strip().lower()), None)
