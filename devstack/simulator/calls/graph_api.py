"""The Graph calls API a recorder drives on its own leg: get, answer, reject, redirect, keepAlive,
updateRecordingStatus (8506 on a call that is not a compliance-recording call), operations, DELETE and
participants, under ``/v1.0`` and ``/beta``, each checked against the caller's app roles and app id."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..media import MediaBlob
from ..odata import GraphError, bad_request, base_url, not_found, read_model
from .model import BotLeg, fmt
from .payloads import call_state, incoming_call, roster

if TYPE_CHECKING:
    from .service import Calls

CALL_ROLES = (
    "Calls.AccessMedia.All",
    "Calls.JoinGroupCall.All",
    "Calls.JoinGroupCallAsGuest.All",
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
)
RECORDING_STATUS_ROLES = ("Calls.AccessMedia.All", "Calls.JoinGroupCall.All")


class _GraphBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class MediaConfig(_GraphBody):
    odata_type: str = Field(alias="@odata.type")
    blob: str | None = None


class AnswerBody(_GraphBody):
    callback_uri: str | None = Field(default=None, alias="callbackUri", max_length=2048)
    accepted_modalities: list[str] = Field(alias="acceptedModalities", min_length=1)
    media_config: MediaConfig = Field(alias="mediaConfig")
    call_options: dict[str, Any] | None = Field(default=None, alias="callOptions")
    participant_capacity: int | None = Field(default=None, alias="participantCapacity", ge=0)


class RejectBody(_GraphBody):
    reason: str | None = None
    callback_uri: str | None = Field(default=None, alias="callbackUri")


class RedirectBody(_GraphBody):
    targets: list[dict[str, Any]] = Field(min_length=1)
    timeout: int | None = None
    callback_uri: str | None = Field(default=None, alias="callbackUri")


class RecordingStatusBody(_GraphBody):
    client_context: str | None = Field(default=None, alias="clientContext", max_length=256)
    status: Literal["recording", "notRecording", "failed"]


class GraphCallsApi:
    def __init__(self, calls: Calls) -> None:
        self.clock = calls.clock
        self.identity = calls.identity
        self.tenant = calls.tenant
        self.faults = calls.faults
        self.notifier = calls.notifier
        self.legs = calls.bot_legs
        self.invitations = calls.invitations
        self.media = calls.media

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for version in ("v1.0", "beta"):
            base = f"/{version}/communications/calls/{{cid}}"
            routes += [
                web.get(base, self.get_call),
                web.delete(base, self.delete_call),
                web.post(base + "/answer", self.answer),
                web.post(base + "/reject", self.reject),
                web.post(base + "/redirect", self.redirect),
                web.post(base + "/keepAlive", self.keep_alive),
                web.post(base + "/updateRecordingStatus", self.update_recording_status),
                web.get(base + "/participants", self.list_participants),
                web.delete(base + "/participants/{pid}", self.remove_participant),
                web.get(base + "/operations/{oid}", self.get_operation),
            ]
        return routes

    def _leg(self, request: web.Request, *roles: str) -> BotLeg:
        principal = self.identity.authorize(request, *(roles or CALL_ROLES))
        leg = self.legs.by_id.get(request.match_info["cid"])
        if leg is None or leg.state in ("timedOut", "cancelled", "failed", "rejected", "redirected", "terminated"):
            raise GraphError(404, "8507", "Call not found. The call may have ended or the answer window has passed.")
        if principal.app_id is None or principal.app_id.lower() != leg.app_id.lower():
            raise GraphError(403, "Forbidden", "The application is not the one invited to this call.")
        return leg

    async def get_call(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        data = incoming_call(leg, self.tenant.model.tenant.id)
        data["state"] = {"incoming": "incoming", "answered": "establishing", "established": "established"}.get(
            leg.state, leg.state
        )
        data["callbackUri"] = leg.callback_uri
        data["mediaState"] = {"audio": "active" if leg.session and leg.session.state == "connected" else "inactive"}
        data["resultInfo"] = leg.result
        data.pop("applicationMetadata", None)
        return web.json_response(data)

    async def answer(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        body = await read_model(request, AnswerBody, max_bytes=256 * 1024)
        if leg.state != "incoming":
            raise bad_request(f"The call cannot be answered in state '{leg.state}'.", "InvalidOperation")
        modalities = set(body.accepted_modalities)
        if not modalities <= {"audio", "video", "videoBasedScreenSharing"}:
            raise bad_request("acceptedModalities may contain audio, video and videoBasedScreenSharing.")
        media_type = body.media_config.odata_type.lstrip("#")
        blob = None
        if media_type == "microsoft.graph.appHostedMediaConfig":
            self.identity.authorize(request, "Calls.AccessMedia.All")
            if not body.media_config.blob:
                raise bad_request("appHostedMediaConfig needs a blob.")
            try:
                blob = MediaBlob.model_validate(json.loads(body.media_config.blob))
            except (json.JSONDecodeError, ValidationError, TypeError) as error:
                raise bad_request(
                    "The media configuration blob is not one the simulated media platform understands "
                    '(expected JSON {"platform": "verbatim-sim-media", "version": 1, "endpoint": "ws://...", '
                    f'"mediaSessionId": "..."}}): {str(error)[:200]}'
                ) from error
        elif media_type != "microsoft.graph.serviceHostedMediaConfig":
            raise bad_request(f"Unknown mediaConfig type '{body.media_config.odata_type}'.")
        callback = body.callback_uri or leg.instance.webhook
        if not callback.startswith(("http://", "https://")):
            raise bad_request("callbackUri must be an http(s) URL.")
        if leg.deadline is not None:
            leg.deadline.cancel()
        leg.state = "answered"
        leg.answered_at = self.clock.now()
        leg.answer_latency_ms = round((time.monotonic() - leg.invited_wall) * 1000, 1)
        leg.callback_uri = callback
        leg.blob = blob
        leg.media_config_type = media_type.rsplit(".", 1)[-1]
        leg.call_options = body.call_options or {}
        leg.delta_roster = bool(leg.call_options.get("isDeltaRosterEnabled"))
        leg.participant_capacity = body.participant_capacity
        leg.conv.event("answered", callId=leg.id, latencyMs=leg.answer_latency_ms)
        # the platform connects the bot at once: establishing, then established (swapped by a fault)
        leg.state = "established"
        leg.established_at = self.clock.now()
        if leg.group is not None and leg.group.status() == "present":
            leg.group.was_present = True
        steps = [
            ("updated", call_state(leg, "establishing"), "establishing"),
            ("updated", call_state(leg, "established"), "established"),
        ]
        if self.faults.take("establishedOutOfOrder") is not None:
            steps.reverse()
        self.notifier.send_ordered(leg, steps)
        self.legs.arm_keepalive(leg)
        self.clock.spawn(self._after_answer(leg))
        return web.Response(status=202)

    async def _after_answer(self, leg: BotLeg) -> None:
        conv = leg.conv
        await conv.evaluate()
        if conv.state == "established":
            await self.media.connect(leg)
            self.notifier.roster_changed(conv)

    async def reject(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        body = await read_model(request, RejectBody, max_bytes=16 * 1024)
        reason = (body.reason or "none").lower()
        if reason not in {"none", "busy", "forbidden"}:
            raise bad_request("reason must be none, busy or forbidden.")
        if leg.state != "incoming":
            raise bad_request(
                "Only an incoming call can be rejected; use DELETE to leave an answered call.", "InvalidOperation"
            )
        self.clock.spawn(self.legs.failed(leg, "rejected", f"rejected by the recorder (reason {reason})"))
        return web.Response(status=202)

    async def redirect(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        body = await read_model(request, RedirectBody, max_bytes=64 * 1024)
        if leg.state != "incoming":
            raise bad_request("Only an incoming call can be redirected.", "InvalidOperation")
        target_instance = None
        for target in body.targets:
            identity = target.get("identity") or {}
            app = identity.get("applicationInstance") or identity.get("application") or {}
            if isinstance(app, dict) and app.get("id"):
                target_instance = self.tenant.instance(str(app["id"]))
                if target_instance is not None:
                    break
        if leg.deadline is not None:
            leg.deadline.cancel()
        leg.state, leg.reason, leg.ended_at = "redirected", "redirected by the recorder", self.clock.now()
        if target_instance is not None and leg.group is not None:
            new = self.legs.new(leg.conv, target_instance, leg.group, leg.observed, leg.invitation)
            leg.group.legs.append(new)
            leg.conv.event("redirected", callId=leg.id, to=target_instance.id, newCallId=new.id)
            self.invitations.send(new)
        else:
            self.clock.spawn(leg.conv.evaluate())
        return web.Response(status=202)

    async def keep_alive(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        if leg.state not in ("answered", "established"):
            raise GraphError(404, "8507", "Call not found.")
        leg.keepalives += 1
        self.legs.arm_keepalive(leg)
        return web.Response(status=200)

    async def update_recording_status(self, request: web.Request) -> web.Response:
        leg = self._leg(request, *RECORDING_STATUS_ROLES)
        body = await read_model(request, RecordingStatusBody, max_bytes=16 * 1024)
        if not leg.compliance:
            raise GraphError(403, "8506", "API call not allowed for non-Compliance Recording call")
        if leg.state not in ("answered", "established"):
            raise GraphError(404, "8507", "Call not found.")
        operation_id = str(uuid.uuid4())
        operation = {
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
            "clientContext": body.client_context,
            "id": operation_id,
            "resultInfo": None,
            "status": "completed",
        }
        leg.operations[operation_id] = operation
        leg.recording_status = body.status
        leg.recording_history.append(
            {"status": body.status, "at": fmt(self.clock.now()), "clientContext": body.client_context}
        )
        leg.conv.event("recordingStatus", callId=leg.id, status=body.status)
        self.notifier.roster_changed(leg.conv)
        location = f"{base_url(request)}/v1.0/communications/calls/{leg.id}/operations/{operation_id}"
        return web.json_response(operation, status=200, headers={"Location": location})

    async def get_operation(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        operation = leg.operations.get(request.match_info["oid"])
        if operation is None:
            raise not_found("Operation not found.")
        return web.json_response(operation)

    async def delete_call(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        if leg.state == "incoming":
            raise bad_request("Reject an incoming call instead of deleting it.", "InvalidOperation")
        self.clock.spawn(
            self.legs.terminate(
                leg, (200, 7000, "The conversation has ended by bot."), reason="the recorder left (DELETE)"
            )
        )
        return web.Response(status=204)

    async def list_participants(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        return web.json_response(
            {
                "@odata.context": f"{base_url(request)}/v1.0/$metadata#communications/calls('{leg.id}')/participants",
                "value": roster(leg.conv, self.tenant.model.tenant.id),
            }
        )

    async def remove_participant(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        conv = leg.conv
        pid = request.match_info["pid"]
        party = next((p for p in conv.parties if p.participant_id == pid and p.state == "joined"), None)
        if party is None:
            raise not_found(f"Participant '{pid}' is not in the call.")
        conv.event("participantRemovedByRecorder", callId=leg.id, participant=party.key)
        self.clock.spawn(conv.leave(party, f"removed by recorder {leg.instance.id}", state="removed"))
        return web.Response(status=204)
