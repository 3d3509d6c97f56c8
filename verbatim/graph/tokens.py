"""App-only access tokens for Graph: MSAL client credentials per tenant, cached, refreshed before expiry.

MSAL keeps its own token cache; on top of it we memoise the current token per tenant so the hot path
(every Graph request) is a dictionary read, and the async client only leaves the event loop when a
token actually has to be fetched.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msal

from verbatim.graph.errors import GraphUnavailable

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # time.time() seconds


class MsalHttpClient:
    """The small requests-like surface MSAL needs, on httpx: timeouts, and a CA bundle for local TLS."""

    def __init__(
        self, *, verify: bool | str = True, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        verify_tls: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._client = httpx.Client(verify=verify_tls, timeout=timeout, transport=transport)

    def post(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._client.post(url, params=params, data=data, headers=headers, timeout=kwargs.get("timeout"))

    def get(
        self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers, timeout=kwargs.get("timeout"))

    def close(self) -> None:
        self._client.close()


class GraphCredentials:
    """Client-credentials tokens for one app registration, in any number of tenants.

    `authority_host` is `https://login.microsoftonline.com` in Azure and the simulator's URL locally;
    instance discovery is off so nothing is fetched from Microsoft's discovery endpoint.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authority_host: str,
        scope: str = GRAPH_DEFAULT_SCOPE,
        verify: bool | str = True,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority_host = authority_host.rstrip("/")
        self._scope = scope
        self._http = MsalHttpClient(verify=verify, transport=transport)
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()
        self.acquisitions = 0  # tokens actually fetched from the authority (observability, tests)

    def cached(self, tenant_id: str) -> str | None:
        """The tenant's token if it is valid for longer than the refresh margin, without any I/O."""
        token = self._tokens.get(tenant_id)
        if token is not None and token.expires_at - self._refresh_margin > self._clock():
            return token.value
        return None

    def token(self, tenant_id: str) -> str:
        """A valid token for the tenant, fetched (blocking) when the cached one is near its expiry."""
        value = self.cached(tenant_id)
        if value is not None:
            return value
        with self._lock:
            value = self.cached(tenant_id)
            if value is not None:
                return value
            stale = self._tokens.pop(tenant_id, None)
            if stale is not None:
                # Our refresh margin decides, not MSAL's: drop the expiring token from its cache too.
                self._forget_in_msal(tenant_id, stale.value)
            token = self._acquire(tenant_id)
            self._tokens[tenant_id] = token
            return token.value

    def invalidate(self, tenant_id: str, value: str | None = None) -> None:
        """Forget the tenant's token (Graph refused it); only if it is still `value` when one is given."""
        with self._lock:
            current = self._tokens.get(tenant_id)
            if current is not None and (value is None or current.value == value):
                del self._tokens[tenant_id]
                self._forget_in_msal(tenant_id, current.value)

    def close(self) -> None:
        self._http.close()

    def _app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        app = self._apps.get(tenant_id)
        if app is None:
            try:
                app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._client_secret,
                    authority=f"{self._authority_host}/{tenant_id}",
                    instance_discovery=False,
                    http_client=self._http,
                    token_cache=msal.TokenCache(),
                )
            except (ValueError, httpx.HTTPError) as error:
                raise GraphUnavailable(f"authority {self._authority_host} for tenant {tenant_id}: {error}") from error
            self._apps[tenant_id] = app
        return app

    def _forget_in_msal(self, tenant_id: str, value: str) -> None:
        app = self._apps.get(tenant_id)
        if app is None:
            return
        cache = app.token_cache
        matching = [
            entry for entry in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN) if entry.get("secret") == value
        ]
        for entry in matching:
            cache.remove_at(entry)

    def _acquire(self, tenant_id: str) -> AccessToken:
        app = self._app(tenant_id)
        now = self._clock()
        try:
            result: dict[str, Any] = app.acquire_token_for_client(scopes=[self._scope])
        except httpx.HTTPError as error:
            raise GraphUnavailable(f"token endpoint of tenant {tenant_id} unreachable: {error}") from error
        if "access_token" not in result:
            # error_description names the problem (bad secret, unknown tenant) and never contains the secret.
            reason = result.get("error_description") or result.get("error") or "no access_token in the response"
            raise GraphUnavailable(f"no token for tenant {tenant_id}: {reason}", code=result.get("error"))
        self.acquisitions += 1
        return AccessToken(value=str(result["access_token"]), expires_at=now + float(result.get("expires_in", 3599)))
