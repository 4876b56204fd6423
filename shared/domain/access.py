"""Who can call what: the rules of APIM's subscription scopes, as the inventory's rows hold them.

A subscription's `Scope` is an ARM id (or, from older API versions, a path) ending in `/apis` (every API: the built-in
all-access subscription), `/apis/{api}` (one API: any revision names the API) or `/products/{product}` (the APIs the
product contains). A workspace's subscription names its workspace's API or product (`…/workspaces/{w}/products/{p}`):
its scope keeps the workspace, so it is never taken for the service's product or API of the same name. A workspace's
product lists its APIs as links whose `LinkedApiId` is the API's full ARM id (`linked_api`). Only an `active`
subscription's keys are accepted at the gateway. An API or a product whose `subscriptionRequired` is false needs no
key at all. Groups decide who may see and subscribe to a product, not who
can call: they play no part here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.kinds import Kind
from shared.domain.resources import WORKSPACES

ACTIVE = "active"
ALL_APIS = "apis"  # the scope key of the all-access scope
_SERVICE_PREFIX = re.compile(r"^.*?/providers/microsoft\.apimanagement/service/[^/]+", re.IGNORECASE)
_REVISION = re.compile(r";rev=[^/]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """A subscription's scope: all APIs (`name` None), one API, or one product; of the service, or of a workspace."""

    kind: Kind | None  # Kind.API, Kind.PRODUCT, or None for all APIs
    name: str | None = None
    workspace: str | None = None  # lower case; None at the service

    @property
    def key(self) -> str:
        """The lower-case path the index keeps: `apis`, `apis/{api}`, `products/{product}`, and under a workspace
        `workspaces/{w}/` before them."""
        collection = "apis" if self.kind is Kind.API else "products"
        base = ALL_APIS if self.kind is None else f"{collection}/{(self.name or '').lower()}"
        return f"{WORKSPACES}/{self.workspace}/{base}" if self.workspace is not None else base


def _service_path(text: str) -> tuple[str | None, list[str]]:
    """An id's path under its service, split, and the workspace (lower case) it is under, if any."""
    parts = _SERVICE_PREFIX.sub("", text.strip()).strip("/").split("/")
    if len(parts) >= 3 and parts[0].lower() == WORKSPACES and parts[1]:
        return parts[1].lower(), parts[2:]
    return None, parts


def parse_scope(text: Any) -> Scope | None:
    """A Scope column's value as a Scope; None when it names none of the three (an empty or foreign value)."""
    if not isinstance(text, str) or not text.strip():
        return None
    workspace, parts = _service_path(text)
    if len(parts) == 1 and parts[0].lower() == "apis":
        return Scope(None, workspace=workspace)
    if len(parts) == 2 and parts[1] and parts[0].lower() in ("apis", "products"):
        if parts[0].lower() == "apis":
            return Scope(Kind.API, _REVISION.sub("", parts[1]).lower(), workspace)
        return Scope(Kind.PRODUCT, parts[1].lower(), workspace)
    return None


def linked_api(text: Any) -> Scope | None:
    """The API a workspace product's API link names (its LinkedApiId, the API's ARM id), as an API scope; None when it
    names no API."""
    scope = parse_scope(text)
    return scope if scope is not None and scope.kind is Kind.API else None


def api_value(workspace: str | None, name: str) -> str:
    """What the products-by-API index keys an API by: its name at the service (as it always has), its scope key
    (`workspaces/{w}/apis/{a}`) in a workspace, so a workspace's API and the service's of the same name stay apart."""
    return name.lower() if workspace is None else Scope(Kind.API, name, workspace.lower()).key


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
