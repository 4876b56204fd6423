"""The kinds of resource the inventory holds, and the family (partition group) of each."""

from __future__ import annotations

KINDS: tuple[str, ...] = (
    "user",
    "api",
    "apiRelease",
    "product",
    "subscription",
    "gateway",
    "gatewayApi",
    "gatewayHostnameConfiguration",
    "gatewayCertificateAuthority",
    "gatewayInstance",
    "backend",
    "circuitBreakerRule",
)
# kind -> family: a resource and all its children share a family, so they share a partition.
FAMILY: dict[str, str] = {
    "user": "user", "api": "api", "apiRelease": "api", "product": "product", "subscription": "subscription",
    "gateway": "gateway", "gatewayApi": "gateway", "gatewayHostnameConfiguration": "gateway",
    "gatewayCertificateAuthority": "gateway", "gatewayInstance": "gateway", "backend": "backend",
    "circuitBreakerRule": "backend",
}
