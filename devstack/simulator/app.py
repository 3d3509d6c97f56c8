"""The simulator's HTTP(S) server: wires the services together, maps errors to Graph's shape (or
``application/problem+json`` on ``/sim``), applies injected faults to Graph paths, and serves the
simulator's own ``/sim/health``, ``/sim/clock`` and ``/sim/config`` routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .callrecords import CallRecords
from .calls import Calls
from .chats import Chats, MeetingRef
from .clock import Clock, ClockMode
from .config import SimConfig
from .directory import Directory
from .faults import Faults
from .identity import Identity
from .media import MediaPump
from .odata import GraphError, bad_request, format_datetime, parse_datetime, read_json, read_model
from .speech import SpeechRenderer
from .subscriptions import Subscriptions
from .tenant import TenantStore
from .tls import ensure_certificates, server_context
from .userconfig import UserConfigurations

log = logging.getLogger("simulator")
GRAPH_PREFIXES = ("/v1.0/", "/beta/")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdvanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0, ge=0)
    minutes: float = Field(default=0, ge=0)
    hours: float = Field(default=0, ge=0)
    days: float = Field(default=0, ge=0, le=3650)
    to: str | None = None


@dataclass
class Simulator:
    """Every service of one running simulator."""

    clock: Clock
    config: SimConfig
    tenant: TenantStore
    identity: Identity
    faults: Faults
    records: CallRecords
    subscriptions: Subscriptions
    calls: Calls
    directory: Directory
    user_configurations: UserConfigurations
    pump: MediaPump
    chats: Chats
    http_url: str
    https_url: str | None
    ca_file: Path | None
    http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.clock.start()
        self.subscriptions.start(self.http)
        self.calls.start(self.http)

    async def stop(self) -> None:
        await self.pump.stop()
        await self.clock.stop()
        if self.http is not None:
            await self.http.close()


def build(
    tenant_path: Path,
    clock_mode: ClockMode,
    state_dir: Path,
    http_url: str,
    https_url: str | None,
    ca_file: Path | None,
    start: datetime | None = None,
    seed: int = 1234,
) -> Simulator:
    clock = Clock(clock_mode, start)
    config = SimConfig()
    tenant = TenantStore.load(tenant_path)
    identity = Identity(tenant, http_url, state_dir / "keys", issuer_base=https_url, config=config)
    faults = Faults(seed, clock.now)
    records = CallRecords(clock, config, identity, faults)
    subscriptions = Subscriptions(clock, config, identity, tenant, faults)
    records.listeners.append(subscriptions.record_published)
    faults.listeners.append(subscriptions.drop_window_added)
    pump = MediaPump()
    speech = SpeechRenderer(state_dir / "speech-cache")
    calls = Calls(clock, config, tenant, identity, faults, records, speech, pump)
    directory = Directory(tenant, identity)
    user_configurations = UserConfigurations(tenant, identity, clock)

    def meeting_of(call_id: str) -> MeetingRef | None:
        scenario = calls.scenarios.get(call_id)
        if scenario is None or not scenario.conversations or scenario.spec.type not in ("meeting", "groupCall"):
            return None
        conv = scenario.conversations[0]
        users = {p.key: p.user for p in scenario.spec.participants if p.user is not None}
        join_url = f"https://teams.microsoft.com/l/meetup-join/{conv.thread_id}/0"
        organizer = users.get(scenario.organizer_key)
        return MeetingRef(conv.thread_id, join_url, organizer, list(users.values()), scenario.spec.subject)

    chats = Chats(clock, config, tenant, identity, subscriptions, http_url, meeting_of)
    return Simulator(
        clock,
        config,
        tenant,
        identity,
        faults,
        records,
        subscriptions,
        calls,
        directory,
        user_configurations,
        pump,
        chats,
        http_url,
        https_url,
        ca_file,
    )


def make_app(sim: Simulator) -> web.Application:
    own_names = LOOPBACK_NAMES | {name for name in (_host_name(sim.http_url), _host_name(sim.https_url)) if name}

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        graph = request.path.startswith(GRAPH_PREFIXES)
        try:
            if request.path.startswith("/sim/"):
                _check_host(request, own_names)
            if graph:
                sim.faults.check_http(request)
            return await handler(request)
        except GraphError as error:
            return _error_response(request, error, sim.clock.now())
        except web.HTTPException as error:
            if error.status < 400:
                raise
            code = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}.get(
                error.status, "BadRequest"
            )
            message = (
                f"Resource not found for the segment '{request.path}'."
                if error.status == 404
                else error.reason or "Request rejected."
            )
            return _error_response(request, GraphError(error.status, code, message), sim.clock.now())
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return _error_response(
                request, GraphError(500, "InternalServerError", "The simulator failed; see its log."), sim.clock.now()
            )

    app = web.Application(middlewares=[errors], client_max_size=64 * 1024 * 1024)
    app["sim"] = sim
    app.add_routes(sim.identity.routes())
    app.add_routes(sim.directory.routes())
    app.add_routes(sim.user_configurations.routes())
    app.add_routes(sim.calls.routes())
    app.add_routes(sim.records.routes())
    app.add_routes(sim.subscriptions.routes())
    app.add_routes(sim.chats.routes())
    app.add_routes(sim.faults.routes())
    app.add_routes(
        [
            web.get("/sim/health", _health),
            web.get("/sim/clock", _clock),
            web.post("/sim/clock/advance", _advance),
            web.get("/sim/config", _get_config),
            web.patch("/sim/config", _patch_config),
            web.get("/sim/tls/ca.pem", _ca),
            web.post("/sim/reset", _reset),
            web.get("/sim/media/stats", _media_stats),
            web.delete("/sim/media/stats", _media_stats),
        ]
    )

    async def on_startup(_: web.Application) -> None:
        await sim.start()

    async def on_cleanup(_: web.Application) -> None:
        await sim.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def _host_name(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def _check_host(request: web.Request, allowed: frozenset[str] | set[str]) -> None:
    """Refuse a request addressed to a name that is not ours (DNS rebinding).

    A page in the developer's browser can point its own name at 127.0.0.1 and then call the simulator as a
    same-origin request — minting tokens, resetting state. The Host header still carries the page's name.
    """
    host = request.headers.get("Host", "")
    name = urlsplit(f"//{host}").hostname if host else None
    if name is None or name.lower() not in allowed:
        log.warning("refused a request addressed to another host name", extra={"host": host[:100]})
        raise GraphError(403, "Forbidden", f"the Host header {host[:100]!r} is not this simulator's name")


def _error_response(request: web.Request, error: GraphError, now: datetime) -> web.Response:
    if request.path.startswith("/sim/"):
        body = {"type": "about:blank", "title": error.code, "status": error.status, "detail": error.message}
        return web.json_response(
            body, status=error.status, content_type="application/problem+json", headers=error.headers
        )
    return error.response(now)


def _sim(request: web.Request) -> Simulator:
    sim: Simulator = request.app["sim"]
    return sim


async def _health(request: web.Request) -> web.Response:
    sim = _sim(request)
    tid = sim.tenant.model.tenant.id
    return web.json_response(
        {
            "status": "ok",
            "clock": sim.clock.mode,
            "now": format_datetime(sim.clock.now()),
            "tenantId": tid,
            "tenantDomain": sim.tenant.model.tenant.domain,
            "httpUrl": sim.http_url,
            "httpsUrl": sim.https_url,
            "caFile": str(sim.ca_file) if sim.ca_file else None,
            "graphBaseUrl": f"{sim.http_url}/v1.0",
            "authority": f"{sim.https_url}/{tid}" if sim.https_url else None,
            "openIdConfiguration": f"{sim.http_url}/{tid}/v2.0/.well-known/openid-configuration",
            "issuer": sim.identity.entra_issuer,
            "platformOpenIdConfiguration": f"{sim.http_url}/platform/v1/.well-known/OpenIdConfiguration",
            "activeCalls": sum(1 for s in sim.calls.scenarios.values() if s.state != "ended"),
            "mediaLateTicks": sim.pump.late_ticks,
            "media": sim.pump.stats(),
        }
    )


def _clock_json(sim: Simulator) -> dict[str, Any]:
    due = sim.clock.next_due()
    return {
        "mode": sim.clock.mode,
        "now": format_datetime(sim.clock.now()),
        "pendingTimers": sim.clock.pending(),
        "nextTimerAt": format_datetime(due) if due else None,
    }


async def _clock(request: web.Request) -> web.Response:
    return web.json_response(_clock_json(_sim(request)))


async def _advance(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_model(request, AdvanceBody, max_bytes=4096)
    delta = timedelta(seconds=body.seconds, minutes=body.minutes, hours=body.hours, days=body.days)
    if body.to is not None:
        try:
            target = parse_datetime(body.to)
        except ValueError as error:
            raise bad_request(f"'to' is not a DateTimeOffset: {body.to}") from error
        if target < sim.clock.now():
            raise bad_request("The clock only moves forward.")
        delta += target - sim.clock.now()
    fired = await sim.clock.advance(delta)
    return web.json_response({**_clock_json(sim), "firedTimers": fired})


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).config.model_dump(by_alias=True))


async def _patch_config(request: web.Request) -> web.Response:
    sim = _sim(request)
    data = await read_json(request, max_bytes=16 * 1024)
    if not isinstance(data, dict):
        raise bad_request("Send a JSON object with the settings to change.")
    try:
        merged = SimConfig.model_validate({**sim.config.model_dump(by_alias=True), **data})
    except ValidationError as error:
        raise bad_request(f"Invalid configuration: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from error
    for name in SimConfig.model_fields:
        setattr(sim.config, name, getattr(merged, name))
    return web.json_response(sim.config.model_dump(by_alias=True))


async def _media_stats(request: web.Request) -> web.Response:
    """The media pump's tick statistics (DELETE starts a new measurement window)."""
    pump = _sim(request).pump
    if request.method == "DELETE":
        pump.reset_stats()
        return web.Response(status=204)
    return web.json_response(pump.stats())


