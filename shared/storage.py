"""The Table service client, from the app settings, following the Functions connection conventions.

Order: INVENTORY_STORAGE (connection string), INVENTORY_STORAGE__tableServiceUri (identity),
then AzureWebJobsStorage as a connection string or its __tableServiceUri / __accountName forms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from azure.data.tables import TableServiceClient

from .identity import credential

DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


class StorageNotConfigured(Exception):
    pass


def table_service_client(env: Mapping[str, str] | None = None, **client_options: Any) -> TableServiceClient:
    env = os.environ if env is None else env
    for prefix in ("INVENTORY_STORAGE", "AzureWebJobsStorage"):
        conn = env.get(prefix, "").strip()
        if conn:
            if conn.lower().replace(" ", "") == "usedevelopmentstorage=true":
                conn = DEVELOPMENT_STORAGE
            return TableServiceClient.from_connection_string(conn, **client_options)
        endpoint = env.get(f"{prefix}__tableServiceUri") or env.get(f"{prefix}__serviceUri")
        account = env.get(f"{prefix}__accountName")
        if not endpoint and account:
            endpoint = f"https://{account}.table.core.windows.net"
        if endpoint:
            return TableServiceClient(endpoint=endpoint, credential=credential(env, prefix), **client_options)
    raise StorageNotConfigured(
        "set INVENTORY_STORAGE (a connection string) or INVENTORY_STORAGE__tableServiceUri, or AzureWebJobsStorage"
    )
