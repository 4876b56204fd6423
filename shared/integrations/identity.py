"""One credential rule for every Azure service the app calls (Table Storage, the alerts topic, ARM),
following the Functions convention for identity-based connections: `{PREFIX}__clientId` picks a
user-assigned managed identity, `{PREFIX}__credential=managedidentity` the system-assigned one."""

from __future__ import annotations

from collections.abc import Mapping

from azure.core.credentials import TokenCredential


def credential(env: Mapping[str, str], prefix: str) -> TokenCredential:
    """A TokenCredential. In Azure (IDENTITY_ENDPOINT set) the managed identity directly; elsewhere
    DefaultAzureCredential (environment, workload identity, Azure CLI, ...). Imported here, on first
    use, so that importing the app stays cheap."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = env.get(f"{prefix}__clientId") or None
    wants_identity = env.get(f"{prefix}__credential", "").lower() == "managedidentity"
    if client_id or wants_identity or env.get("IDENTITY_ENDPOINT"):
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    return DefaultAzureCredential()
