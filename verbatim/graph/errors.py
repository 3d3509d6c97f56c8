"""Typed errors of the Graph client: what failed (status, Graph error code, request id) and whether to retry."""

from __future__ import annotations

from typing import Any

import httpx


class GraphError(Exception):
    """Graph answered with an error (or could not be reached). `status` is 0 when no response arrived."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth trying again later (throttling, service unavailable, transport failures)."""
        return False

    def __str__(self) -> str:
        parts = [f"{self.method} {self.url}" if self.method else "", f"{self.status}" if self.status else "", self.code]
        head = " ".join(part for part in parts if part)
        rid = f" (request-id {self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{rid}" if head else f"{self.message}{rid}"


class GraphBadRequest(GraphError):
    """400: the request is wrong (a bug on our side, or an unsupported filter)."""


class GraphUnauthorized(GraphError):
    """401: the token was refused (after one retry with a fresh token)."""


class GraphForbidden(GraphError):
    """403: the app lacks a permission or consent (or a quota such as subscriptions per tenant is reached)."""


class GraphNotFound(GraphError):
    """404: the resource does not exist (yet, for a call record younger than 150 minutes)."""


class GraphConflict(GraphError):
    """409 / 412: the resource changed or already exists."""


class GraphThrottled(GraphError):
    """429 after the client's own retries; `retry_after` (seconds) says when to try again."""

    @property
    def retryable(self) -> bool:
        return True


class GraphServerError(GraphError):
    """5xx after the client's own retries (503/504 are Graph's "try again later")."""

    @property
    def retryable(self) -> bool:
        return True


class GraphUnavailable(GraphError):
    """No usable response: connection refused, timeout, TLS failure, or a token could not be acquired."""

    @property
    def retryable(self) -> bool:
        return True


_BY_STATUS: dict[int, type[GraphError]] = {
    400: GraphBadRequest,
    401: GraphUnauthorized,
    403: GraphForbidden,
    404: GraphNotFound,
    409: GraphConflict,
    412: GraphConflict,
    429: GraphThrottled,
}


def error_from_response(response: httpx.Response, retry_after: float | None = None) -> GraphError:
    """The typed error for a Graph error response, with Graph's own code, message and request id."""
    code: str | None = None
    message = response.reason_phrase or "error"
    request_id = response.headers.get("request-id") or response.headers.get("client-request-id")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        if isinstance(error.get("message"), str) and error["message"]:
            message = error["message"]
        inner = error.get("innerError") or error.get("innererror")
        if not request_id and isinstance(inner, dict) and isinstance(inner.get("request-id"), str):
            request_id = inner["request-id"]
    status = response.status_code
    cls = _BY_STATUS.get(status) or (GraphServerError if status >= 500 else GraphError)
    return cls(
        message,
        status=status,
        code=code,
        request_id=request_id,
        method=response.request.method,
        url=_redacted(str(response.request.url)),
        retry_after=retry_after,
    )


def _redacted(url: str) -> str:
    """The URL without its query string: filters can carry user ids, and logs must stay lean."""
    return url.split("?", 1)[0]