async def _ca(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    if sim.ca_file is None:
        raise GraphError(404, "NotFound", "HTTPS is off for this simulator.")
    return web.Response(body=sim.ca_file.read_bytes(), content_type="application/x-pem-file")


async def _reset(request: web.Request) -> web.Response:
    """Forget calls, call records, subscriptions, deliveries and faults (the tenant stays)."""
    sim = _sim(request)
    for scenario in list(sim.calls.scenarios.values()):
        for conv in scenario.conversations:
            if conv.state != "ended":
                conv.spec.call_record.enabled = False
                await conv.end("ended", "simulator reset", (200, 5001, "The conversation has ended."))
    await sim.clock.settle()
    sim.clock.cancel_all()
    sim.records.scheduled.clear()
    sim.subscriptions._window_timer = None
    sim.calls.scenarios.clear()
    sim.calls.legs.clear()
    sim.records.records.clear()
    sim.records.pstn_rows.clear()
    sim.records.dr_rows.clear()
    for sub in sim.subscriptions.items.values():
        for timer in sub.timers:
            timer.cancel()
    sim.subscriptions.items.clear()
    sim.subscriptions.queues.clear()
    sim.subscriptions.log.clear()
    sim.subscriptions.endpoints.clear()
    sim.faults.active.clear()
    sim.chats.reset()
    return web.Response(status=204)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def serve(
    host: str,
    port: int,
    https_port: int | None,
    tenant_path: Path,
    clock_mode: ClockMode,
    state_dir: Path,
    start: datetime | None = None,
    seed: int = 1234,
) -> None:
    """Run until SIGINT/SIGTERM (``state_dir`` must exist)."""
    http_url = f"http://{host}:{port}"
    ssl_context = None
    https_url = None
    ca_file = None
    if https_port is not None:
        if https_port == 0:
            https_port = _free_port(host)
        ca_file, cert, key = ensure_certificates(state_dir / "tls")
        ssl_context = server_context(cert, key)
        https_url = f"https://{host}:{https_port}"
    sim = build(tenant_path, clock_mode, state_dir, http_url, https_url, ca_file, start, seed)
    app = make_app(sim)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    if ssl_context is not None and https_port is not None:
        await web.TCPSite(runner, host, https_port, ssl_context=ssl_context, reuse_address=True).start()
    log.info("simulator ready on %s%s (clock %s)", http_url, f" and {https_url}" if https_url else "", clock_mode)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
