"""The one Microsoft Graph client of the codebase: httpx with timeouts, Retry-After and back-off, paging.

`GraphClient` (sync, for Functions triggers) and `AsyncGraphClient` (for asyncio code such as the
recorder) share everything but the I/O loop. Each is bound to one tenant; tokens come from a shared
`GraphCredentials`. Paths are relative to `{base_url}/{api_version}`; absolute URLs (`@odata.nextLink`)
are accepted only under the same base, so a token is never sent anywhere else.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from verbatim import __version__
from verbatim.graph.errors import GraphError, GraphUnavailable, error_from_response
from verbatim.graph.tokens import GraphCredentials

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Params = Mapping[str, str | int]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    Graph's Retry-After is honoured up to `max_retry_after`; a longer hint (or running out of attempts)
    surfaces as `GraphThrottled` / `GraphServerError` carrying `retry_after`, so a queue-driven caller
    can put its message back with that delay instead of holding a worker asleep.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 503, 504}))

    def backoff(self, attempt: int) -> float:
        """Exponential back-off with full jitter for attempt 1, 2, ... (no Retry-After given)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the caller should give up."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)


def tls_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's `verify`: a CA bundle path (the simulator's local CA) becomes an SSL context."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _GraphCore:
    """URL handling, headers and the retry decision shared by the sync and async clients."""

    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        credentials: GraphCredentials,
        api_version: str = "v1.0",
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.credentials = credentials
        self.api_root = f"{self.base_url}/{api_version}"
        self.retry = retry or RetryPolicy()
        # Counters for benchmarks and operators; not used for decisions.
        self.requests = 0
        self.retries = 0

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            if not (path_or_url == self.base_url or path_or_url.startswith(self.base_url + "/")):
                raise GraphError(f"refusing to follow a link outside {self.base_url}", url=path_or_url.split("?")[0])
            return path_or_url
        return f"{self.api_root}/{path_or_url.lstrip('/')}"

    def headers(self, token: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
            "User-Agent": f"verbatim/{__version__}",
        }
        if extra:
            headers.update(extra)
        return headers

    def decide(
        self, method: str, response: httpx.Response | None, error: httpx.TransportError | None, attempt: int
    ) -> float | None:
        """Seconds to wait before retrying, or None to stop (return the response or raise)."""
        if error is not None:
            # A request that may have reached the server is repeated only when repeating is harmless.
            if method not in IDEMPOTENT_METHODS and not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                return None
            return self.retry.delay(attempt, None)
        assert response is not None
        if response.status_code not in self.retry.retry_statuses:
            return None
        return self.retry.delay(attempt, parse_retry_after(response.headers.get("Retry-After")))

    def log_retry(
        self,
        method: str,
        url: str,
        response: httpx.Response | None,
        error: Exception | None,
        delay: float,
        attempt: int,
    ) -> None:
        self.retries += 1
        log.warning(
            "graph request will be retried",
            extra={
                "graph_method": method,
                "graph_path": url.split("?", 1)[0].removeprefix(self.base_url),
                "graph_status": response.status_code if response is not None else None,
                "graph_request_id": response.headers.get("request-id") if response is not None else None,
                "graph_error": type(error).__name__ if error is not None else None,
                "retry_in_s": round(delay, 3),
                "attempt": attempt,
            },
        )

    def failure(self, method: str, url: str, response: httpx.Response | None, error: Exception | None) -> GraphError:
        if response is None:
            return GraphUnavailable(f"no response: {error}", method=method, url=url.split("?", 1)[0])
        return error_from_response(response, parse_retry_after(response.headers.get("Retry-After")))


def _next_link(page: JsonObject) -> str | None:
    link = page.get("@odata.nextLink")
    return link if isinstance(link, str) and link else None


