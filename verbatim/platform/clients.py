"""Factories for the Azure data-plane clients, built from settings; nothing connects at import time.

The same code reaches Azure (identity-based connections, managed identity) and the local emulators
(connection strings). Build a client once per process and pass it in.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import urllib.request
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.core.utils import CaseInsensitiveDict
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


# The variables requests reads for its CA bundle, in its order (`Session.merge_environment_settings`).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def ca_bundle(explicit: str | None = None) -> str | None:
    """The CA bundle a client trusts, read once when the client is built: `explicit` (a service's own CA setting,
    e.g. COSMOS_CA_CERT for the local emulator), else the PEM file REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE, names
    (what requests would read on every request), else None: the HTTP library's default (certifi's bundle for
    requests). A variable naming no file is an error here, when the client is built, not on its first request."""
    if explicit:
        return explicit
    for name in CA_BUNDLE_VARIABLES:
        value = os.environ.get(name)
        if value:
            if not os.path.isfile(value):
                raise ValueError(f"{name} names {value}, which is not a file")
            return value
    return None


def http_settings(url: str, *, ca: bool = True) -> dict[str, Any]:
    """The environment's HTTP settings for an Azure SDK client of `url`, read once when the client is built.

    By default azure-core's requests transport has requests read the environment on every request
    (`use_env_settings`, https://learn.microsoft.com/python/api/azure-core/azure.core.pipeline.transport.
    requeststransport): it walks the whole environment for *_proxy variables and looks for ~/.netrc each time,
    which cost more client CPU than the rest of a Cosmos request (profiled in benchmarks/reconcile.py). Here the
    transport leaves the environment alone, and what requests would have taken from it is read once: HTTP(S)_PROXY
    (unless NO_PROXY exempts the host) and the CA bundle (`ca_bundle`: REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE) —
    so a firm whose egress inspects TLS can still name its CA (docs/security.md, "Outbound TLS"). The bundle goes
    only to https endpoints, and not at all with `ca=False`: azure-core's asyncio transport builds an SSL context
    from a bundle path on every request (measured: the local host's queue polling slowed enough to fail the
    durable tests), and it trusts OpenSSL's defaults (SSL_CERT_FILE, else the system store) without one."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        return {}  # an endpoint we cannot tell: the SDK's default (read on each request)
    settings: dict[str, Any] = {"use_env_settings": False}
    proxies = {scheme: proxy for scheme, proxy in urllib.request.getproxies().items() if scheme in ("http", "https")}
    if proxies and not urllib.request.proxy_bypass(host):
        settings["proxies"] = proxies
    bundle = ca_bundle() if ca and urllib.parse.urlsplit(url).scheme == "https" else None
    if bundle is not None:
        settings["connection_verify"] = bundle
    return settings


def connection_url(connection_string: str, service: str) -> str:
    """The endpoint a storage connection string names for `service` (blob, queue, table)."""
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    endpoint = parts.get(f"{service.capitalize()}Endpoint")
    if endpoint:
        return endpoint
    account, suffix = parts.get("AccountName", ""), parts.get("EndpointSuffix", "core.windows.net")
    return f"{parts.get('DefaultEndpointsProtocol', 'https')}://{account}.{service}.{suffix}"


def blob_service(connection: StorageConnection) -> BlobServiceClient:
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return BlobServiceClient.from_connection_string(secret, **http_settings(connection_url(secret, "blob")))
    url = connection.service_uri("blob")
    return BlobServiceClient(url, credential=credential_for(connection.client_id), **http_settings(url))


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
        secret = connection.connection_string.get_secret_value()
        return Base64QueueServiceClient.from_connection_string(secret, **http_settings(connection_url(secret, "queue")))
    url = connection.service_uri("queue")
    return Base64QueueServiceClient(url, credential=credential_for(connection.client_id), **http_settings(url))


def queue_client(connection: StorageConnection, queue_name: str) -> QueueClient:
    """A client for one queue, speaking base64 text."""
    return queue_service(connection).get_queue_client(queue_name)


