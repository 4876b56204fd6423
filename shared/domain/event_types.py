"""The 30 APIM event types, their aliases, and case-insensitive lookup."""

from __future__ import annotations

from azure.eventgrid import SystemEventNames as S

PREFIX = "microsoft.apimanagement."

CANONICAL_TYPES: tuple[str, ...] = (
    S.ApiManagementUserCreatedEventName,
    S.ApiManagementUserUpdatedEventName,
    S.ApiManagementUserDeletedEventName,
    S.ApiManagementApiCreatedEventName,
    S.ApiManagementApiUpdatedEventName,
    S.ApiManagementApiDeletedEventName,
    S.ApiManagementApiReleaseCreatedEventName,
    S.ApiManagementApiReleaseUpdatedEventName,
    S.ApiManagementApiReleaseDeletedEventName,
    S.ApiManagementProductCreatedEventName,
    S.ApiManagementProductUpdatedEventName,
    S.ApiManagementProductDeletedEventName,
    S.ApiManagementSubscriptionCreatedEventName,
    S.ApiManagementSubscriptionUpdatedEventName,
    S.ApiManagementSubscriptionDeletedEventName,
    S.ApiManagementGatewayCreatedEventName,
    S.ApiManagementGatewayUpdatedEventName,
    S.ApiManagementGatewayDeletedEventName,
    S.ApiManagementGatewayApiAddedEventName,
    S.ApiManagementGatewayApiRemovedEventName,
    S.ApiManagementGatewayCertificateAuthorityCreatedEventName,
    S.ApiManagementGatewayCertificateAuthorityUpdatedEventName,
    S.ApiManagementGatewayCertificateAuthorityDeletedEventName,
    S.ApiManagementGatewayHostnameConfigurationCreatedEventName,
    S.ApiManagementGatewayHostnameConfigurationUpdatedEventName,
    S.ApiManagementGatewayHostnameConfigurationDeletedEventName,
    S.ApiManagementGatewayTokenNearExpiryEventName,
    S.ApiManagementGatewayTokenExpiredEventName,
    S.ApiManagementCircuitBreakerOpenedEventName,
    S.ApiManagementCircuitBreakerClosedEventName,
)

_LEGACY = "Microsoft.ApiManagement.SelfHostedGateway."

# Names that route like a canonical type: the legacy self-hosted gateway names, and the
# doubled "ApiManagement.ApiManagement" that one of Microsoft's published examples carries.
ALIASES: dict[str, str] = {
    _LEGACY + "Created": S.ApiManagementGatewayCreatedEventName,
    _LEGACY + "Updated": S.ApiManagementGatewayUpdatedEventName,
    _LEGACY + "Deleted": S.ApiManagementGatewayDeletedEventName,
    _LEGACY + "API.Added": S.ApiManagementGatewayApiAddedEventName,
    _LEGACY + "API.Removed": S.ApiManagementGatewayApiRemovedEventName,
    _LEGACY + "CertificateAuthority.Created": S.ApiManagementGatewayCertificateAuthorityCreatedEventName,
    _LEGACY + "CertificateAuthority.Updated": S.ApiManagementGatewayCertificateAuthorityUpdatedEventName,
    _LEGACY + "CertificateAuthority.Deleted": S.ApiManagementGatewayCertificateAuthorityDeletedEventName,
    _LEGACY + "HostnameConfiguration.Created": S.ApiManagementGatewayHostnameConfigurationCreatedEventName,
    _LEGACY + "HostnameConfiguration.Updated": S.ApiManagementGatewayHostnameConfigurationUpdatedEventName,
    _LEGACY + "HostnameConfiguration.Deleted": S.ApiManagementGatewayHostnameConfigurationDeletedEventName,
    "Microsoft.ApiManagement.ApiManagement.CircuitBreaker.Closed": S.ApiManagementCircuitBreakerClosedEventName,
    "Microsoft.ApiManagement.ApiManagement.CircuitBreaker.Opened": S.ApiManagementCircuitBreakerOpenedEventName,
}

CANONICAL_TYPES = tuple(str(getattr(t, "value", t)) for t in CANONICAL_TYPES)
ALIASES = {alias: str(getattr(t, "value", t)) for alias, t in ALIASES.items()}
_BY_LOWER: dict[str, str] = {t.lower(): t for t in CANONICAL_TYPES}
_BY_LOWER.update({alias.lower(): target for alias, target in ALIASES.items()})


def canonical_type(event_type: str) -> str | None:
    """The canonical name for any casing or alias of an APIM event type, else None."""
    return _BY_LOWER.get(event_type.strip().lower())


def is_apim_type(event_type: str) -> bool:
    return event_type.strip().lower().startswith(PREFIX)