class GraphClient(_GraphCore):
    """Synchronous Graph client for one tenant. Build once per process (or per tenant) and reuse."""

    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        credentials: GraphCredentials,
        api_version: str = "v1.0",
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            base_url=base_url, tenant_id=tenant_id, credentials=credentials, api_version=api_version, retry=retry
        )
        self._http = http or httpx.Client(
            timeout=timeout, verify=tls_verify(verify), limits=httpx.Limits(max_connections=64)
        )
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request with retries; a 2xx response, or a typed `GraphError`."""
        method = method.upper()
        url = self.url(path_or_url)
        attempt = 0
        refreshed_token = False
        while True:
            attempt += 1
            token = self.credentials.token(self.tenant_id)
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            self.requests += 1
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=self.headers(token, headers)
                )
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.is_success:
                return response
            if response is not None and response.status_code == 401 and not refreshed_token:
                refreshed_token = True
                self.credentials.invalidate(self.tenant_id, token)
                continue
            delay = self.decide(method, response, error, attempt)
            if delay is None:
                raise self.failure(method, url, response, error) from error
            self.log_retry(method, url, response, error, delay, attempt)
            self._sleep(delay)

    def get_json(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> JsonObject:
        return _json_object(self.request("GET", path_or_url, params=params, headers=headers))

    def post_json(self, path_or_url: str, body: Any, *, headers: Mapping[str, str] | None = None) -> JsonObject:
        return _json_object(self.request("POST", path_or_url, json=body, headers=headers))

    def patch_json(self, path_or_url: str, body: Any, *, headers: Mapping[str, str] | None = None) -> JsonObject:
        return _json_object(self.request("PATCH", path_or_url, json=body, headers=headers))

    def delete(self, path_or_url: str, *, headers: Mapping[str, str] | None = None) -> None:
        self.request("DELETE", path_or_url, headers=headers)

    def iter_pages(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[JsonObject]:
        """Each page of a collection, following `@odata.nextLink` (which already carries the query)."""
        page = self.get_json(path_or_url, params=params, headers=headers)
        yield page
        while (link := _next_link(page)) is not None:
            page = self.get_json(link, headers=headers)
            yield page

    def iter_items(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[JsonObject]:
        """Every item of a collection across pages."""
        for page in self.iter_pages(path_or_url, params=params, headers=headers):
            yield from _page_items(page)


class AsyncGraphClient(_GraphCore):
    """Asyncio Graph client for one tenant (same behaviour as `GraphClient`)."""

    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        credentials: GraphCredentials,
        api_version: str = "v1.0",
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(
            base_url=base_url, tenant_id=tenant_id, credentials=credentials, api_version=api_version, retry=retry
        )
        self._http = http or httpx.AsyncClient(
            timeout=timeout, verify=tls_verify(verify), limits=httpx.Limits(max_connections=64)
        )
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _token(self) -> str:
        cached = self.credentials.cached(self.tenant_id)
        if cached is not None:
            return cached
        # MSAL is synchronous: fetch off the event loop.
        return await asyncio.to_thread(self.credentials.token, self.tenant_id)

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request with retries; a 2xx response, or a typed `GraphError`."""
        method = method.upper()
        url = self.url(path_or_url)
        attempt = 0
        refreshed_token = False
        while True:
            attempt += 1
            token = await self._token()
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            self.requests += 1
            try:
                response = await self._http.request(
                    method, url, params=params, json=json, headers=self.headers(token, headers)
                )
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.is_success:
                return response
            if response is not None and response.status_code == 401 and not refreshed_token:
                refreshed_token = True
                self.credentials.invalidate(self.tenant_id, token)
                continue
            delay = self.decide(method, response, error, attempt)
            if delay is None:
                raise self.failure(method, url, response, error) from error
            self.log_retry(method, url, response, error, delay, attempt)
            await self._sleep(delay)

    async def get_json(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> JsonObject:
        return _json_object(await self.request("GET", path_or_url, params=params, headers=headers))

    async def post_json(self, path_or_url: str, body: Any, *, headers: Mapping[str, str] | None = None) -> JsonObject:
        return _json_object(await self.request("POST", path_or_url, json=body, headers=headers))

    async def patch_json(self, path_or_url: str, body: Any, *, headers: Mapping[str, str] | None = None) -> JsonObject:
        return _json_object(await self.request("PATCH", path_or_url, json=body, headers=headers))

    async def delete(self, path_or_url: str, *, headers: Mapping[str, str] | None = None) -> None:
        await self.request("DELETE", path_or_url, headers=headers)

    async def iter_pages(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[JsonObject]:
        page = await self.get_json(path_or_url, params=params, headers=headers)
        yield page
        while (link := _next_link(page)) is not None:
            page = await self.get_json(link, headers=headers)
            yield page

    async def iter_items(
        self, path_or_url: str, *, params: Params | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[JsonObject]:
        async for page in self.iter_pages(path_or_url, params=params, headers=headers):
            for item in _page_items(page):
                yield item


def _json_object(response: httpx.Response) -> JsonObject:
    """The body as a JSON object; `{}` for 204 / empty bodies."""
    if response.status_code == 204 or not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as error:
        raise GraphError(
            "Graph answered with a body that is not JSON",
            status=response.status_code,
            request_id=response.headers.get("request-id"),
            method=response.request.method,
            url=str(response.request.url).split("?", 1)[0],
        ) from error
    if not isinstance(body, dict):
        raise GraphError("Graph answered with JSON that is not an object", status=response.status_code)
    return body


def _page_items(page: JsonObject) -> list[JsonObject]:
    value = page.get("value")
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]
