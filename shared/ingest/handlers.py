"""Event type -> handler. A handler turns one event into the changes it makes to inventory rows.

To find where an event type is handled, look it up in HANDLERS at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.domain.errors import PermanentEventError
from shared.domain.events import InventoryEvent
from shared.domain.kinds import Kind
from shared.domain.model import Change, Op, Stamp
from shared.domain.resources import ResourceRef, parse_path, parse_resource_id, within
from shared.domain.times import parse_duration, parse_time

Handler = Callable[[InventoryEvent], list[Change]]


def _resource(event: InventoryEvent, expected_kind: Kind) -> ResourceRef:
    """The resource an event is about, from its subject and `data.resourceUri`, which must agree."""
    subject_ref = parse_path(event.service, event.subject)
    ref = subject_ref
    uri = event.data.get("resourceUri")
    if uri is not None:
        uri_service, ref = parse_resource_id(uri)
        if not uri_service.same_as(event.service):
            raise PermanentEventError(
                "service-mismatch",
                f"resourceUri names service {uri_service.resource_id!r}, the event comes from {event.service.resource_id!r}",
            )
        if ref.key != subject_ref.key:
            raise PermanentEventError(
                "subject-mismatch", f"subject {event.subject!r} and resourceUri {uri!r} name different resources"
            )
    if ref.kind != expected_kind:
        raise PermanentEventError("kind-mismatch", f"{event.type} is about a {expected_kind}, but names a {ref.kind}: {ref.path!r}")
    return ref


def lifecycle(kind: Kind, op: Op) -> Handler:
    """Created / Updated / Deleted (and Added / Removed) of one kind of resource."""

    def handle(event: InventoryEvent) -> list[Change]:
        return [Change(_resource(event, kind), op, Stamp(event.time, event.id), event.type)]

    handle.__name__ = f"{kind}_{op.value}"
    return handle


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise PermanentEventError("bad-data", f"data.{key} is missing or not an object")
    return value


def gateway_token(event: InventoryEvent) -> list[Change]:
    """GatewayTokenNearExpiry / GatewayTokenExpired -> the gatewayInstance row's token columns."""
    ref = _resource(event, Kind.GATEWAY_INSTANCE)
    info, token = _object(event.data, "gatewayInfo"), _object(event.data, "tokenInfo")
    gateway = str(info.get("gatewayId") or "").rstrip("/").split("/")[-1]
    if gateway and gateway.lower() != ref.segments[1].lower():
        raise PermanentEventError("subject-mismatch", f"gatewayInfo.gatewayId {info.get('gatewayId')!r} is not the subject's gateway")
    instance = info.get("instanceId")
    if instance is not None and str(instance).lower() != ref.name.lower():
        raise PermanentEventError("subject-mismatch", f"gatewayInfo.instanceId {instance!r} is not the subject's instance")
    raw_expiry = token.get("expiresAtUtc", token.get("expiredAtUtc"))
    expiry = parse_time(raw_expiry, "tokenInfo.expiresAtUtc")
    expired = event.type == "Microsoft.ApiManagement.GatewayTokenExpired" or expiry <= event.time
    values = {"TokenExpiresAt": expiry, "TokenStatus": "expired" if expired else "nearExpiry"}
    return [Change(ref, Op.TOKEN, Stamp(event.time, event.id), event.type, values)]


def circuit_breaker(event: InventoryEvent) -> list[Change]:
    """CircuitBreaker.Opened / Closed -> each named rule's row, and a row for the backend."""
    ref = _resource(event, Kind.CIRCUIT_BREAKER_RULE)
    backend = event.data.get("backendName")
    if backend is not None and str(backend).lower() != ref.segments[1].lower():
        raise PermanentEventError("subject-mismatch", f"data.backendName {backend!r} is not the subject's backend")
    rules = _object(_object(event.data, "circuitBreaker"), "rules") if "circuitBreaker" in event.data else {}
    state = "open" if event.type == "Microsoft.ApiManagement.CircuitBreaker.Opened" else "closed"
    stamp = Stamp(event.time, event.id)
    named: dict[str, tuple[str, Any]] = {ref.name.lower(): (ref.name, None)}
    named.update({str(name).lower(): (str(name), rule) for name, rule in rules.items()})
    changes: list[Change] = []
    for name, rule in sorted(named.values(), key=lambda item: item[0].lower()):
        trip = rule.get("tripDuration") if isinstance(rule, dict) else None
        if trip is not None and parse_duration(trip) is None:
            raise PermanentEventError("bad-data", f"tripDuration {trip!r} is not hh:mm:ss or d.hh:mm:ss")
        rule_ref = parse_path(event.service, within(ref.workspace, f"backends/{ref.segments[1]}/circuit-breaker/rules/{name}"))
        changes.append(Change(rule_ref, Op.BREAKER, stamp, event.type, {"BreakerState": state, "TripDuration": trip}))
    backend_ref = parse_path(event.service, within(ref.workspace, f"backends/{ref.segments[1]}"))
    changes.append(Change(backend_ref, Op.OBSERVED, stamp, event.type))
    return changes


