"""HTTP plumbing shared by every trigger: JSON bodies, the access reason, ranged answers, domain errors →
application/problem+json, the client's address, and Graph's webhook validation handshake."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from verbatim.graph.webhooks import validation_response
from verbatim.ledger.access import REASON_HEADER, access_reason
from verbatim.platform.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType, VerbatimError
from verbatim.platform.inputs import forwarded_client
from verbatim.platform.settings import get_settings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
MAX_JSON_BODY = 1024 * 1024


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extensions: object
) -> func.HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extensions}
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/problem+json", headers=headers
    )


def json_response(payload: BaseModel | dict[str, Any] | list[Any], status: int = 200) -> func.HttpResponse:
    body = payload.model_dump_json(by_alias=True) if isinstance(payload, BaseModel) else json.dumps(payload)
    return func.HttpResponse(body, status_code=status, mimetype="application/json")


def parse_json_body(req: func.HttpRequest, model: type[M], max_bytes: int = MAX_JSON_BODY) -> M:
    """The request body as `model`; 415 for a non-JSON content type, 413 when too large, 400 when invalid."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(f"expected Content-Type application/json, got {content_type or 'none'}")
    body = req.get_body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        errors = [
            {"loc": ".".join(str(part) for part in e["loc"]), "msg": e["msg"]} for e in error.errors(include_url=False)
        ]
        raise InvalidInput("the body does not match the expected schema", errors=errors) from error


def optional_reason(req: func.HttpRequest) -> str | None:
    """The request's `X-Access-Reason`, when it gives one (400 when unusable)."""
    return access_reason(req.headers.get(REASON_HEADER), required=False)


def required_reason(req: func.HttpRequest) -> str:
    """The request's `X-Access-Reason`, which this request must give (400 when absent or unusable)."""
    given = access_reason(req.headers.get(REASON_HEADER), required=True)
    assert given is not None
    return given


class RangedAnswer(Protocol):
    """A bounded part of a stored object, as a service answers a Range request (`verbatim.api.media`)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> dict[str, str]: ...

    @property
    def body(self) -> bytes: ...


def ranged_response(answer: RangedAnswer, what: str) -> func.HttpResponse:
    """The answer as it is, except a 416, which becomes a problem naming `what` and its size."""
    if answer.status == 416:
        detail = f"the range is outside the {answer.headers['Content-Range'].split('/')[-1]} bytes of {what}"
        response = problem(416, "Range not satisfiable", detail)
        response.headers.update(answer.headers)
        return response
    return func.HttpResponse(answer.body, status_code=answer.status, headers=answer.headers)


Handler = TypeVar("Handler", bound=Callable[..., Any])


def problem_responses(handler: Handler) -> Handler:
    """Turn domain errors raised by an HTTP trigger into problem+json responses (and log 5xx)."""

    if _is_async(handler):

        @functools.wraps(handler)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(*args, **kwargs)
            except VerbatimError as error:
                return _to_problem(error)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except VerbatimError as error:
            return _to_problem(error)

    return wrapper  # type: ignore[return-value]


def _is_async(handler: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(handler)


def _to_problem(error: VerbatimError) -> func.HttpResponse:
    if error.status >= 500:
        log.error("request failed: %s", error.detail)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return problem(error.status, error.title, error.detail, headers, **error.extensions)


def client_address(req: func.HttpRequest) -> str | None:
    """The caller's address, only as far as our own proxies vouch for it (TRUSTED_FORWARDED_HOPS): a client can
    write X-Forwarded-For itself."""
    return forwarded_client(req.headers.get("x-forwarded-for"), get_settings().trusted_forwarded_hops)


def graph_handshake(req: func.HttpRequest) -> func.HttpResponse | None:
    """Graph's validation of a notification URL answered (the token back as text/plain), or None if this request
    is not one. `func.HttpRequest.params` holds the URL-decoded query values, as Graph requires the echo to be."""
    token = validation_response(req.params.get("validationToken"))
    if token is None:
        return None
    return func.HttpResponse(
        token, status_code=200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"}
    )