def table_service(connection: StorageConnection) -> TableServiceClient:
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return TableServiceClient.from_connection_string(secret, **http_settings(connection_url(secret, "table")))
    url = connection.service_uri("table")
    return TableServiceClient(endpoint=url, credential=credential_for(connection.client_id), **http_settings(url))


def cosmos_client(settings: Settings) -> CosmosClient:
    """Key auth only for the local emulator; in Azure, local auth is off and RBAC with the identity is used."""
    if not settings.cosmos_endpoint:
        raise ValueError("COSMOS_ENDPOINT is not set")
    # The SDK turns TLS verification off for localhost/127.0.0.1 unless it is given a CA bundle; the
    # devstack generates one (COSMOS_CA_CERT), so the local emulator is verified too. Without it, the bundle
    # the environment names, else certifi's.
    ssl_config = SSLConfiguration()
    ssl_config.SSLCaCerts = ca_bundle(settings.cosmos_ca_cert) or True
    credential = (
        settings.cosmos_key.get_secret_value()
        if settings.cosmos_key is not None
        else credential_for(settings.azure_client_id)
    )
    # The Cosmos SDK builds its transport without the client's keyword arguments, so the transport that leaves
    # the environment alone is given to it; the proxies read once go to its proxy policy, the CA to ssl_config.
    proxies = http_settings(settings.cosmos_endpoint).get("proxies", {})
    client = CosmosClient(
        settings.cosmos_endpoint,
        credential=credential,
        ssl_config=ssl_config,
        transport=RequestsTransport(use_env_settings=False),
        proxies=proxies,
    )
    response_headers_per_thread(client)
    return client


class _PerThread:
    """A data descriptor whose value is kept per instance and per thread (a `threading.local` in the instance)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_per_thread"

    def _local(self, instance: object) -> threading.local:
        # dict.setdefault is atomic: two threads asking first get the same threading.local.
        local: threading.local = instance.__dict__.setdefault(self._slot, threading.local())
        return local

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        local = self._local(instance)
        if not hasattr(local, "value"):
            local.value = CaseInsensitiveDict()  # what the SDK's constructor starts with
        return local.value

    def __set__(self, instance: object, value: Any) -> None:
        self._local(instance).value = value


_PER_THREAD_CLASSES: dict[type, type] = {}
_PER_THREAD_LOCK = threading.Lock()


def response_headers_per_thread(client: CosmosClient) -> None:
    """Give each thread its own `last_response_headers` on `client`'s connection, so one client can be shared.

    azure-cosmos (4.17.1, the newest release) keeps the headers of "the last response" on the client connection,
    shared by every thread: its retry utility writes the throttle headers into whatever dict is there when a
    request returns — another thread's, which may be iterating it (`RuntimeError: OrderedDict mutated during
    iteration` in `__QueryFeed`, a 500 of `GET /api/v1/verdicts`) — and a query page takes its continuation
    token from it, so a thread paging through a query can resume from another thread's position and miss or
    repeat items. Microsoft calls that attribute not thread safe (azure-sdk-for-python PR #35791, which added
    per-response headers but kept it). Every read and write of it by the SDK happens on the thread that sent
    the request and right after it, so a per-thread value is what the SDK assumes; nothing else changes
    (`tests/integration/test_cosmos_shared_client.py`). To see whether a new SDK release still needs it, run that test
    without this call: it failed within seconds on 4.17.1."""
    connection = client.client_connection
    base = type(connection)
    if isinstance(vars(base).get("last_response_headers"), _PerThread):
        return  # already per thread
    with _PER_THREAD_LOCK:
        guarded = _PER_THREAD_CLASSES.get(base)
        if guarded is None:
            guarded = _PER_THREAD_CLASSES[base] = type(
                f"{base.__name__}PerThreadHeaders", (base,), {"last_response_headers": _PerThread()}
            )
    connection.__dict__.pop("last_response_headers", None)
    connection.__class__ = guarded


def cosmos_database(settings: Settings, client: CosmosClient | None = None) -> DatabaseProxy:
    return (client or cosmos_client(settings)).get_database_client(settings.cosmos_database)
