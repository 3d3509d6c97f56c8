"""Test doubles that talk to the simulator over real HTTP: a client for its API, a tiny recorder bot
(webhook, callback route and media WebSocket) and a change-notification subscriber."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import numpy as np
from aiohttp import web

TENANT_ID = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
RECORDER_APP = "2b7e4f10-6c3a-4d8e-a1f2-0c9d8e7f6a51"
RECORDER_SECRET = "sim-recorder-local-only"
FUNCTIONS_APP = "9a3d5c71-2e4f-4b60-8d1a-7f6e5d4c3b21"
FUNCTIONS_SECRET = "sim-functions-local-only"
RECORDER_INSTANCE = "0d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6"
TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"
NED = "3b2c4d5e-6f70-4b8c-9dae-c1d2e3f4a103"
UNA = "4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104"
CORA = "5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105"
TRADERS = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a01"
FRONT_OFFICE = "8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b02"
HEADER = struct.Struct("<IIq")


async def wait_for(predicate: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class SimClient:
    """The simulator's HTTP API, with app tokens fetched from its token endpoint."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http
        self._tokens: dict[tuple[str, str], str] = {}

    async def request(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else self.base + path
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            raw = await response.read()
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
            return response.status, body, response.headers

    async def ok(
        self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any
    ) -> Any:
        status, body, _ = await self.request(method, path, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert status in expected, f"{method} {path} -> {status}: {body}"
        return body

    async def token(self, app_id: str = FUNCTIONS_APP, secret: str = FUNCTIONS_SECRET, scope: str | None = None) -> str:
        key = (app_id, scope or "graph")
        if key not in self._tokens:
            status, body, _ = await self.request(
                "POST",
                f"/{TENANT_ID}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": app_id,
                    "client_secret": secret,
                    "scope": scope or "https://graph.microsoft.com/.default",
                },
            )
            assert status == 200, body
            self._tokens[key] = body["access_token"]
        return self._tokens[key]

    async def graph(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        token = kwargs.pop("token", None) or await self.token()
        return await self.request(method, path, token=token, **kwargs)

    async def advance(self, seconds: float = 0, **units: float) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok("POST", "/sim/clock/advance", json={"seconds": seconds, **units})
        return body

    async def place(self, scenario: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok("POST", "/sim/calls", expect=201, json=scenario)
        return body

    async def call(self, call_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.ok("GET", f"/sim/calls/{call_id}")
        return body

    async def wait_call(
        self, call_id: str, predicate: Callable[[dict[str, Any]], bool], within: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            state = await self.call(call_id)
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"call never reached the expected state: {json.dumps(state)[:2000]}")
            await asyncio.sleep(0.02)

    async def configure(self, **settings: Any) -> None:
        await self.ok("PATCH", "/sim/config", json=settings)


@dataclass
class MediaCapture:
    """What one media connection delivered."""

    hello: dict[str, Any] | None = None
    frames: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def pcm(self, source: int | None = None) -> np.ndarray[Any, np.dtype[np.int16]]:
        chunks = [f[3] for f in self.frames if source is None or f[1] == source]
        return np.frombuffer(b"".join(chunks), dtype="<i2")


@dataclass
class Recorder:
    """A recorder bot for tests: answers (or not) on its webhook, keeps what the platform sent it."""

    sim: SimClient
    behaviour: str = "answer"  # answer | reject | ignore | http500
    instance_id: str = RECORDER_INSTANCE
    media: bool = True
    unmixed: bool = False
    delta_roster: bool = False
    answer_delay: float = 0.0
    incoming: list[dict[str, Any]] = field(default_factory=list)
    incoming_headers: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    captures: dict[str, MediaCapture] = field(default_factory=dict)
    media_keys: dict[str, str] = field(default_factory=dict)  # media session id -> the key its answer carried
    answers: list[tuple[str, int]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    decide: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    healthy: bool = True  # what its health probe answers (False: draining, out of the load balancer's rotation)
    register: bool = True  # point the instance's webhook here (False: it sits behind a load balancer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_post("/api/calling", self._incoming)
        app.router.add_post("/api/calling/notification", self._callback)
        app.router.add_get("/media/{session}", self._media)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if not self.register:
            return self
        instance = await self.sim.ok("GET", f"/sim/applicationInstances/{self.instance_id}")
        await self.sim.ok(
            "PUT",
            f"/sim/applicationInstances/{self.instance_id}",
            json={**instance, "webhook": f"{self.url}/api/calling"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def call_ids(self) -> list[str]:
        return [n["value"][0]["resourceData"]["id"] for n in self.incoming]

    def callback_states(self, call_id: str) -> list[str]:
        out = []
        for body in self.callbacks:
            for item in body["value"]:
                data = item.get("resourceData")
                if item["resourceUrl"].endswith(call_id) and isinstance(data, dict) and "state" in data:
                    out.append(data["state"])
        return out

    def state_notification(self, state: str) -> dict[str, Any]:
        for body in self.callbacks:
            data = body["value"][0].get("resourceData")
            if isinstance(data, dict) and data.get("state") == state:
                return body
        raise AssertionError(f"no {state} notification")

    def rosters(self, call_id: str) -> list[list[dict[str, Any]]]:
        return [
            item["resourceData"]
            for body in self.callbacks
            for item in body["value"]
            if item["resourceUrl"] == f"/communications/calls/{call_id}/participants"
        ]

    async def _incoming(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.incoming.append(body)
        self.incoming_headers.append(dict(request.headers))
        if self.behaviour == "http500":
            return web.Response(status=500)
        call_id = body["value"][0]["resourceData"]["id"]
        if self.decide is not None:
            task = asyncio.get_running_loop().create_task(self.decide(body))
        elif self.behaviour == "answer":
            task = asyncio.get_running_loop().create_task(self.answer(call_id))
        elif self.behaviour == "reject":
            task = asyncio.get_running_loop().create_task(self.reject(call_id))
        else:
            return web.Response(status=202)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    async def answer(self, call_id: str, **overrides: Any) -> int:
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        token = await self.sim.token(RECORDER_APP, RECORDER_SECRET)
        session = str(uuid.uuid4())
        if self.media:
            self.media_keys[session] = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
            blob = {
                "platform": "verbatim-sim-media",
                "version": 1,
                "endpoint": f"ws://127.0.0.1:{self.port}/media/{session}",
                "mediaSessionId": session,
                "mediaKey": self.media_keys[session],
                "receiveUnmixedMeetingAudio": self.unmixed,
            }
            media = {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": json.dumps(blob)}
        else:
            media = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
        body = {
            "callbackUri": f"{self.url}/api/calling/notification",
            "acceptedModalities": ["audio"],
            "mediaConfig": media,
            "callOptions": {
                "@odata.type": "#microsoft.graph.incomingCallOptions",
                "isDeltaRosterEnabled": self.delta_roster,
            },
            **overrides,
        }
        status, _, _ = await self.sim.request(
            "POST", f"/v1.0/communications/calls/{call_id}/answer", token=token, json=body
        )
        self.answers.append((call_id, status))
        return status

    async def reject(self, call_id: str, reason: str = "busy") -> int:
        token = await self.sim.token(RECORDER_APP, RECORDER_SECRET)
        status, _, _ = await self.sim.request(
            "POST", f"/v1.0/communications/calls/{call_id}/reject", token=token, json={"reason": reason}
        )
        return status

    async def graph(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        token = await self.sim.token(RECORDER_APP, RECORDER_SECRET)
        return await self.sim.request(method, path, token=token, **kwargs)

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ready": self.healthy}, status=200 if self.healthy else 503)

    async def stop(self) -> None:
        """The instance is gone (its process died): it stops listening."""
        await self.__aexit__(None, None, None)
        self._runner = None

    async def _callback(self, request: web.Request) -> web.Response:
        self.callbacks.append(await request.json())
        return web.Response(status=202)

    async def _media(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        capture = MediaCapture()
        self.captures[request.match_info["session"]] = capture
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if data.get("type") == "hello":
                    capture.hello = data
                else:
                    capture.events.append(data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                kind, source, ticks = HEADER.unpack_from(message.data)
                capture.frames.append((kind, source, ticks, message.data[HEADER.size :]))
        capture.closed = True
        return ws

    def capture_for(self, call_id: str) -> MediaCapture | None:
        return next((c for c in self.captures.values() if c.hello and c.hello["callId"] == call_id), None)


async def behind_load_balancer(sim: SimClient, instance_id: str, recorders: list[Recorder]) -> None:
    """Put started recorders (register=False) behind a load balancer as the instance's webhook."""
    instance = await sim.ok("GET", f"/sim/applicationInstances/{instance_id}")
    backends = [f"{r.url}/api/calling" for r in recorders]
    balanced = {**instance, "webhook": "https://recorder.contoso.example/api/calling"}
    await sim.ok(
        "PUT", f"/sim/applicationInstances/{instance_id}", json={**balanced, "loadBalancer": {"backends": backends}}
    )


@dataclass
class Subscriber:
    """A change-notification endpoint: validation handshake plus configurable answers."""

    validation: str = "echo"  # echo | wrong | silent | encoded
    status: int = 202
    delay: float = 0.0
    slow_every: int = 0  # every n-th delivery takes `delay`, others answer at once
    received: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    validations: int = 0
    deliveries: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/notify?code=secret-function-key"

    @property
    def lifecycle_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/lifecycle"

    async def __aenter__(self) -> Subscriber:
        app = web.Application()
        app.router.add_post("/api/notify", self._notify)
        app.router.add_post("/api/lifecycle", self._lifecycle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _validate(self, request: web.Request) -> web.Response:
        self.validations += 1
        token = request.query["validationToken"]
        if self.validation == "silent":
            await asyncio.sleep(2)
        if self.validation == "wrong":
            return web.Response(text="not-the-token", content_type="text/plain")
        if self.validation == "encoded":
            from urllib.parse import quote

            return web.Response(text=quote(token), content_type="text/plain")
        return web.Response(text=token, content_type="text/plain")

    async def _notify(self, request: web.Request) -> web.Response:
        if "validationToken" in request.query:
            return await self._validate(request)
        assert request.query.get("code") == "secret-function-key"  # query strings survive delivery
        self.deliveries += 1
        if self.delay and (not self.slow_every or self.deliveries % self.slow_every == 0):
            await asyncio.sleep(self.delay)
        self.received.append(await request.json())
        return web.Response(status=self.status)

    async def _lifecycle(self, request: web.Request) -> web.Response:
        if "validationToken" in request.query:
            return await self._validate(request)
        self.lifecycle.append(await request.json())
        return web.Response(status=202)

    def items(self) -> list[dict[str, Any]]:
        return [item for body in self.received for item in body["value"]]


def decode_unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
