"""Resolve a binding's `connection` name to a storage account, as the Functions host does.

A connection name NAME is a connection string in the app setting NAME (or, for old apps,
`AzureWebJobsNAME`), or an identity-based connection in `NAME__accountName` / `NAME__queueServiceUri` / ...
The result is a `verbatim.platform.settings.StorageConnection`, so the clients come from `verbatim.platform.clients`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from verbatim.platform.settings import StorageConnection

DEFAULT_CONNECTION = "AzureWebJobsStorage"


class ConnectionNotConfigured(LookupError):
    """No app setting describes the named storage connection."""


def storage_connection(name: str | None, settings: Mapping[str, str]) -> StorageConnection:
    name = name or DEFAULT_CONNECTION
    connection_string = settings.get(name) or settings.get(f"AzureWebJobs{name}")
    identity = {
        "account_name": settings.get(f"{name}__accountName"),
        "blob_service_uri": settings.get(f"{name}__blobServiceUri"),
        "queue_service_uri": settings.get(f"{name}__queueServiceUri"),
        "table_service_uri": settings.get(f"{name}__tableServiceUri"),
    }
    if not connection_string and not any(identity.values()):
        raise ConnectionNotConfigured(
            f"storage connection {name!r} is not configured: set the app setting {name} (connection string) "
            f"or {name}__accountName / {name}__queueServiceUri"
        )
    return StorageConnection(
        name=name,
        connection_string=SecretStr(connection_string) if connection_string else None,
        client_id=settings.get(f"{name}__clientId") or settings.get("AZURE_CLIENT_ID"),
        **identity,
    )
