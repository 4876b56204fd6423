"""What the inventory keeps of a resource's ARM representation: an allow-list of columns per kind.

Only the fields named here are read, so keys, credentials, passwords and anything else ARM may
return never reach a row. docs/schema.md documents every column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import Kind
from shared.domain.text import table_text
from shared.domain.times import parse_time

Convert = Callable[[Any], Any]
MAX_TEXT = 4096  # a long product terms text is cut, never a reason to lose the row


def _text(value: Any) -> str | None:
    return None if value is None else table_text(str(value), MAX_TEXT)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value, "time") if value else None
    except PermanentEventError:
        return None


def _joined(value: Any) -> str | None:
    return ",".join(str(v) for v in value) if isinstance(value, list) else None


def _rules(value: Any) -> str | None:
    """A backend's circuit-breaker rules, reduced to their configuration."""
    if not isinstance(value, list):
        return None
    return _text(json.dumps([circuit_breaker_rule(rule) for rule in value if isinstance(rule, dict)], sort_keys=True))


def circuit_breaker_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("name", "tripDuration", "acceptRetryAfter", "failureCondition")
    return {key: rule[key] for key in keep if key in rule}


# kind -> column -> (dotted property path under `properties`, converter)
FIELDS: dict[Kind, dict[str, tuple[str, Convert]]] = {
    Kind.USER: {
        "Email": ("email", _text), "FirstName": ("firstName", _text), "LastName": ("lastName", _text),
        "UserState": ("state", _text), "RegistrationDate": ("registrationDate", _time),
    },
    Kind.API: {
        "DisplayName": ("displayName", _text), "ApiPath": ("path", _text), "Protocols": ("protocols", _joined),
        "ApiRevision": ("apiRevision", _text), "IsCurrent": ("isCurrent", _bool), "IsOnline": ("isOnline", _bool),
        "ApiVersion": ("apiVersion", _text), "ApiVersionSetId": ("apiVersionSetId", _text),
        "ServiceUrl": ("serviceUrl", _text), "ApiType": ("type", _text),
        "SubscriptionRequired": ("subscriptionRequired", _bool),
    },
    Kind.API_RELEASE: {
        "ReleaseApiId": ("apiId", _text), "Notes": ("notes", _text), "ReleasedAt": ("createdDateTime", _time),
    },
    Kind.PRODUCT: {
        "DisplayName": ("displayName", _text), "ProductState": ("state", _text),
        "SubscriptionRequired": ("subscriptionRequired", _bool), "ApprovalRequired": ("approvalRequired", _bool),
        "SubscriptionsLimit": ("subscriptionsLimit", _int), "Terms": ("terms", _text),
    },
    Kind.SUBSCRIPTION: {
        "DisplayName": ("displayName", _text), "Scope": ("scope", _text), "OwnerId": ("ownerId", _text),
        "SubscriptionState": ("state", _text), "CreatedDate": ("createdDate", _time), "ExpirationDate": ("expirationDate", _time),
    },
    Kind.GATEWAY: {
        "Description": ("description", _text), "LocationName": ("locationData.name", _text),
        "LocationCity": ("locationData.city", _text), "LocationDistrict": ("locationData.district", _text),
        "LocationCountryOrRegion": ("locationData.countryOrRegion", _text),
    },
    # A workspace product's links carry the linked resource's full ARM id instead (`apiId`, `groupId`).
    Kind.PRODUCT_API: {"DisplayName": ("displayName", _text), "ApiPath": ("path", _text), "LinkedApiId": ("apiId", _text)},
    Kind.PRODUCT_GROUP: {"DisplayName": ("displayName", _text), "BuiltIn": ("builtIn", _bool), "GroupType": ("type", _text),
                         "LinkedGroupId": ("groupId", _text)},
    Kind.GATEWAY_API: {"DisplayName": ("displayName", _text), "ApiPath": ("path", _text)},
    Kind.GATEWAY_HOSTNAME_CONFIGURATION: {
        "Hostname": ("hostname", _text), "CertificateId": ("certificateId", _text),
        "NegotiateClientCertificate": ("negotiateClientCertificate", _bool),
        "Tls10Enabled": ("tls10Enabled", _bool), "Tls11Enabled": ("tls11Enabled", _bool),
        "Http2Enabled": ("http2Enabled", _bool),
    },
    Kind.GATEWAY_CERTIFICATE_AUTHORITY: {"IsTrusted": ("isTrusted", _bool)},
    Kind.BACKEND: {
        "Url": ("url", _text), "Protocol": ("protocol", _text), "Description": ("description", _text),
        "CircuitBreakerRules": ("circuitBreaker.rules", _rules),
    },
    Kind.WORKSPACE: {"DisplayName": ("displayName", _text), "Description": ("description", _text)},
    Kind.CIRCUIT_BREAKER_RULE: {
        "ConfiguredTripDuration": ("tripDuration", _text), "AcceptRetryAfter": ("acceptRetryAfter", _bool),
        "FailureCondition": ("failureCondition", lambda v: _text(json.dumps(v, sort_keys=True)) if isinstance(v, dict) else None),
    },
}
PERSONAL_COLUMNS = ("Email", "FirstName", "LastName")
DETAIL_COLUMNS: frozenset[str] = frozenset(column for fields in FIELDS.values() for column in fields)


def _lookup(properties: Mapping[str, Any], dotted: str) -> Any:
    value: Any = properties
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def details(kind: Kind, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The allow-listed columns of one resource, from its ARM `properties` (None values left out)."""
    found = {column: convert(_lookup(properties, path)) for column, (path, convert) in FIELDS.get(kind, {}).items()}
    return {column: value for column, value in found.items() if value is not None}


def resource_properties(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = resource.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def detail_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """The detail columns a write changes, as {"Column": [old, new]}; a personal column as "changed", without its
    values (docs/schema.md: personal data stays in the row it describes)."""
    old = before or {}
    return {column: "changed" if column in PERSONAL_COLUMNS else [old.get(column), after.get(column)]
            for column in sorted(DETAIL_COLUMNS) if old.get(column) != after.get(column)}
