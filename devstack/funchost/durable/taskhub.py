"""A task hub's configuration (from host.json and the app settings) and its storage clients.

Names follow the real Azure Storage provider: tables `<hub>Instances` and `<hub>History`, queues
`<hub>-control-00` and `<hub>-workitems`, blob container `<hub>-largemessages` (lower-cased where Azure
requires it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from devstack.funchost.durable.queues import HubQueue, LargeMessageStore, queue_client
from devstack.funchost.durable.store import TaskHubStore
from devstack.funchost.durable.versions import (
    FAILURE_STRATEGIES,
    MATCH_STRATEGIES,
    FailureStrategy,
    MatchStrategy,
)
from verbatim.platform.clients import connection_url as _url
from verbatim.platform.clients import http_settings
from verbatim.platform.settings import StorageConnection

DEFAULT_HUB_NAME = "TestHubName"
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
_SETTING_REFERENCE = re.compile(r"^%([^%]+)%$")


class TaskHubConfigError(ValueError):
    """host.json or the app settings do not describe a usable task hub."""


def resolve_setting(value: str, environ: Mapping[str, str]) -> str:
    """`%NAME%` is the value of app setting NAME, as in host.json everywhere."""
    match = _SETTING_REFERENCE.match(value.strip())
    if not match:
        return value
    name = match.group(1)
    if name not in environ:
        raise TaskHubConfigError(f"host.json refers to app setting {name!r}, which is not set")
    return environ[name]


DEFAULT_MAX_CONCURRENT_ACTIVITIES = 10


def _choice(section: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = section.get(key)
    if value is None:
        return default
    chosen = next((option for option in allowed if option.lower() == str(value).lower()), None)
    if chosen is None:
        raise TaskHubConfigError(f"durableTask.{key} must be one of {', '.join(allowed)}, not {value!r}")
    return chosen


@dataclass(frozen=True)
class DurableOptions:
    """The durableTask section of host.json that the local host honours."""

    hub_name: str
    connection_name: str = "AzureWebJobsStorage"
    # Azure's default on the Consumption plans (10; 10 x the processors on Dedicated/Premium): MicrosoftDocs
    # azure-docs, includes/functions-host-json-durabletask.md, `maxConcurrentActivityFunctions`.
    max_concurrent_activities: int = DEFAULT_MAX_CONCURRENT_ACTIVITIES
    # Orchestration versioning (`devstack.funchost.durable.versions`): `defaultVersion`, `versionMatchStrategy`,
    # `versionFailureStrategy`, with the extension's defaults.
    default_version: str | None = None
    version_match: MatchStrategy = "CurrentOrOlder"
    version_failure: FailureStrategy = "Reject"

    @classmethod
    def from_host_json(cls, host_json: Mapping[str, Any], environ: Mapping[str, str]) -> DurableOptions:
        section: Mapping[str, Any] = (host_json.get("extensions") or {}).get("durableTask") or {}
        hub = resolve_setting(str(section.get("hubName") or DEFAULT_HUB_NAME), environ)
        if not _HUB_NAME.match(hub):
            raise TaskHubConfigError(
                f"task hub name {hub!r} is not valid: 3-45 letters and digits, starting with a letter"
            )
        provider: Mapping[str, Any] = section.get("storageProvider") or {}
        connection = str(
            provider.get("connectionName") or provider.get("connectionStringName") or "AzureWebJobsStorage"
        )
        default_version = section.get("defaultVersion")
        if default_version is not None and not isinstance(default_version, str):
            raise TaskHubConfigError(f"durableTask.defaultVersion must be a string, not {default_version!r}")
        match = _choice(section, "versionMatchStrategy", MATCH_STRATEGIES, "CurrentOrOlder")
        failure = _choice(section, "versionFailureStrategy", FAILURE_STRATEGIES, "Reject")
        return cls(
            hub_name=hub,
            connection_name=connection,
            max_concurrent_activities=int(
                section.get("maxConcurrentActivityFunctions") or DEFAULT_MAX_CONCURRENT_ACTIVITIES
            ),
            default_version=default_version or None,  # `"defaultVersion": null` is the same as none
            version_match=match,  # type: ignore[arg-type]  # one of MATCH_STRATEGIES, checked by _choice
            version_failure=failure,  # type: ignore[arg-type]  # one of FAILURE_STRATEGIES
        )

    @property
    def control_queue(self) -> str:
        return f"{self.hub_name.lower()}-control-00"

    @property
    def work_item_queue(self) -> str:
        return f"{self.hub_name.lower()}-workitems"

    @property
    def large_message_container(self) -> str:
        return f"{self.hub_name.lower()}-largemessages"


def storage_connection(name: str, environ: Mapping[str, str]) -> StorageConnection:
    """The Functions connection convention: a connection string, or `<name>__accountName` / service URIs."""
    connection_string = environ.get(name)
    return StorageConnection.model_validate(
        {
            "name": name,
            "connection_string": connection_string or None,
            "account_name": environ.get(f"{name}__accountName"),
            "blob_service_uri": environ.get(f"{name}__blobServiceUri"),
            "queue_service_uri": environ.get(f"{name}__queueServiceUri"),
            "table_service_uri": environ.get(f"{name}__tableServiceUri"),
            "client_id": environ.get(f"{name}__clientId") or environ.get("AZURE_CLIENT_ID"),
        }
    )


@dataclass
class TaskHub:
    """The storage of one task hub: instance/history tables, control and work-item queues."""

    options: DurableOptions
    store: TaskHubStore
    control: HubQueue
    work_items: HubQueue
    large_messages: LargeMessageStore
    _queues: QueueServiceClient

    @classmethod
    def connect(cls, options: DurableOptions, environ: Mapping[str, str]) -> TaskHub:
        connection = storage_connection(options.connection_name, environ)
        if connection.connection_string is not None:
            secret = connection.connection_string.get_secret_value()
            # Proxy settings read once, not by aiohttp on every request (verbatim.platform.clients).
            tables = TableServiceClient.from_connection_string(secret, **http_settings(_url(secret, "table")))
            queues = QueueServiceClient.from_connection_string(secret, **http_settings(_url(secret, "queue")))
            blobs = BlobServiceClient.from_connection_string(secret, **http_settings(_url(secret, "blob")))
        else:
            from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

            credential = (
                ManagedIdentityCredential(client_id=connection.client_id)
                if connection.client_id
                else DefaultAzureCredential(exclude_interactive_browser_credential=True)
            )
            urls = {service: connection.service_uri(service) for service in ("table", "queue", "blob")}
            tables = TableServiceClient(urls["table"], credential=credential, **http_settings(urls["table"]))
            queues = QueueServiceClient(urls["queue"], credential=credential, **http_settings(urls["queue"]))
            blobs = BlobServiceClient(urls["blob"], credential=credential, **http_settings(urls["blob"]))
        large = LargeMessageStore(blobs, options.large_message_container)
        return cls(
            options=options,
            store=TaskHubStore(tables, options.hub_name),
            control=HubQueue(queue_client(queues, options.control_queue), large),
            work_items=HubQueue(queue_client(queues, options.work_item_queue), large),
            large_messages=large,
            _queues=queues,
        )

    async def create_if_missing(self) -> None:
        await self.store.create_if_missing()
        await self.control.create_if_missing()
        await self.work_items.create_if_missing()
        await self.large_messages.create_if_missing()

    async def close(self) -> None:
        await self.control.close()
        await self.work_items.close()
        await self._queues.close()
        await self.large_messages.close()
        await self.store.close()
