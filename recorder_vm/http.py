"""The recorder's HTTP surface: signalling webhooks, health, and loopback-only admin routes.

`POST /api/calling` is the load-balanced incoming-call webhook (answered with `Connection: close` so the next
invitation may land on another instance); `POST /api/calling/notification/{instance}` is this instance's
callbackUri. Both check the platform JWT before reading the body. Errors are `application/problem+json`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from recorder_vm.notifications import parse_notifications
from recorder_vm.platform_auth import PlatformTokenValidator
from recorder_vm.service import Recorder
from verbatim.lifecycle.liveness import LIFECYCLE_ROLE
from verbatim.platform.auth import TokenValidator, bearer_token
from verbatim.platform.errors import (
    DependencyUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    VerbatimError,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(error: VerbatimError) -> web.Response:
    body = {"type": "about:blank", "title": error.title, "status": error.status, "detail": error.detail}
    return web.Response(status=error.status, text=json.dumps(body), content_type="application/problem+json")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VerbatimError as error:
        response = problem(error)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response


def create_app(
    recorder: Recorder, validator: PlatformTokenValidator, control: TokenValidator | None = None
) -> web.Application:
    settings = recorder.settings
    limit = settings.max_notification_bytes
    app = web.Application(middlewares=[errors], client_max_size=limit)
    app["shutdown"] = asyncio.Event()

    async def read_body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"notifications are limited to {limit} bytes")
        content_type = request.content_type
        if content_type not in ("application/json", "text/json", "application/octet-stream", ""):
            raise UnsupportedMediaType(f"expected application/json, got {content_type}")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            raise PayloadTooLarge(f"notifications are limited to {limit} bytes") from error

    async def signalling(request: web.Request, *, load_balanced: bool) -> web.StreamResponse:
        caller = await validator.validate(request.headers.get("Authorization"))
        updates = parse_notifications(await read_body(request))
        await recorder.handle(updates, caller)
        response = web.Response(status=202)
        if load_balanced:
            response.force_close()
        return response

    async def incoming(request: web.Request) -> web.StreamResponse:
        return await signalling(request, load_balanced=True)

    async def notification(request: web.Request) -> web.StreamResponse:
        instance = request.match_info.get("instance")
        if instance is not None and instance != settings.instance_id:
            log.warning("notification addressed to another instance", extra={"instance": instance})
        return await signalling(request, load_balanced=False)

    async def health(_request: web.Request) -> web.Response:
        state = recorder.health()
        body = {
            "status": "ready" if state.ready else "not_ready",
            "live": True,
            "ready": state.ready,
            "instance": settings.instance_id,
            "version": settings.version,
            "checks": {
                "media": "up" if state.media else "down",
                "storage": "up" if state.storage else "down",
                "draining": state.draining,
                "graph": "configured" if settings.graph_configured else "not_configured",
                "tenants": len(settings.tenant_ids) or "none configured",
            },
            "active_calls": state.active_calls,
            "max_concurrent_calls": settings.max_concurrent_calls,
        }
        return web.json_response(body, status=200 if state.ready else 503)

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"status": "live", "instance": settings.instance_id})

    async def capture(request: web.Request) -> web.Response:
        """The lifecycle asks whether this instance still holds a capture, before it salvages it: 200 with its
        state when it does, 404 when it does not (a restarted process holds nothing of its predecessor's)."""
        if control is None:
            raise DependencyUnavailable("the capture route is not configured (AUTH_OPENID_CONFIG_URL, AUTH_AUDIENCE)")
        token = bearer_token(request.headers.get("Authorization"))
        principal = await asyncio.to_thread(control.validate, token)
        if not principal.is_application:
            raise Forbidden("only the lifecycle's application identity may ask")
        principal.require(LIFECYCLE_ROLE)
        state = recorder.capture_state(request.match_info["recording_id"])
        if state is None:
            raise NotFound("this recorder instance does not hold that recording")
        return web.json_response(state)

    def loopback_only(request: web.Request) -> None:
        # The peer address of the TCP connection, never a forwarded-for header.
        if not is_loopback(request.remote):
            raise Forbidden("admin routes answer only on the loopback interface")

    async def drain(request: web.Request) -> web.Response:
        loopback_only(request)
        recorder.drain(request.query.get("reason", "admin request"))
        return web.json_response({"draining": True, "active_calls": recorder.active_calls}, status=202)

    async def shutdown(request: web.Request) -> web.Response:
        # Windows services have no SIGTERM: the service wrapper asks for a graceful stop here.
        loopback_only(request)
        recorder.drain("shutdown requested", accept_grace=False)
        request.app["shutdown"].set()
        return web.json_response({"stopping": True, "active_calls": recorder.active_calls}, status=202)

    async def undrain(request: web.Request) -> web.Response:
        loopback_only(request)
        recorder.resume()
        return web.json_response({"draining": False, "active_calls": recorder.active_calls})

    async def calls(request: web.Request) -> web.Response:
        loopback_only(request)
        body: list[dict[str, Any]] = [
            {
                "call_id": session.call_id,
                "recording_id": session.recording_id,
                "state": session.state,
                "platform_state": session.platform_state,
                "frames_received": session.capture.frames_received,
                "frames_dropped": session.capture.frames_dropped,
                "frames_before_recording": session.capture.frames_before_recording,
                "capture_halted": session.capture.halted,
            }
            for session in recorder.sessions.values()
        ]
        return web.json_response({"calls": body, "draining": recorder.draining})

    async def stats(request: web.Request) -> web.Response:
        loopback_only(request)
        latencies = sorted(recorder.answer_latencies)
        return web.json_response(
            {
                "answered": len(latencies),
                "answering": recorder.answering,
                "rejected": recorder.rejected,
                "declined": recorder.declined,
                "answer_ms": _percentiles(latencies),
                "events_pending": recorder.publisher.pending,
                "spill_bytes": recorder.spill.used_bytes,
                "progress_failures": recorder.progress_failures,
                # connections opened to Graph since start-up (warm ones included): a storm should open none
                "graph_connections_opened": getattr(recorder.calls, "connections_opened", None),
            }
        )

    app.router.add_post("/api/calling", incoming)
    app.router.add_post("/api/calling/notification", notification)
    app.router.add_post("/api/calling/notification/{instance}", notification)
    app.router.add_get("/health", health)
    app.router.add_get("/health/live", live)
    app.router.add_get("/api/captures/{recording_id}", capture)
    app.router.add_post("/admin/drain", drain)
    app.router.add_delete("/admin/drain", undrain)
    app.router.add_post("/admin/shutdown", shutdown)
    app.router.add_get("/admin/calls", calls)
    app.router.add_get("/admin/stats", stats)
    return app


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _percentiles(sorted_seconds: list[float]) -> dict[str, float]:
    if not sorted_seconds:
        return {}

    def at(fraction: float) -> float:
        index = min(len(sorted_seconds) - 1, round(fraction * (len(sorted_seconds) - 1)))
        return round(sorted_seconds[index] * 1000, 2)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}
