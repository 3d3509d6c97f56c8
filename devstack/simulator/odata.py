"""Graph wire conventions shared by every route: error bodies, timestamps and durations, paging tokens,
``Prefer: odata.maxpagesize`` and request-body validation."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class GraphError(Exception):
    """An error answered in Graph's shape: ``{"error": {"code", "message", "innerError"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}

    def response(self, clock_now: datetime) -> web.Response:
        inner = {
            "date": format_datetime(clock_now, digits=0),
            "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4()),
            **self.inner,
        }
        body = {"error": {"code": self.code, "message": self.message, "innerError": inner}}
        return web.json_response(body, status=self.status, headers=self.headers)


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(message: str, code: str = "NotFound") -> GraphError:
    return GraphError(404, code, message)


# -- time --------------------------------------------------------------------------------------------


def format_datetime(value: datetime, digits: int = 7) -> str:
    """Graph's UTC form, e.g. ``2020-02-25T18:52:21.2169889Z`` (7 fractional digits by default)."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    fraction = f"{value.microsecond:06d}0"[:digits]
    return f"{base}.{fraction}Z"


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(text: str) -> datetime:
    """Parse an OData DateTimeOffset literal or a bare date (``2019-11-01`` means midnight UTC)."""
    text = text.strip().strip("'")
    if _DATE_ONLY.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    normalised = text.replace("Z", "+00:00").replace("z", "+00:00")
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", normalised)
    if match:  # Python accepts at most 6 fractional digits; Graph sends 7
        normalised = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    parsed = datetime.fromisoformat(normalised)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_duration(seconds: float) -> str:
    """ISO-8601 duration as Graph writes media statistics, e.g. ``PT0.016S``."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text or '0'}S"


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(seconds=1)


# -- paging ------------------------------------------------------------------------------------------


def encode_skiptoken(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, json.JSONDecodeError) as error:
        raise bad_request("The $skiptoken is not valid.") from error
    if not isinstance(value, dict):
        raise bad_request("The $skiptoken is not valid.")
    return value


def page_size(request: web.Request, default: int, maximum: int) -> int:
    """Honour ``Prefer: odata.maxpagesize=n`` and ``$top`` up to the API's maximum page size."""
    size = default
    prefer = request.headers.get("Prefer", "")
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
    if match:
        size = int(match.group(1))
    top = request.query.get("$top")
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            raise bad_request("$top must be a positive integer.")
        size = int(top)
    return max(1, min(size, maximum))


# -- request bodies ----------------------------------------------------------------------------------

MAX_BODY_BYTES = 4 * 1024 * 1024


async def read_json(request: web.Request, *, max_bytes: int = MAX_BODY_BYTES) -> Any:
    if request.content_length is not None and request.content_length > max_bytes:
        raise GraphError(413, "RequestEntityTooLarge", f"The request body exceeds {max_bytes} bytes.")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise GraphError(413, "RequestEntityTooLarge", f"The request body exceeds {max_bytes} bytes.")
    if not raw.strip():
        raise bad_request("A JSON request body is required.")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise bad_request(f"The request body is not valid JSON: {error.msg} at position {error.pos}.") from error


async def read_model(request: web.Request, model: type[M], *, max_bytes: int = MAX_BODY_BYTES) -> M:
    data = await read_json(request, max_bytes=max_bytes)
    return validate(model, data)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in error.errors()[:10]
        )
        raise bad_request(f"Invalid request body: {problems}") from error


def base_url(request: web.Request) -> str:
    """The scheme://host:port the caller used, for nextLinks and Location headers."""
    return f"{request.scheme}://{request.host}"
