"""Microsoft Graph, for the whole codebase: tokens (MSAL), a sync and an async client, typed errors.

Typical use::

    credentials = graph_credentials(settings)           # once per process; shares tokens across clients
    with graph_client(settings, credentials=credentials) as graph:   # bound to settings' tenant
        record = graph.get_json("/communications/callRecords/{id}")
        for user in graph.iter_items("/users", params={"$select": "id"}):
            ...

Errors: every failure is a `GraphError` (`status`, `code`, `request_id`, `retry_after`, `retryable`);
subclasses `GraphNotFound`, `GraphThrottled`, `GraphServerError`, `GraphUnavailable`, ... say which.
"""

from __future__ import annotations

from verbatim.graph.client import AsyncGraphClient, GraphClient, RetryPolicy, parse_retry_after
from verbatim.graph.errors import (
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphServerError,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
)
from verbatim.graph.tokens import GraphCredentials
from verbatim.platform.settings import Settings

__all__ = [
    "AsyncGraphClient",
    "GraphBadRequest",
    "GraphClient",
    "GraphConflict",
    "GraphCredentials",
    "GraphError",
    "GraphForbidden",
    "GraphNotFound",
    "GraphServerError",
    "GraphThrottled",
    "GraphUnauthorized",
    "GraphUnavailable",
    "RetryPolicy",
    "async_graph_client",
    "graph_client",
    "graph_credentials",
    "parse_retry_after",
]


def _verify(settings: Settings) -> bool | str:
    return settings.graph_ca_cert or True


def graph_credentials(settings: Settings) -> GraphCredentials:
    """Client-credentials tokens for the app registration in settings (any of its tenants)."""
    if not settings.graph_client_id or settings.graph_client_secret is None:
        raise ValueError("GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET must be set to call Graph")
    return GraphCredentials(
        client_id=settings.graph_client_id,
        client_secret=settings.graph_client_secret.get_secret_value(),
        authority_host=settings.graph_authority_host,
        scope=settings.graph_scope,
        verify=_verify(settings),
    )


def _tenant(settings: Settings, tenant_id: str | None) -> str:
    tenant = tenant_id or settings.graph_tenant_id
    if not tenant:
        raise ValueError("no tenant: pass tenant_id or set GRAPH_TENANT_ID")
    return tenant


def graph_client(
    settings: Settings,
    tenant_id: str | None = None,
    *,
    credentials: GraphCredentials | None = None,
    retry: RetryPolicy | None = None,
) -> GraphClient:
    """A sync client for `tenant_id` (default: GRAPH_TENANT_ID) at GRAPH_BASE_URL."""
    return GraphClient(
        base_url=settings.graph_base_url,
        tenant_id=_tenant(settings, tenant_id),
        credentials=credentials or graph_credentials(settings),
        retry=retry,
        verify=_verify(settings),
    )


def async_graph_client(
    settings: Settings,
    tenant_id: str | None = None,
    *,
    credentials: GraphCredentials | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncGraphClient:
    """An asyncio client for `tenant_id` (default: GRAPH_TENANT_ID) at GRAPH_BASE_URL."""
    return AsyncGraphClient(
        base_url=settings.graph_base_url,
        tenant_id=_tenant(settings, tenant_id),
        credentials=credentials or graph_credentials(settings),
        retry=retry,
        verify=_verify(settings),
    )
