"""The client factories pick key/connection-string auth locally and managed identity in Azure."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from pydantic import SecretStr

from devstack.emulators import AzuritePorts
from verbatim.platform import clients
from verbatim.platform.settings import Settings, StorageConnection


def test_connection_string_clients_point_at_the_emulator_endpoints() -> None:
    connection = StorageConnection(
        name="AzureWebJobsStorage",
        connection_string=SecretStr(AzuritePorts(blob=11000, queue=11001, table=11002).connection_string),
    )

    assert clients.blob_service(connection).url.startswith("http://127.0.0.1:11000/devstoreaccount1")
    assert clients.queue_service(connection).url.startswith("http://127.0.0.1:11001/devstoreaccount1")
    assert clients.table_service(connection).url.startswith("http://127.0.0.1:11002/devstoreaccount1")


def test_identity_connections_use_the_user_assigned_identity_and_the_account_endpoints() -> None:
    connection = StorageConnection(name="RECORDINGS_STORAGE", account_name="strec", client_id="client-123")
    blob = clients.blob_service(connection)

    assert blob.url.startswith("https://strec.blob.core.windows.net")
    assert isinstance(blob.credential, ManagedIdentityCredential)


def test_identity_connections_without_a_client_id_fall_back_to_the_default_credential_chain() -> None:
    assert isinstance(clients.credential_for(None), DefaultAzureCredential)


def test_cosmos_client_requires_an_endpoint() -> None:
    with pytest.raises(ValueError, match="COSMOS_ENDPOINT"):
        clients.cosmos_client(Settings.model_validate({}))
