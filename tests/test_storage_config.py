"""The storage connection follows the Functions conventions."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.config import Settings
from shared.domain.errors import InvalidSettings
from shared.integrations.storage import StorageNotConfigured, table_service_client

pytestmark = pytest.mark.unit  # reads files and builds clients; connects nowhere


def test_connection_string_wins() -> None:
    client = table_service_client({"INVENTORY_STORAGE": "UseDevelopmentStorage=true",
                                   "AzureWebJobsStorage__accountName": "other"})
    assert client.url.startswith("http://127.0.0.1:10002/devstoreaccount1")


def test_identity_based_with_client_id() -> None:
    client = table_service_client({"INVENTORY_STORAGE__tableServiceUri": "https://inv.table.core.windows.net",
                                   "INVENTORY_STORAGE__clientId": "11111111-2222-3333-4444-555555555555"})
    assert client.url.startswith("https://inv.table.core.windows.net")
    assert isinstance(client.credential, ManagedIdentityCredential)


def test_identity_based_default_credential() -> None:
    client = table_service_client({"INVENTORY_STORAGE__tableServiceUri": "https://inv.table.core.windows.net"})
    assert isinstance(client.credential, DefaultAzureCredential)


def test_falls_back_to_azure_webjobs_storage_account_name() -> None:
    client = table_service_client({"AzureWebJobsStorage__accountName": "hoststore"})
    assert client.url.startswith("https://hoststore.table.core.windows.net")


def test_nothing_configured_is_a_clear_error() -> None:
    with pytest.raises(StorageNotConfigured, match="INVENTORY_STORAGE"):
        table_service_client({})


def test_settings_defaults_and_overrides() -> None:
    assert Settings.from_env({}).inventory_table == "ApimInventory"
    assert Settings.from_env({}).history_table == "ApimInventoryHistory"
    assert Settings.from_env({"INVENTORY_TABLE": "Inv", "INVENTORY_CONFLICT_RETRIES": "3"}).conflict_retries == 3


@pytest.mark.parametrize("name", ["ab", "1table", "has-dash", "x" * 64])
def test_bad_table_names_are_refused_at_startup(name: str) -> None:
    with pytest.raises(InvalidSettings, match="table name"):
        Settings.from_env({"INVENTORY_TABLE": name})
