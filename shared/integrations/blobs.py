"""The dead-letter container: which Blob container a replay reads, and with which credential."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.storage.blob import ContainerClient

from shared.integrations.identity import credential
from shared.integrations.storage import StorageNotConfigured, blob_service_client

SETTING = "DEAD_LETTER_STORAGE"


def container_client(target: str, env: Mapping[str, str], **options: Any) -> ContainerClient:
    """TARGET is ACCOUNT_URL/CONTAINER, or only CONTAINER when DEAD_LETTER_STORAGE names the account.
    DEAD_LETTER_STORAGE (a connection string, or its identity-based forms) authenticates when set;
    otherwise an https URL uses DefaultAzureCredential. ValueError for a target it cannot use."""
    try:
        configured = blob_service_client(env, **options)
    except StorageNotConfigured:
        configured = None
    if "://" not in target:
        if configured is None:
            raise ValueError(f"{target!r} is not ACCOUNT_URL/CONTAINER, and no {SETTING} names the account")
        return configured.get_container_client(target)
    try:
        named = ContainerClient.from_container_url(target)  # the SDK splits account URL and container
    except ValueError as exc:
        raise ValueError(f"{target!r} is not ACCOUNT_URL/CONTAINER: {exc}") from None
    if configured is not None:
        client = configured.get_container_client(named.container_name)
        if client.url.rstrip("/").lower() != named.url.rstrip("/").lower():
            raise ValueError(f"{target} is not in the account of the connection string ({configured.url})")
        return client
    if not target.lower().startswith("https://"):
        raise ValueError(f"{target} is not https: give a connection string (--connection-string or {SETTING})")
    return ContainerClient.from_container_url(target, credential=credential(env, SETTING), **options)