HANDLERS: dict[str, Handler] = {
    "Microsoft.ApiManagement.UserCreated": lifecycle(Kind.USER, Op.CREATED),
    "Microsoft.ApiManagement.UserUpdated": lifecycle(Kind.USER, Op.UPDATED),
    "Microsoft.ApiManagement.UserDeleted": lifecycle(Kind.USER, Op.DELETED),
    "Microsoft.ApiManagement.APICreated": lifecycle(Kind.API, Op.CREATED),
    "Microsoft.ApiManagement.APIUpdated": lifecycle(Kind.API, Op.UPDATED),
    "Microsoft.ApiManagement.APIDeleted": lifecycle(Kind.API, Op.DELETED),
    "Microsoft.ApiManagement.APIReleaseCreated": lifecycle(Kind.API_RELEASE, Op.CREATED),
    "Microsoft.ApiManagement.APIReleaseUpdated": lifecycle(Kind.API_RELEASE, Op.UPDATED),
    "Microsoft.ApiManagement.APIReleaseDeleted": lifecycle(Kind.API_RELEASE, Op.DELETED),
    "Microsoft.ApiManagement.ProductCreated": lifecycle(Kind.PRODUCT, Op.CREATED),
    "Microsoft.ApiManagement.ProductUpdated": lifecycle(Kind.PRODUCT, Op.UPDATED),
    "Microsoft.ApiManagement.ProductDeleted": lifecycle(Kind.PRODUCT, Op.DELETED),
    "Microsoft.ApiManagement.SubscriptionCreated": lifecycle(Kind.SUBSCRIPTION, Op.CREATED),
    "Microsoft.ApiManagement.SubscriptionUpdated": lifecycle(Kind.SUBSCRIPTION, Op.UPDATED),
    "Microsoft.ApiManagement.SubscriptionDeleted": lifecycle(Kind.SUBSCRIPTION, Op.DELETED),
    "Microsoft.ApiManagement.GatewayCreated": lifecycle(Kind.GATEWAY, Op.CREATED),
    "Microsoft.ApiManagement.GatewayUpdated": lifecycle(Kind.GATEWAY, Op.UPDATED),
    "Microsoft.ApiManagement.GatewayDeleted": lifecycle(Kind.GATEWAY, Op.DELETED),
    "Microsoft.ApiManagement.GatewayAPIAdded": lifecycle(Kind.GATEWAY_API, Op.CREATED),
    "Microsoft.ApiManagement.GatewayAPIRemoved": lifecycle(Kind.GATEWAY_API, Op.DELETED),
    "Microsoft.ApiManagement.GatewayCertificateAuthorityCreated": lifecycle(Kind.GATEWAY_CERTIFICATE_AUTHORITY, Op.CREATED),
    "Microsoft.ApiManagement.GatewayCertificateAuthorityUpdated": lifecycle(Kind.GATEWAY_CERTIFICATE_AUTHORITY, Op.UPDATED),
    "Microsoft.ApiManagement.GatewayCertificateAuthorityDeleted": lifecycle(Kind.GATEWAY_CERTIFICATE_AUTHORITY, Op.DELETED),
    "Microsoft.ApiManagement.GatewayHostnameConfigurationCreated": lifecycle(Kind.GATEWAY_HOSTNAME_CONFIGURATION, Op.CREATED),
    "Microsoft.ApiManagement.GatewayHostnameConfigurationUpdated": lifecycle(Kind.GATEWAY_HOSTNAME_CONFIGURATION, Op.UPDATED),
    "Microsoft.ApiManagement.GatewayHostnameConfigurationDeleted": lifecycle(Kind.GATEWAY_HOSTNAME_CONFIGURATION, Op.DELETED),
    "Microsoft.ApiManagement.GatewayTokenNearExpiry": gateway_token,
    "Microsoft.ApiManagement.GatewayTokenExpired": gateway_token,
    "Microsoft.ApiManagement.CircuitBreaker.Opened": circuit_breaker,
    "Microsoft.ApiManagement.CircuitBreaker.Closed": circuit_breaker,
}
