"""The Graph call-control requests the recorder makes, behind one small interface.

`GraphCallsApi` is the adapter over the codebase's Graph client (`verbatim.graph`: MSAL client credentials
with a token cache, httpx with timeouts and Retry-After); tests and benchmarks may pass their own `CallsApi`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, Protocol

from verbatim.graph import AsyncGraphClient, GraphCredentials, GraphError, GraphNotFound, RetryPolicy
from verbatim.graph.client import tls_verify

log = logging.getLogger(__name__)

RecordingStatus = Literal["recording", "notRecording", "failed"]
RejectReason = Literal["none", "busy", "forbidden"]

# Answer, reject and recording status must land within the platform's windows: few, short retries.
SIGNALLING_RETRY = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0, max_retry_after=1.0)
# Connections to Graph, opened at start-up and kept open (recorder_vm.graph_connections): an invitation storm (a
# meeting where many policy users join at once, every call after a failover) then finds warm TLS connections instead
# of opening one per answer (a TLS handshake costs more CPU than the answer itself); requests beyond these wait for a
# free connection.
SIGNALLING_CONNECTIONS = 32
SIGNALLING_KEEPALIVE_SECONDS = 60.0


class CallGone(Exception):
    """Graph says the call no longer exists (404)."""


class CallsApiError(Exception):
    """A call-control request failed; the message says which and why (never a token)."""


class CallsApi(Protocol):
    async def answer(self, tenant_id: str, call_id: str, body: dict[str, Any]) -> None: ...

    async def reject(self, tenant_id: str, call_id: str, reason: RejectReason, callback_uri: str | None) -> None: ...

    async def update_recording_status(
        self, tenant_id: str, call_id: str, status: RecordingStatus, client_context: str
    ) -> None: ...

    async def keep_alive(self, tenant_id: str, call_id: str) -> None: ...

    async def hang_up(self, tenant_id: str, call_id: str) -> None: ...

    async def prepare(self, tenant_id: str) -> None:
        """Make the next request to this tenant fast (e.g. fetch its token now)."""
        ...

    async def warm(self) -> None:
        """Make the next requests to any tenant fast (e.g. open the connections they share now)."""
        ...

    async def aclose(self) -> None: ...


class GraphCallsApi:
    """`CallsApi` over `verbatim.graph`: one async client per tenant, sharing one token cache."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: GraphCredentials,
        verify: bool | str = True,
        timeout_seconds: float = 4.0,
    ) -> None:
        import httpx
        from httpx_aiohttp import AiohttpTransport

        from recorder_vm.graph_connections import GraphConnections

        self._base_url = base_url
        self._credentials = credentials
        # httpx's interface (what verbatim.graph speaks) over aiohttp's connection pool: under a storm, httpcore's
        # pool spent more CPU assigning requests to connections than the answers cost (it checks every connection
        # for each request; benchmarks/invitation_storm.py, docs/resilience.md). The pool is kept warm.
        self.connections = GraphConnections(
            base_url,
            size=SIGNALLING_CONNECTIONS,
            ssl_context=httpx.create_ssl_context(verify=tls_verify(verify)),  # as httpx-aiohttp made it
            keepalive_seconds=SIGNALLING_KEEPALIVE_SECONDS,
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=2.0),
            transport=AiohttpTransport(client=self.connections.session),
        )
        self._clients: dict[str, AsyncGraphClient] = {}

    def _client(self, tenant_id: str) -> AsyncGraphClient:
        client = self._clients.get(tenant_id)
        if client is None:
            client = AsyncGraphClient(
                base_url=self._base_url,
                tenant_id=tenant_id,
                credentials=self._credentials,
                retry=SIGNALLING_RETRY,
                http=self._http,
            )
            self._clients[tenant_id] = client
        return client

    async def _post(self, tenant_id: str, call_id: str, action: str, body: dict[str, Any] | None) -> None:
        path = f"/communications/calls/{call_id}/{action}" if action else f"/communications/calls/{call_id}"
        try:
            await self._client(tenant_id).request("POST", path, json=body)
        except GraphNotFound as error:
            raise CallGone(f"{action or 'call'}: call {call_id} not found") from error
        except GraphError as error:
            raise CallsApiError(f"{action} of call {call_id} failed: {error}") from error

    async def answer(self, tenant_id: str, call_id: str, body: dict[str, Any]) -> None:
        await self._post(tenant_id, call_id, "answer", body)

    async def reject(self, tenant_id: str, call_id: str, reason: RejectReason, callback_uri: str | None) -> None:
        body: dict[str, Any] = {"reason": reason}
        if callback_uri:
            body["callbackUri"] = callback_uri
        await self._post(tenant_id, call_id, "reject", body)

    async def update_recording_status(
        self, tenant_id: str, call_id: str, status: RecordingStatus, client_context: str
    ) -> None:
        await self._post(
            tenant_id, call_id, "updateRecordingStatus", {"clientContext": client_context[:256], "status": status}
        )

    async def keep_alive(self, tenant_id: str, call_id: str) -> None:
        await self._post(tenant_id, call_id, "keepAlive", None)

    async def hang_up(self, tenant_id: str, call_id: str) -> None:
        try:
            await self._client(tenant_id).delete(f"/communications/calls/{call_id}")
        except GraphNotFound as error:
            raise CallGone(f"call {call_id} not found") from error
        except GraphError as error:
            raise CallsApiError(f"leaving call {call_id} failed: {error}") from error

    async def prepare(self, tenant_id: str) -> None:
        """Fetch this tenant's Graph token now unless one is cached (outside its refresh margin)."""
        if self._credentials.cached(tenant_id) is None:
            await asyncio.to_thread(self._credentials.token, tenant_id)

    async def warm(self) -> None:
        """Top up the Graph connections every tenant's requests share (one pool: Graph is one host)."""
        await self.connections.warm()

    @property
    def connections_opened(self) -> int:
        """Connections opened to Graph since start-up."""
        return self.connections.opened

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.connections.aclose()
        self._credentials.close()
