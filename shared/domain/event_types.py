"""The 30 APIM event types, their aliases, and case-insensitive lookup.

The names are written out here, so the domain needs no Azure package; a test pins them to
azure-eventgrid's SystemEventNames."""

from __future__ import annotations

PREFIX = "microsoft.apimanagement."

CANONICAL_TYPES: tuple[str, ...] = (
    "Microsoft.ApiManagement.UserCreated",
    "Microsoft.ApiManagement.UserUpdated",
    "Microsoft.ApiManagement.UserDeleted",
    "Microsoft.ApiManagement.APICreated",
    "Microsoft.ApiManagement.APIUpdated",
    "Microsoft.ApiManagement.APIDeleted",
    "Microsoft.ApiManagement.APIReleaseCreated",
    "Microsoft.ApiManagement.APIReleaseUpdated",
    "Microsoft.ApiManagement.APIReleaseDeleted",
    "Microsoft.ApiManagement.ProductCreated",
    "Microsoft.ApiManagement.ProductUpdated",
    "Microsoft.ApiManagement.ProductDeleted",
    "Microsoft.ApiManagement.SubscriptionCreated",
    "Microsoft.ApiManagement.SubscriptionUpdated",
    "Microsoft.ApiManagement.SubscriptionDeleted",
    "Microsoft.ApiManagement.GatewayCreated",
    "Microsoft.ApiManagement.GatewayUpdated",
    "Microsoft.ApiManagement.GatewayDeleted",
    "Microsoft.ApiManagement.GatewayAPIAdded",
    "Microsoft.ApiManagement.GatewayAPIRemoved",
    "Microsoft.ApiManagement.GatewayCertificateAuthorityCreated",
    "Microsoft.ApiManagement.GatewayCertificateAuthorityUpdated",
    "Microsoft.ApiManagement.GatewayCertificateAuthorityDeleted",
    "Microsoft.ApiManagement.GatewayHostnameConfigurationCreated",
    "Microsoft.ApiManagement.GatewayHostnameConfigurationUpdated",
    "Microsoft.ApiManagement.GatewayHostnameConfigurationDeleted",
    "Microsoft.ApiManagement.GatewayTokenNearExpiry",
    "Microsoft.ApiManagement.GatewayTokenExpired",
    "Microsoft.ApiManagement.CircuitBreaker.Opened",
    "Microsoft.ApiManagement.CircuitBreaker.Closed",
)

_LEGACY = "Microsoft.ApiManagement.SelfHostedGateway."

# Names that route like a canonical type: the legacy self-hosted gateway names, and the
# doubled "ApiManagement.ApiManagement" that one of Microsoft's published examples carries.
ALIASES: dict[str, str] = {
    _LEGACY + "Created": "Microsoft.ApiManagement.GatewayCreated",
    _LEGACY + "Updated": "Microsoft.ApiManagement.GatewayUpdated",
    _LEGACY + "Deleted": "Microsoft.ApiManagement.GatewayDeleted",
    _LEGACY + "API.Added": "Microsoft.ApiManagement.GatewayAPIAdded",
    _LEGACY + "API.Removed": "Microsoft.ApiManagement.GatewayAPIRemoved",
    _LEGACY + "CertificateAuthority.Created": "Microsoft.ApiManagement.GatewayCertificateAuthorityCreated",
    _LEGACY + "CertificateAuthority.Updated": "Microsoft.ApiManagement.GatewayCertificateAuthorityUpdated",
    _LEGACY + "CertificateAuthority.Deleted": "Microsoft.ApiManagement.GatewayCertificateAuthorityDeleted",
    _LEGACY + "HostnameConfiguration.Created": "Microsoft.ApiManagement.GatewayHostnameConfigurationCreated",
    _LEGACY + "HostnameConfiguration.Updated": "Microsoft.ApiManagement.GatewayHostnameConfigurationUpdated",
    _LEGACY + "HostnameConfiguration.Deleted": "Microsoft.ApiManagement.GatewayHostnameConfigurationDeleted",
    "Microsoft.ApiManagement.ApiManagement.CircuitBreaker.Closed": "Microsoft.ApiManagement.CircuitBreaker.Closed",
    "Microsoft.ApiManagement.ApiManagement.CircuitBreaker.Opened": "Microsoft.ApiManagement.CircuitBreaker.Opened",
}

_BY_LOWER: dict[str, str] = {t.lower(): t for t in CANONICAL_TYPES}
_BY_LOWER.update({alias.lower(): target for alias, target in ALIASES.items()})


def canonical_type(event_type: str) -> str | None:
    """The canonical name for any casing or alias of an APIM event type, else None."""
    return _BY_LOWER.get(event_type.strip().lower())


def is_apim_type(event_type: str) -> bool:
    return event_type.strip().lower().startswith(PREFIX)
