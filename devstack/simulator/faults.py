"""Faults on demand: 429/5xx on Graph paths (by count or rate), duplicate and out-of-order change
notifications, change notifications dropped for a window of simulated time, delayed call records, recorder
invitation failures, media stream failures mid-call and established-before-establishing notifications. Rates
draw from a seeded generator so runs repeat."""

from __future__ import annotations

import fnmatch
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from .odata import GraphError, not_found, read_model

FaultKind = Literal[
    "http",
    "duplicateNotifications",
    "outOfOrderNotifications",
    "dropDeliveries",
    "callRecordDelay",
    "recorderInvitation",
    "mediaStreamFailure",
    "establishedOutOfOrder",
]
_HTTP_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class FaultSpec(BaseModel):
    """Body of ``POST /sim/faults``; ``count`` (default 1) or ``rate`` says how often it fires."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    kind: FaultKind
    count: int | None = Field(default=None, ge=1, le=1_000_000)
    rate: float | None = Field(default=None, gt=0, le=1)
    # http
    method: str | None = Field(default=None, pattern=r"^(GET|POST|PUT|PATCH|DELETE)$")
    path: str = Field(default="/v1.0/*", max_length=500, description="glob on the request path")
    status: int = 429
    retry_after_seconds: int | None = Field(default=None, ge=0, le=3600)
    # notifications and call records
    subscription_id: str | None = None
    delay_seconds: float = Field(default=60.0, ge=0, le=30 * 86400)
    # dropDeliveries: every notification of the subscription (any when omitted) is dropped for this long, then
    # (with sendMissed) each matching subscription gets a `missed` lifecycle notification
    duration_seconds: float = Field(default=300.0, gt=0, le=30 * 86400)
    send_missed: bool = False
    # recorder invitations
    mode: Literal["drop", "fail"] = "drop"
    application_instance_id: str | None = None
    # media
    call_id: str | None = Field(default=None, description="a /sim/calls id; any call when omitted")
    after_seconds: float = Field(default=1.0, ge=0, le=86400)
    reason: str = Field(default="Simulated media stream failure", max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> FaultSpec:
        if self.count is not None and self.rate is not None:
            raise ValueError("give count or rate, not both")
        if self.kind == "http" and self.status not in _HTTP_CODES:
            raise ValueError(f"status must be one of {sorted(_HTTP_CODES)}")
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if self.kind == "dropDeliveries" and (self.count is not None or self.rate is not None):
            raise ValueError("dropDeliveries lasts durationSeconds; count and rate do not apply")
        return self


class Fault:
    def __init__(self, spec: FaultSpec, now: datetime | None = None) -> None:
        self.id = str(uuid.uuid4())
        self.spec = spec
        windowed = spec.kind == "dropDeliveries"
        self.remaining = None if windowed or spec.rate is not None else (spec.count if spec.count is not None else 1)
        self.until = now + timedelta(seconds=spec.duration_seconds) if windowed and now is not None else None
        self.fired = 0

    def dump(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            **self.spec.model_dump(by_alias=True, exclude_none=True),
            "remaining": self.remaining,
            "fired": self.fired,
        }
        if self.until is not None:
            out["until"] = self.until.isoformat().replace("+00:00", "Z")
        return out


class Faults:
    """Active faults; :meth:`take` consumes one firing of the first fault that matches."""

    def __init__(self, seed: int = 1234, now: Callable[[], datetime] | None = None) -> None:
        self.active: list[Fault] = []
        self.random = random.Random(seed)  # noqa: S311 - reproducible fault rates
        self._now = now
        self.listeners: list[Callable[[Fault], None]] = []  # told of every fault added

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(spec, self._now() if self._now else None)
        self.active.append(fault)
        for listener in self.listeners:
            listener(fault)
        return fault

    def window(self, kind: str, subscription_id: str, now: datetime) -> Fault | None:
        """The time-windowed fault of ``kind`` covering ``subscription_id`` at ``now``, counted as fired."""
        for fault in self.active:
            spec = fault.spec
            if spec.kind != kind or fault.until is None or now >= fault.until:
                continue
            if spec.subscription_id in (None, subscription_id):
                fault.fired += 1
                return fault
        return None

    def take(self, kind: str, match: Callable[[FaultSpec], bool] = lambda _: True) -> FaultSpec | None:
        for fault in list(self.active):
            if fault.spec.kind != kind or not match(fault.spec):
                continue
            if fault.spec.rate is not None and self.random.random() >= fault.spec.rate:
                continue
            fault.fired += 1
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.active.remove(fault)
            return fault.spec
        return None

    def pending(self, kind: str) -> list[FaultSpec]:
        return [f.spec for f in self.active if f.spec.kind == kind]

    def check_http(self, request: web.Request) -> None:
        """Raise the Graph error an active ``http`` fault asks for on this request, if any."""
        path = request.path

        def matches(spec: FaultSpec) -> bool:
            if spec.method is not None and spec.method != request.method:
                return False
            return fnmatch.fnmatchcase(path, spec.path)

        spec = self.take("http", matches)
        if spec is None:
            return
        headers = {}
        if spec.retry_after_seconds is not None:
            headers["Retry-After"] = str(spec.retry_after_seconds)
        code = _HTTP_CODES[spec.status]
        message = (
            "Too many requests, retry after the time in the Retry-After header."
            if spec.status == 429
            else "Simulated service failure."
        )
        raise GraphError(spec.status, code, message, headers=headers)

    # -- routes ---------------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/sim/faults", self._list),
            web.post("/sim/faults", self._add),
            web.delete("/sim/faults", self._clear),
            web.delete("/sim/faults/{fid}", self._remove),
        ]

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"value": [f.dump() for f in self.active]})

    async def _add(self, request: web.Request) -> web.Response:
        spec = await read_model(request, FaultSpec, max_bytes=64 * 1024)
        return web.json_response(self.add(spec).dump(), status=201)

    async def _clear(self, request: web.Request) -> web.Response:
        self.active.clear()
        return web.Response(status=204)

    async def _remove(self, request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        for fault in self.active:
            if fault.id == fid:
                self.active.remove(fault)
                return web.Response(status=204)
        raise not_found(f"No active fault '{fid}'.")
