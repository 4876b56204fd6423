"""Who can call what: the rules of APIM's subscription scopes, as the inventory's rows hold them.

A subscription's `Scope` is an ARM id (or, from older API versions, a path) ending in `/apis` (every API: the built-in
all-access subscription), `/apis/{api}` (one API: any revision names the API) or `/products/{product}` (the APIs the
product contains). Only an `active` subscription's keys are accepted at the gateway. An API or a product whose
`subscriptionRequired` is false needs no key at all. Groups decide who may see and subscribe to a product, not who
can call: they play no part here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.kinds import Kind

ACTIVE = "active"
ALL_APIS = "apis"  # the scope key of the all-access scope
_SERVICE_PREFIX = re.compile(r"^.*?/providers/microsoft\.apimanagement/service/[^/]+", re.IGNORECASE)
_REVISION = re.compile(r";rev=[^/]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """A subscription's scope: all APIs (`name` None), one API, or one product."""

    kind: Kind | None  # Kind.API, Kind.PRODUCT, or None for all APIs
    name: str | None = None

    @property
    def key(self) -> str:
        """The lower-case path the index keeps: `apis`, `apis/{api}`, `products/{product}`."""
        if self.kind is None:
            return ALL_APIS
        collection = "apis" if self.kind is Kind.API else "products"
        return f"{collection}/{(self.name or '').lower()}"


def parse_scope(text: Any) -> Scope | None:
    """A Scope column's value as a Scope; None when it names none of the three (an empty or foreign value)."""
    if not isinstance(text, str) or not text.strip():
        return None
    path = _SERVICE_PREFIX.sub("", text.strip()).strip("/")
    parts = path.split("/")
    if len(parts) == 1 and parts[0].lower() == "apis":
        return Scope(None)
    if len(parts) == 2 and parts[1] and parts[0].lower() in ("apis", "products"):
        if parts[0].lower() == "apis":
            return Scope(Kind.API, _REVISION.sub("", parts[1]).lower())
        return Scope(Kind.PRODUCT, parts[1].lower())
    return None


def owner_name(text: Any) -> str | None:
    """The user an OwnerId names (`…/users/{name}`, lower case); None when it names none."""
    if not isinstance(text, str):
        return None
    parts = text.strip().strip("/").split("/")
    if len(parts) >= 2 and parts[-2].lower() == "users" and parts[-1]:
        return parts[-1].lower()
    return None


def can_call(subscription: dict[str, Any]) -> bool:
    """Whether a subscription's keys are accepted now: its state is active."""
    return str(subscription.get("SubscriptionState") or "").lower() == ACTIVE


def open_to_anyone(row: dict[str, Any] | None) -> bool:
    """An API or a product with subscriptionRequired false: callable without a key (unknown counts as required)."""
    return row is not None and row.get("SubscriptionRequired") is False
