"""Storage service clients from the app settings, following the Functions connection conventions.

A connection `PREFIX` is a connection string in `PREFIX` (`UseDevelopmentStorage=true` for Azurite), or
identity-based: `PREFIX__{table|blob}ServiceUri` (or `__serviceUri`), or `PREFIX__accountName`, with
`PREFIX__clientId` / `PREFIX__credential` choosing the managed identity. The same rules serve the Table
client of the inventory (INVENTORY_STORAGE, then AzureWebJobsStorage) and the Blob client of the
dead-letter container (DEAD_LETTER_STORAGE).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from azure.data.tables import TableServiceClient

from shared.integrations.identity import credential

if TYPE_CHECKING:  # the Blob SDK is imported only where blobs are read: the function app never needs it
    from azure.storage.blob import BlobServiceClient

DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
Client = TypeVar("Client", "TableServiceClient", "BlobServiceClient")


TABLE_PREFIXES = ("INVENTORY_STORAGE", "AzureWebJobsStorage")


class StorageNotConfigured(Exception):
    pass


def connection_setting(prefixes: tuple[str, ...] = TABLE_PREFIXES, service: str = "table",
                       env: Mapping[str, str] | None = None) -> str | None:
    """The name of the setting the connection comes from (`INVENTORY_STORAGE`, `AzureWebJobsStorage__tableServiceUri`,
    ...), for messages that tell which setting to fix; None when none is set."""
    env = os.environ if env is None else env
    for prefix in prefixes:
        for name in (prefix, f"{prefix}__{service}ServiceUri", f"{prefix}__serviceUri", f"{prefix}__accountName"):
            if env.get(name, "").strip():
                return name
    return None


def table_service_client(env: Mapping[str, str] | None = None, **client_options: Any) -> TableServiceClient:
    return service_client(TableServiceClient, TABLE_PREFIXES, env, **client_options)


def blob_service_client(env: Mapping[str, str] | None = None, prefixes: tuple[str, ...] = ("DEAD_LETTER_STORAGE",),
                        **client_options: Any) -> BlobServiceClient:
    """The dead-letter storage by default; `prefixes=("GATEWAY_LOGS_STORAGE",)` for the gateway logs' archive."""
    from azure.storage.blob import BlobServiceClient

    return service_client(BlobServiceClient, prefixes, env, **client_options)


def service_client(kind: type[Client], prefixes: tuple[str, ...], env: Mapping[str, str] | None = None,
                   **client_options: Any) -> Client:
    """The first connection configured under one of `prefixes`, as a client of `kind`."""
    env = os.environ if env is None else env
    service = "table" if kind is TableServiceClient else "blob"
    for prefix in prefixes:
        conn = env.get(prefix, "").strip()
        if conn:
            if conn.lower().replace(" ", "") == "usedevelopmentstorage=true":
                conn = DEVELOPMENT_STORAGE
            return kind.from_connection_string(conn, **client_options)
        endpoint = env.get(f"{prefix}__{service}ServiceUri") or env.get(f"{prefix}__serviceUri")
        account = env.get(f"{prefix}__accountName")
        if not endpoint and account:
            endpoint = f"https://{account}.{service}.core.windows.net"
        if endpoint:
            return kind(endpoint, credential=credential(env, prefix), **client_options)
    first = prefixes[0]
    raise StorageNotConfigured(
        f"set {first} (a connection string) or {first}__{service}ServiceUri"
        + "".join(f", or {other}" for other in prefixes[1:])
    )
