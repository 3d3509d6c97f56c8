"""Factories for the Azure data-plane clients, built from settings; nothing connects at import time.

The same code reaches Azure (identity-based connections, managed identity) and the local emulators
(connection strings). Build a client once per process and pass it in.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.cosmos import CosmosClient, DatabaseProxy
from azure.cosmos.documents import SSLConfiguration
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueProperties,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from verbatim.platform.settings import Settings, StorageConnection


def credential_for(client_id: str | None) -> TokenCredential:
    """The identity used for keyless connections: a user-assigned identity when a client id is set."""
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def blob_service(connection: StorageConnection) -> BlobServiceClient:
    if connection.connection_string is not None:
        return BlobServiceClient.from_connection_string(connection.connection_string.get_secret_value())
    return BlobServiceClient(connection.service_uri("blob"), credential=credential_for(connection.client_id))


class Base64QueueServiceClient(QueueServiceClient):
    """A queue service whose queue clients read and write base64 text, as the Functions queue trigger does.

    The SDK does not hand a service client's message policies down to `get_queue_client`, so this does.
    """

    def get_queue_client(self, queue: QueueProperties | str, **kwargs: Any) -> QueueClient:
        kwargs.setdefault("message_encode_policy", TextBase64EncodePolicy())
        kwargs.setdefault("message_decode_policy", TextBase64DecodePolicy())
        return super().get_queue_client(queue, **kwargs)


def queue_service(connection: StorageConnection) -> Base64QueueServiceClient:
    if connection.connection_string is not None:
        return Base64QueueServiceClient.from_connection_string(connection.connection_string.get_secret_value())
    return Base64QueueServiceClient(connection.service_uri("queue"), credential=credential_for(connection.client_id))


def queue_client(connection: StorageConnection, queue_name: str) -> QueueClient:
    """A client for one queue, speaking base64 text."""
    return queue_service(connection).get_queue_client(queue_name)


def table_service(connection: StorageConnection) -> TableServiceClient:
    if connection.connection_string is not None:
        return TableServiceClient.from_connection_string(connection.connection_string.get_secret_value())
    return TableServiceClient(endpoint=connection.service_uri("table"), credential=credential_for(connection.client_id))


def cosmos_client(settings: Settings) -> CosmosClient:
    """Key auth only for the local emulator; in Azure, local auth is off and RBAC with the identity is used."""
    if not settings.cosmos_endpoint:
        raise ValueError("COSMOS_ENDPOINT is not set")
    # The SDK turns TLS verification off for localhost/127.0.0.1 unless it is given a CA bundle; the
    # devstack generates one, so the local emulator is verified too.
    ssl_config = SSLConfiguration()
    ssl_config.SSLCaCerts = settings.cosmos_ca_cert or True
    credential = (
        settings.cosmos_key.get_secret_value()
        if settings.cosmos_key is not None
        else credential_for(settings.azure_client_id)
    )
    return CosmosClient(settings.cosmos_endpoint, credential=credential, ssl_config=ssl_config)


def cosmos_database(settings: Settings, client: CosmosClient | None = None) -> DatabaseProxy:
    return (client or cosmos_client(settings)).get_database_client(settings.cosmos_database)
