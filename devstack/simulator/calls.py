"""Calls: scenario calls placed with ``POST /sim/calls``, the compliance-recording invitations they cause,
and the Graph calls API a recorder drives (answer, reject, redirect, updateRecordingStatus, keepAlive,
DELETE, participants).

Platform rules enforced here (graph-teams.md sections 1 and 4):

* every recorder of the observed user's effective policy is invited, twice with ConcurrentInvitationCount 2,
  and the paired application too; each invitation must be answered within the answer window (5 s, on the
  simulated clock) or it fails;
* an application counts as present once one of its invitations is established, and as failed when all
  were rejected, timed out or could not be delivered; ``RequiredBeforeCallEstablishment`` /
  ``RequiredBeforeMeetingJoin`` then block the user's call or meeting join;
* when every leg of a present application has gone (DELETE, keepAlive expiry 408/8537, media failure),
  ``RequiredDuringCall`` ends the user's call and ``RequiredDuringMeeting`` ejects the user;
* ``updateRecordingStatus`` on a call that is not a compliance-recording call fails with 8506.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import aiohttp
import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from .callrecords import CallFacts, CallRecords, PartyFacts
from .clock import Clock, TimerHandle
from .config import SimConfig
from .faults import Faults
from .identity import Identity
from .media import FRAME_MS, MediaBlob, MediaPump, MediaSession, MediaTimeline, Pace, Segment
from .odata import GraphError, bad_request, base_url, format_datetime, not_found, read_model
from .speech import DEFAULT_VOICES, SAMPLE_RATE, SpeechError, SpeechRenderer
from .tenant import E164, ApplicationInstance, CompliancePolicy, RecordingApplication, TenantStore, User

log = logging.getLogger("simulator.calls")

CALL_ROLES = (
    "Calls.AccessMedia.All",
    "Calls.JoinGroupCall.All",
    "Calls.JoinGroupCallAsGuest.All",
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
)
RECORDING_STATUS_ROLES = ("Calls.AccessMedia.All", "Calls.JoinGroupCall.All")
MAX_DURATION = 24 * 3600.0
MEDIA_CONNECT_FAILED = (
    "Server encountered connectivity error with Bot's media. Please check media connectivity between Bot and Microsoft."
)
CallType = Literal["peerToPeer", "pstnInbound", "pstnOutbound", "groupCall", "meeting"]
LegState = Literal[
    "incoming", "answered", "established", "rejected", "timedOut", "failed", "redirected", "cancelled", "terminated"
]
PartyState = Literal["idle", "joining", "joined", "blocked", "dropped", "left", "removed"]


# -- request models ------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SpeechItem(_Model):
    at: float | None = Field(default=None, ge=0, le=MAX_DURATION, description="seconds into the call")
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    audio_file: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _one_source(self) -> SpeechItem:
        if (self.text is None) == (self.audio_file is None):
            raise ValueError("give text or audioFile")
        return self


class ParticipantSpec(_Model):
    key: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    user: str | None = Field(default=None, description="tenant user id or UPN")
    phone: str | None = Field(default=None, description="E.164 number of an external PSTN party")
    guest: str | None = Field(default=None, max_length=256, description="display name of an anonymous guest")
    display_name: str | None = Field(default=None, max_length=256)
    voice: str | None = None
    speech: list[SpeechItem] = Field(default_factory=list, max_length=500)
    join_at: float = Field(default=0.0, ge=0, le=MAX_DURATION)
    leave_at: float | None = Field(default=None, ge=0, le=MAX_DURATION)
    client: Literal["windows", "macOS", "android", "iOS", "web"] = "windows"

    @model_validator(mode="after")
    def _one_identity(self) -> ParticipantSpec:
        if sum(x is not None for x in (self.user, self.phone, self.guest)) != 1:
            raise ValueError("a participant is exactly one of user, phone or guest")
        if self.phone is not None and not E164.match(self.phone):
            raise ValueError(f"phone {self.phone!r} is not E.164")
        if self.leave_at is not None and self.leave_at <= self.join_at:
            raise ValueError("leaveAt must be after joinAt")
        return self


class DialogLine(_Model):
    speaker: str
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    audio_file: str | None = Field(default=None, max_length=4096)
    pause_before: float = Field(default=0.3, ge=0, le=600)

    @model_validator(mode="after")
    def _one_source(self) -> DialogLine:
        if (self.text is None) == (self.audio_file is None):
            raise ValueError("give text or audioFile")
        return self


class TransferSpec(_Model):
    at: float = Field(gt=0, le=MAX_DURATION)
    by: str
    to: str


class CallRecordSpec(_Model):
    enabled: bool = True
    delay_seconds: float | None = Field(default=None, ge=0, le=30 * 86400)
    later_versions: list[float] = Field(default_factory=list, max_length=10, description="seconds after version 1")


class GapSpec(_Model):
    at: float = Field(ge=0, le=MAX_DURATION)
    duration_seconds: float = Field(gt=0, le=3600)


class ScenarioSpec(_Model):
    """Body of ``POST /sim/calls``."""

    type: CallType
    participants: list[ParticipantSpec] = Field(min_length=1, max_length=60)
    caller: str | None = None
    organizer: str | None = None
    dialog: list[DialogLine] = Field(default_factory=list, max_length=2000)
    duration_seconds: float | None = Field(default=None, gt=0, le=MAX_DURATION)
    until_hangup: bool = False
    media_pace: Pace = "realtime"
    unmixed: bool | None = None
    transfer: TransferSpec | None = None
    media_gaps: list[GapSpec] = Field(default_factory=list, max_length=100)
    call_record: CallRecordSpec = Field(default_factory=CallRecordSpec)
    subject: str | None = Field(default=None, max_length=256)
    invite_bots: list[str] = Field(
        default_factory=list, max_length=4, description="application instance ids invited as plain participants"
    )

    @model_validator(mode="after")
    def _shape(self) -> ScenarioSpec:
        keys = [p.key for p in self.participants]
        if len(set(keys)) != len(keys):
            raise ValueError("participant keys must be unique")
        known = set(keys)
        for ref in (self.caller, self.organizer):
            if ref is not None and ref not in known:
                raise ValueError(f"unknown participant {ref!r}")
        for line in self.dialog:
            if line.speaker not in known:
                raise ValueError(f"dialog speaker {line.speaker!r} is not a participant")
        two_party = self.type in ("peerToPeer", "pstnInbound", "pstnOutbound")
        extra = 1 if self.transfer is not None else 0
        if two_party and len(self.participants) != 2 + extra:
            raise ValueError(f"a {self.type} call has exactly 2 participants (3 with a transfer)")
        if self.transfer is not None:
            if not two_party:
                raise ValueError("transfers are simulated for two-party calls")
            for ref in (self.transfer.by, self.transfer.to):
                if ref not in known:
                    raise ValueError(f"transfer refers to unknown participant {ref!r}")
            if self.transfer.to == self.transfer.by:
                raise ValueError("a participant cannot transfer to itself")
            if self.transfer.to in keys[:2]:
                raise ValueError("the transfer target must be the third participant")
            if self.transfer.by not in keys[:2]:
                raise ValueError("the transferor must be one of the first two participants")
        if self.media_pace == "fast" and self.until_hangup:
            raise ValueError("fast media needs a finite call: drop untilHangup")
        return self


class HangupBody(_Model):
    participant: str | None = None


# -- Graph request bodies ------------------------------------------------------------------------------


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


# -- runtime state -------------------------------------------------------------------------------------


@dataclass
class Party:
    """A human participant of one conversation."""

    spec: ParticipantSpec
    kind: Literal["user", "phone", "guest"]
    user: User | None
    display_name: str
    participant_id: str
    source_id: int
    role: str
    state: PartyState = "idle"
    policy: CompliancePolicy | None = None
    groups: list[RecorderGroup] = field(default_factory=list)
    reason: str | None = None
    joined_at: datetime | None = None
    left_at: datetime | None = None
    guest_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def object_id(self) -> str:
        if self.user is not None:
            return self.user.id
        if self.spec.phone is not None:
            return self.spec.phone
        return self.guest_id

    def identity(self, tenant_id: str) -> dict[str, Any]:
        inner: dict[str, Any]
        if self.user is not None:
            inner = {
                "@odata.type": "#microsoft.graph.identity",
                "id": self.user.id,
                "displayName": self.display_name,
                "identityProvider": "AAD",
                "tenantId": tenant_id,
            }
            return {"@odata.type": "#microsoft.graph.identitySet", "user": inner}
        if self.spec.phone is not None:
            inner = {"@odata.type": "#microsoft.graph.identity", "id": self.spec.phone, "displayName": None}
            return {"@odata.type": "#microsoft.graph.identitySet", "phone": inner}
        inner = {"@odata.type": "#microsoft.graph.identity", "id": self.guest_id, "displayName": self.display_name}
        return {"@odata.type": "#microsoft.graph.identitySet", "guest": inner}


@dataclass
class RecorderGroup:
    """One recorder application of an observed user's policy with its invitations (x2 or paired)."""

    app: RecordingApplication
    policy: CompliancePolicy
    observed: Party
    legs: list[BotLeg] = field(default_factory=list)
    was_present: bool = False
    enforced: bool = False
    rerouted_from: Party | None = None

    def status(self) -> Literal["pending", "present", "failed", "left"]:
        if any(leg.state == "established" for leg in self.legs):
            return "present"
        if any(leg.state in ("incoming", "answered") for leg in self.legs):
            return "pending"
        return "left" if self.was_present else "failed"


@dataclass
class BotLeg:
    """One invitation of a recorder = the bot's own call, with the Graph call id the bot uses."""

    id: str
    conv: Conversation
    instance: ApplicationInstance
    group: RecorderGroup | None
    observed: Party | None
    invitation: int
    source_id: int
    compliance: bool = True
    state: LegState = "incoming"
    my_participant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invited_at: datetime | None = None
    answered_at: datetime | None = None
    established_at: datetime | None = None
    ended_at: datetime | None = None
    invited_wall: float = 0.0
    answer_latency_ms: float | None = None
    callback_uri: str | None = None
    blob: MediaBlob | None = None
    media_config_type: str | None = None
    call_options: dict[str, Any] = field(default_factory=dict)
    participant_capacity: int | None = None
    delta_roster: bool = False
    roster_seq: int = 0
    roster_sent: dict[str, str] = field(default_factory=dict)
    recording_status: str = "unknown"
    recording_history: list[dict[str, Any]] = field(default_factory=list)
    keepalives: int = 0
    keepalive_timer: TimerHandle | None = None
    deadline: TimerHandle | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None
    session: MediaSession | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    established_sent: asyncio.Event = field(default_factory=asyncio.Event)
    media_ready: asyncio.Event = field(default_factory=asyncio.Event)
    etag: int = 1
    transferor: Party | None = None

    @property
    def app_id(self) -> str:
        return self.instance.app_id

    def summary(self) -> dict[str, Any]:
        return {
            "callId": self.id,
            "callChainId": self.conv.call_chain_id,
            "applicationInstanceId": self.instance.id,
            "appId": self.instance.app_id,
            "observedParticipant": self.observed.key if self.observed else None,
            "observedUserId": self.observed.object_id if self.observed else None,
            "complianceRecording": self.compliance,
            "invitation": self.invitation,
            "requiredBefore": self.conv.required_before(self.group) if self.group else False,
            "requiredDuring": self.conv.required_during(self.group) if self.group else False,
            "state": self.state,
            "reason": self.reason,
            "invitedAt": _fmt(self.invited_at),
            "answeredAt": _fmt(self.answered_at),
            "establishedAt": _fmt(self.established_at),
            "endedAt": _fmt(self.ended_at),
            "answerLatencyMs": self.answer_latency_ms,
            "callbackUri": self.callback_uri,
            "mediaConfigType": self.media_config_type,
            "deltaRoster": self.delta_roster,
            "participantCapacity": self.participant_capacity,
            "recordingStatus": self.recording_status,
            "recordingStatusHistory": self.recording_history,
            "keepAlives": self.keepalives,
            "resultInfo": self.result,
            "media": self.session.summary() if self.session else None,
            "notifications": self.notifications,
        }


def _fmt(value: datetime | None) -> str | None:
    return format_datetime(value) if value else None


@dataclass
class AudioItem:
    party: str
    at: float
    pcm: np.ndarray[Any, np.dtype[np.int16]]

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


class Conversation:
    """One call leg of a scenario (two with a transfer): its parties, recorder legs, media and outcome."""

    def __init__(
        self,
        service: Calls,
        scenario: Scenario,
        parties: list[Party],
        audio: list[AudioItem],
        duration: float | None,
        transferor: Party | None = None,
    ) -> None:
        self.service = service
        self.scenario = scenario
        self.spec = scenario.spec
        self.meeting = self.spec.type in ("groupCall", "meeting")
        self.parties = parties
        self.audio = audio
        self.duration = duration
        self.transferor = transferor
        self.call_chain_id = str(uuid.uuid4())
        self.legs: list[BotLeg] = []
        self.state: Literal["setup", "established", "ended"] = "setup"
        self.outcome = "pending"
        self.end_reason: str | None = None
        self.timeline: MediaTimeline | None = None
        self.started_at = service.clock.now()
        self.established_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.record_due: datetime | None = None
        self.lock = asyncio.Lock()
        self.meeting_token = uuid.uuid4().hex
        self.waiting_for_start = False
        self.ending = False
        self.thread_id = f"19:meeting_{uuid.uuid4().hex[:32]}@thread.v2"

    # -- rules ----------------------------------------------------------------------------------------
    def required_before(self, group: RecorderGroup) -> bool:
        app = group.app
        return app.required_before_meeting_join if self.meeting else app.required_before_call_establishment

    def required_during(self, group: RecorderGroup) -> bool:
        app = group.app
        return app.required_during_meeting if self.meeting else app.required_during_call

    @property
    def ended(self) -> bool:
        return self.state == "ended" or self.ending

    def now(self) -> datetime:
        """Conversation time: the media timeline's position once media runs, else the clock."""
        if self.timeline is not None and self.state == "established":
            return self.timeline.start_time + timedelta(seconds=self.timeline.seconds())
        return self.service.clock.now()

    def event(self, what: str, **details: Any) -> None:
        self.scenario.events.append(
            {
                "at": format_datetime(self.service.clock.now()),
                "callChainId": self.call_chain_id,
                "event": what,
                **details,
            }
        )

    def party(self, key: str) -> Party | None:
        return next((p for p in self.parties if p.key == key), None)

    def readiness(self, party: Party) -> tuple[Literal["ready", "blocked", "waiting"], str | None]:
        required = [g for g in party.groups if self.required_before(g)]
        for group in required:
            if group.status() == "failed":
                reasons = "; ".join(f"{leg.state}: {leg.reason}" for leg in group.legs)
                flag = "RequiredBeforeMeetingJoin" if self.meeting else "RequiredBeforeCallEstablishment"
                return "blocked", f"recorder {group.app.id} failed ({reasons}) and {flag} is true"
        if all(g.status() == "present" for g in required):
            return "ready", None
        return "waiting", None

    # -- life -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.event("placed", type=self.spec.type, parties=[p.key for p in self.parties])
        if self.meeting:
            # media starts once everyone who joins at the start has been let in (or blocked)
            self.waiting_for_start = True
            await self.establish()
            organizer = self.scenario.organizer_key
            assert self.timeline is not None
            for party in self.parties:
                if party.spec.join_at > 0 and party.key != organizer:
                    self.timeline.at(party.spec.join_at, partial(self.join, party))
                if party.spec.leave_at is not None:
                    self.timeline.at(party.spec.leave_at, partial(self.leave, party, "left the meeting"))
            for party in self.parties:
                if party.spec.join_at == 0 or party.key == organizer:
                    party.state = "joining"
                    self.event("joining", participant=party.key)
                    self.service.invite(self, party, None)
            for bot in self.spec.invite_bots:
                self.service.invite_plain(self, bot)
            await self.evaluate()
        else:
            for party in self.parties:
                party.state = "joining"
                self.service.invite(self, party, self.transferor if party is not self.parties[0] else None)
            for bot in self.spec.invite_bots:
                self.service.invite_plain(self, bot)
            await self.evaluate()

    async def join(self, party: Party) -> None:
        if self.ended or party.state != "idle":
            return
        party.state = "joining"
        self.event("joining", participant=party.key)
        self.service.invite(self, party, None)
        await self.evaluate()

    async def evaluate(self) -> None:
        """Apply the Required* rules after any change of a recorder leg."""
        if self.state == "ended" or self.ending:
            return
        if not self.meeting and self.state == "setup":
            verdicts = {p.key: self.readiness(p) for p in self.parties}
            blocked = [(k, r) for k, (v, r) in verdicts.items() if v == "blocked"]
            if blocked:
                key, reason = blocked[0]
                party = self.party(key)
                if party is not None:
                    party.state, party.reason = "blocked", reason
                await self.end(
                    "blockedByPolicy", reason, (480, 10076, "Callee could not be reached."), setup_failed=True
                )
            elif all(v == "ready" for v, _ in verdicts.values()):
                await self.establish()
            return
        for party in self.parties:
            if party.state == "joining":
                verdict, reason = self.readiness(party)
                if verdict == "blocked":
                    party.state, party.reason = "blocked", reason
                    self.event("blocked", participant=party.key, reason=reason)
                    await self.service.release_party_legs(party, (200, 5000, "Removed from the conversation."))
                elif verdict == "ready":
                    self._joined(party)
                    self.service.roster_changed(self)
            elif party.state == "joined":
                for group in party.groups:
                    if group.status() == "left" and self.required_during(group) and not group.enforced:
                        group.enforced = True
                        flag = "RequiredDuringMeeting" if self.meeting else "RequiredDuringCall"
                        reason = f"every invitation of recorder {group.app.id} left the call and {flag} is true"
                        await self.drop(party, reason)
                        if self.ended:
                            return
                        break
        if self.waiting_for_start and not any(p.state == "joining" for p in self.parties):
            self.waiting_for_start = False
            if not any(p.state == "joined" for p in self.parties):
                await self.end(
                    "blockedByPolicy",
                    "nobody could join the meeting",
                    (200, 5013, "The conversation has ended as no one else has joined the group call."),
                )
                return
            await self._start_media()

    def _joined(self, party: Party) -> None:
        party.state = "joined"
        party.joined_at = self.now()
        if self.timeline is not None:
            self.timeline.audible.add(party.source_id)
        self.event("joined", participant=party.key)

    async def establish(self) -> None:
        if self.state != "setup":
            return
        self.state = "established"
        self.established_at = self.service.clock.now()
        if self.outcome == "pending":
            self.outcome = "established"
        self.timeline = self.service.build_timeline(self)
        if not self.meeting:
            for party in self.parties:
                self._joined(party)
        self.event("established")
        if not self.waiting_for_start:
            await self._start_media()

    async def _start_media(self) -> None:
        assert self.timeline is not None
        await asyncio.gather(*(self.service.connect_media(leg) for leg in self.legs if leg.state == "established"))
        self.service.schedule_media_faults(self)
        if self.spec.transfer is not None and self.transferor is None and self.scenario.conversations[0] is self:
            self.timeline.at(self.spec.transfer.at, self.transfer)
        self.service.pump.start(self.timeline)
        self.service.roster_changed(self)

    async def leave(self, party: Party, reason: str, state: PartyState = "left") -> None:
        if party.state not in ("joined", "joining") or self.ended:
            return
        party.state, party.reason, party.left_at = state, reason, self.now()
        if self.timeline is not None:
            self.timeline.audible.discard(party.source_id)
        self.event(state, participant=party.key, reason=reason)
        await self.service.release_party_legs(party, (200, 5001, "The conversation has ended."))
        self.service.roster_changed(self)
        if not self.meeting:
            await self.end("ended", f"{party.key} hung up", (200, 5001, "The conversation has ended."))
        elif not any(p.state == "joined" for p in self.parties):
            await self.end(
                "ended",
                "everyone left",
                (200, 5002, "The conversation has ended as all other participants have left the call."),
            )

    async def drop(self, party: Party, reason: str) -> None:
        """A Required* recorder left: the user's call ends (P2P) or the user is ejected (meeting)."""
        self.scenario.outcome_override = "userDropped"
        if self.meeting:
            await self.leave(party, reason, state="dropped")
        else:
            party.state, party.reason = "dropped", reason
            self.event("dropped", participant=party.key, reason=reason)
            await self.end("userDropped", reason, (200, 5000, "Removed from the conversation by another participant."))

    async def transfer(self) -> None:
        spec = self.spec.transfer
        assert spec is not None
        by = self.party(spec.by)
        if self.state != "established" or by is None:
            return
        self.event("transferred", by=spec.by, to=spec.to)
        await self.end(
            "transferred",
            f"{spec.by} transferred the call to {spec.to}",
            (200, 7015, "Call ended as the transfer completed successfully."),
        )
        await self.service.start_transfer_leg(self.scenario, by)

    async def timeline_end(self) -> None:
        await self.end("ended", "the scripted call ended", (200, 5001, "The conversation has ended."))

    async def end(
        self, outcome: str, reason: str | None, result: tuple[int, int, str], *, setup_failed: bool = False
    ) -> None:
        async with self.lock:
            if self.state == "ended" or self.ending:
                return
            self.ending = True
            was = self.state
            self.ended_at = self.now()
            if self.outcome in ("pending", "established"):
                self.outcome = outcome
            self.end_reason = reason
            for party in self.parties:
                if party.state == "joined":
                    party.state, party.left_at = "left", self.ended_at
            self.event("ended", outcome=outcome, reason=reason)
            # the record's delay counts from this moment on the clock, whatever the hang-up costs below
            if self.spec.call_record.enabled and (was == "established" or setup_failed):
                self.record_due = self.service.records.conversation_ended(self.facts(setup_failed, reason))
            for leg in self.legs:
                await self.service.terminate_leg(leg, result, evaluate=False)
            if self.timeline is not None:
                await self.timeline.stop()
            self.state = "ended"  # reported only once every leg has been told

    def facts(self, setup_failed: bool, reason: str | None) -> CallFacts:
        tenant = self.service.tenant.model.tenant
        end = self.ended_at or self.service.clock.now()
        start = self.established_at or self.started_at

        def pf(p: Party) -> PartyFacts:
            return PartyFacts(
                kind=p.kind,
                id=p.object_id,
                display_name=p.display_name if p.kind != "phone" else None,
                tenant_id=tenant.id if p.user else None,
                upn=p.user.user_principal_name if p.user else None,
                joined_at=p.joined_at or start,
                left_at=p.left_at or end,
                platform=p.spec.client,
                country=p.user.country if p.user else None,
                machine=f"{p.key.upper()}-PC",
                failure=p.reason if p.state == "blocked" else None,
            )

        present = [p for p in self.parties if p.joined_at is not None or setup_failed or p.state == "blocked"]
        if not present:
            present = self.parties[:1]
        organizer = self.party(self.scenario.organizer_key) or present[0]
        facts = CallFacts(
            record_id=self.call_chain_id,
            call_type="groupCall" if self.meeting else "peerToPeer",
            start=start,
            end=end,
            organizer=pf(organizer),
            parties=[pf(p) for p in present],
            join_web_url=(f"https://teams.microsoft.com/l/meetup-join/{self.thread_id}/0" if self.meeting else None),
            setup_failure=reason if setup_failed else None,
            delay_seconds=self.spec.call_record.delay_seconds,
            later_versions=list(self.spec.call_record.later_versions),
            trunk_fqdn=f"sbc1.{tenant.domain}",
        )
        phone = next((p for p in self.parties if p.kind == "phone"), None)
        user = next((p for p in self.parties if p.user is not None), None)
        if phone is not None and user is not None and user.user is not None:
            facts.pstn = "inbound" if self.parties[0] is phone else "outbound"
            facts.pstn_number = phone.spec.phone
            facts.pstn_user = pf(user)
            facts.user_number = user.user.phone_numbers[0] if user.user.phone_numbers else None
            facts.connectivity = "directRouting" if user.user.pstn_connectivity == "directRouting" else "callingPlan"
        return facts

    def summary(self) -> dict[str, Any]:
        return {
            "callChainId": self.call_chain_id,
            "callRecordId": self.call_chain_id,
            "state": self.state,
            "outcome": self.outcome,
            "endReason": self.end_reason,
            "startedAt": _fmt(self.started_at),
            "establishedAt": _fmt(self.established_at),
            "endedAt": _fmt(self.ended_at),
            "mediaSeconds": self.timeline.seconds() if self.timeline else 0.0,
            "callRecordDueAt": _fmt(self.record_due),
            "participants": [
                {
                    "key": p.key,
                    "kind": p.kind,
                    "id": p.object_id,
                    "displayName": p.display_name,
                    "participantId": p.participant_id,
                    "sourceId": p.source_id,
                    "role": p.role,
                    "state": p.state,
                    "reason": p.reason,
                    "policy": p.policy.name if p.policy else None,
                    "joinedAt": _fmt(p.joined_at),
                    "leftAt": _fmt(p.left_at),
                }
                for p in self.parties
            ],
        }


class Scenario:
    def __init__(self, spec: ScenarioSpec) -> None:
        self.id = str(uuid.uuid4())
        self.spec = spec
        self.conversations: list[Conversation] = []
        self.events: list[dict[str, Any]] = []
        self.audio: list[AudioItem] = []
        self.outcome_override: str | None = None
        first = spec.participants[0].key
        self.caller_key = spec.caller or first
        self.organizer_key = spec.organizer or spec.caller or first

    @property
    def state(self) -> str:
        if not self.conversations:
            return "setup"
        return self.conversations[-1].state

    @property
    def outcome(self) -> str:
        outcomes = [c.outcome for c in self.conversations]
        if "blockedByPolicy" in outcomes:
            return "blockedByPolicy"
        if self.outcome_override:
            return self.outcome_override
        return outcomes[-1] if outcomes else "pending"

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.spec.type,
            "state": self.state,
            "outcome": self.outcome,
            "mediaPace": self.spec.media_pace,
            "conversations": [c.summary() for c in self.conversations],
            "recorders": [leg.summary() for c in self.conversations for leg in c.legs],
            "events": self.events,
        }


# -- the service ---------------------------------------------------------------------------------------


class Calls:
    def __init__(
        self,
        clock: Clock,
        config: SimConfig,
        tenant: TenantStore,
        identity: Identity,
        faults: Faults,
        records: CallRecords,
        speech: SpeechRenderer,
        pump: MediaPump,
    ) -> None:
        self.clock = clock
        self.config = config
        self.tenant = tenant
        self.identity = identity
        self.faults = faults
        self.records = records
        self.speech = speech
        self.pump = pump
        self.scenarios: dict[str, Scenario] = {}
        self.legs: dict[str, BotLeg] = {}
        self.http: aiohttp.ClientSession | None = None
        self._bot_source = 1000

    def start(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    # -- placing scenario calls -----------------------------------------------------------------------
    def _parties(self, spec: ScenarioSpec, specs: list[ParticipantSpec], base_source: int = 1) -> list[Party]:
        parties = []
        for index, p in enumerate(specs):
            user = None
            kind: Literal["user", "phone", "guest"]
            if p.user is not None:
                user = self.tenant.user(p.user)
                if user is None:
                    raise bad_request(f"participant {p.key}: user '{p.user}' is not in the tenant.")
                kind, name = "user", user.display_name
            elif p.phone is not None:
                kind, name = "phone", p.display_name or p.phone
            else:
                kind, name = "guest", p.guest or "Guest"
            role = {
                "pstnInbound": "caller" if p.phone else "callee",
                "pstnOutbound": "callee" if p.phone else "caller",
            }.get(spec.type)
            if role is None:
                if spec.type in ("groupCall", "meeting"):
                    role = "organizer" if p.key == (spec.organizer or spec.participants[0].key) else "attendee"
                else:
                    role = "caller" if p.key == (spec.caller or spec.participants[0].key) else "callee"
            parties.append(
                Party(
                    spec=p,
                    kind=kind,
                    user=user,
                    display_name=p.display_name or name,
                    participant_id=str(uuid.uuid4()),
                    source_id=base_source + index,
                    role=role,
                )
            )
        return parties

    def _check_pstn(self, spec: ScenarioSpec) -> None:
        phones = [p for p in spec.participants[:2] if p.phone]
        users = [p for p in spec.participants[:2] if p.user]
        if spec.type in ("pstnInbound", "pstnOutbound"):
            if len(phones) != 1 or len(users) != 1:
                raise bad_request(f"a {spec.type} call is one tenant user and one external phone number.")
            user = self.tenant.user(users[0].user or "")
            if user is not None and user.pstn_connectivity == "none":
                raise bad_request(
                    f"user {user.user_principal_name} has no PSTN connectivity (set pstnConnectivity to "
                    "callingPlan or directRouting)."
                )
            first_is_phone = spec.participants[0].phone is not None
            if spec.type == "pstnInbound" and not first_is_phone:
                raise bad_request("in a pstnInbound call the first participant is the external caller (phone).")
            if spec.type == "pstnOutbound" and first_is_phone:
                raise bad_request("in a pstnOutbound call the first participant is the tenant user (caller).")
        elif spec.type == "peerToPeer" and phones:
            raise bad_request("use pstnInbound or pstnOutbound for calls with a phone number.")

    async def _render_audio(self, spec: ScenarioSpec, parties: list[Party]) -> list[AudioItem]:
        voices = {p.key: p.spec.voice or DEFAULT_VOICES[i % len(DEFAULT_VOICES)] for i, p in enumerate(parties)}
        items: list[AudioItem] = []

        async def pcm(text: str | None, audio_file: str | None, voice: str) -> np.ndarray[Any, np.dtype[np.int16]]:
            try:
                if text is not None:
                    return await self.speech.speech(text, voice)
                return await self.speech.audio_file(Path(audio_file or ""))
            except SpeechError as error:
                raise bad_request(f"audio: {error}") from error

        for party in parties:
            cursor = 0.5
            for item in party.spec.speech:
                samples = await pcm(item.text, item.audio_file, voices[party.key])
                at = item.at if item.at is not None else cursor
                items.append(AudioItem(party.key, at, samples))
                cursor = at + len(samples) / SAMPLE_RATE + 0.3
        cursor = 0.2
        for line in spec.dialog:
            samples = await pcm(line.text, line.audio_file, voices[line.speaker])
            at = cursor + line.pause_before
            items.append(AudioItem(line.speaker, at, samples))
            cursor = at + len(samples) / SAMPLE_RATE
        return items

    async def place(self, spec: ScenarioSpec) -> Scenario:
        self._check_pstn(spec)
        scenario = Scenario(spec)
        all_parties = self._parties(spec, spec.participants)
        for bot in spec.invite_bots:
            if self.tenant.instance(bot) is None:
                raise bad_request(f"inviteBots: application instance '{bot}' does not exist.")
        scenario.audio = await self._render_audio(spec, all_parties)
        if spec.transfer is not None:
            first = all_parties[:2]
            audio = [a for a in scenario.audio if a.at < spec.transfer.at and a.party in {p.key for p in first}]
            duration: float | None = None  # the transfer ends this leg
        else:
            first = all_parties
            audio = scenario.audio
            duration = self._duration(spec, audio)
        conv = Conversation(self, scenario, first, audio, duration)
        scenario.conversations.append(conv)
        self.scenarios[scenario.id] = scenario
        await conv.start()
        return scenario

    def _duration(self, spec: ScenarioSpec, audio: list[AudioItem], offset: float = 0.0) -> float | None:
        if spec.until_hangup:
            return None
        if spec.duration_seconds is not None:
            return max(0.02, spec.duration_seconds - offset)
        if audio:
            return max(a.at + a.duration for a in audio) + 1.0
        leaves = [p.leave_at for p in spec.participants if p.leave_at is not None]
        return max(leaves) + 0.5 if leaves and spec.type in ("groupCall", "meeting") else 10.0

    async def start_transfer_leg(self, scenario: Scenario, transferor: Party) -> None:
        spec = scenario.spec
        assert spec.transfer is not None
        keys = [p.key for p in spec.participants]
        other = next(k for k in keys[:2] if k != spec.transfer.by)
        specs = [next(p for p in spec.participants if p.key == k) for k in (other, spec.transfer.to)]
        parties = self._parties(spec, specs)
        parties[0].role, parties[1].role = "caller", "callee"
        shift = spec.transfer.at
        audio = [
            AudioItem(a.party, a.at - shift, a.pcm)
            for a in scenario.audio
            if a.at >= shift and a.party in {other, spec.transfer.to}
        ]
        conv = Conversation(
            self,
            scenario,
            parties,
            audio,
            self._duration(spec, audio, shift if spec.duration_seconds else 0.0),
            transferor,
        )
        scenario.conversations.append(conv)
        await conv.start()

    def build_timeline(self, conv: Conversation) -> MediaTimeline:
        keys = {p.key: p for p in conv.parties}
        segments = [
            Segment.build(keys[a.party].source_id, round(a.at * 1000 / FRAME_MS), a.pcm)
            for a in conv.audio
            if a.party in keys
        ]
        frames = None if conv.duration is None else max(1, round(conv.duration * 1000 / FRAME_MS))
        gaps = [
            (round(g.at * 1000 / FRAME_MS), round((g.at + g.duration_seconds) * 1000 / FRAME_MS))
            for g in conv.spec.media_gaps
        ]
        timeline = MediaTimeline(
            call_id=conv.call_chain_id,
            start_time=self.clock.now(),
            pace=conv.spec.media_pace,
            segments=segments,
            end_frame=frames,
            gaps=gaps,
        )
        timeline.on_end = conv.timeline_end
        return timeline

    def schedule_media_faults(self, conv: Conversation) -> None:
        assert conv.timeline is not None
        scenario_id = conv.scenario.id
        spec = self.faults.take("mediaStreamFailure", lambda s: s.call_id in (None, scenario_id))
        if spec is None:
            return

        async def fail() -> None:
            conv.event("mediaStreamFailure", reason=spec.reason)
            for leg in conv.legs:
                if leg.session is not None and leg.session.state == "connected":
                    await leg.session.fail(spec.reason)
                    await self.terminate_leg(leg, (410, 301005, "Media connectivity failure."), reason=spec.reason)

        conv.timeline.at(spec.after_seconds, fail)

    # -- invitations ----------------------------------------------------------------------------------
    def invite(self, conv: Conversation, party: Party, transferor: Party | None) -> None:
        if party.user is None:
            return
        groups: list[RecorderGroup] = []
        policy = self.tenant.recording_policy(party.user)
        party.policy = policy
        if policy is not None:
            groups += [RecorderGroup(app, policy, party) for app in policy.applications]
        if transferor is not None and transferor.user is not None:
            rerouted = self.tenant.recording_policy(transferor.user)
            if rerouted is not None and rerouted.record_rerouted_calls:
                mine = {g.app.id for g in groups}
                for app in rerouted.applications:
                    if app.id not in mine:
                        groups.append(RecorderGroup(app, rerouted, party, rerouted_from=transferor))
        party.groups = groups
        for group in groups:
            instances = [group.app.id] * group.app.concurrent_invitation_count + list(group.app.paired_applications)
            for number, instance_id in enumerate(instances, start=1):
                instance = self.tenant.instance(instance_id)
                if instance is None:
                    continue
                leg = self._new_leg(conv, instance, group, party, number)
                leg.transferor = group.rerouted_from
                group.legs.append(leg)
        for group in groups:
            for leg in group.legs:
                self._send_invitation(leg)

    def invite_plain(self, conv: Conversation, instance_id: str) -> None:
        instance = self.tenant.instance(instance_id)
        if instance is None:
            return
        leg = self._new_leg(conv, instance, None, None, 1)
        leg.compliance = False
        self._send_invitation(leg)

    def _new_leg(
        self,
        conv: Conversation,
        instance: ApplicationInstance,
        group: RecorderGroup | None,
        party: Party | None,
        n: int,
    ) -> BotLeg:
        self._bot_source += 1
        leg = BotLeg(str(uuid.uuid4()), conv, instance, group, party, n, self._bot_source)
        conv.legs.append(leg)
        self.legs[leg.id] = leg
        return leg

    def _send_invitation(self, leg: BotLeg) -> None:
        leg.invited_at = self.clock.now()
        leg.invited_wall = time.monotonic()
        leg.deadline = self.clock.call_later(
            self.config.answer_timeout_seconds, lambda: self._answer_window_over(leg), label=f"answer window {leg.id}"
        )
        fault = self.faults.take("recorderInvitation", lambda s: s.application_instance_id in (None, leg.instance.id))
        if fault is not None and fault.mode == "fail":
            self.clock.spawn(self._leg_failed(leg, "failed", "the platform could not deliver the invitation (fault)"))
            return
        if fault is not None:
            leg.notifications.append(
                {"kind": "incoming", "at": _fmt(self.clock.now()), "delivered": False, "error": "dropped (fault)"}
            )
            return
        self.clock.spawn(self._deliver_incoming(leg))

    async def _deliver_incoming(self, leg: BotLeg) -> None:
        payload = _comms("created", leg.id, self.incoming_call(leg))
        ok = await self._post(leg, leg.instance.webhook, payload, "incoming")
        if not ok and leg.state == "incoming":
            await self._leg_failed(
                leg, "failed", f"the incoming-call notification was not accepted: {leg.notifications[-1].get('error')}"
            )

    async def _answer_window_over(self, leg: BotLeg) -> None:
        if leg.state == "incoming":
            await self._leg_failed(
                leg, "timedOut", f"not answered within {self.config.answer_timeout_seconds:g} s (answer window)"
            )

    async def _leg_failed(self, leg: BotLeg, state: LegState, reason: str) -> None:
        if leg.state != "incoming":
            return
        leg.state, leg.reason, leg.ended_at = state, reason, self.clock.now()
        if leg.deadline is not None:
            leg.deadline.cancel()
        leg.conv.event("invitationFailed", callId=leg.id, state=state, reason=reason)
        await leg.conv.evaluate()

    async def release_party_legs(self, party: Party, result: tuple[int, int, str]) -> None:
        for group in party.groups:
            for leg in group.legs:
                await self.terminate_leg(leg, result, evaluate=False)

    async def terminate_leg(
        self, leg: BotLeg, result: tuple[int, int, str], *, evaluate: bool = True, reason: str | None = None
    ) -> None:
        if leg.state == "incoming":
            leg.state, leg.reason, leg.ended_at = (
                "cancelled",
                reason or "the call ended before the answer",
                self.clock.now(),
            )
            if leg.deadline is not None:
                leg.deadline.cancel()
            return
        if leg.state not in ("answered", "established"):
            return
        code, subcode, message = result
        leg.state, leg.ended_at = "terminated", self.clock.now()
        leg.reason = reason or message
        leg.result = {
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": code,
            "subcode": subcode,
            "message": message,
        }
        if leg.keepalive_timer is not None:
            leg.keepalive_timer.cancel()
        if leg.session is not None:
            await leg.session.end()
        leg.conv.event("recorderLeft", callId=leg.id, code=code, subcode=subcode, reason=leg.reason)
        if leg.callback_uri:
            state_data = self._call_state(leg, "terminating")
            terminated = self._call_state(leg, "terminated")
            terminated["resultInfo"] = leg.result
            self._send_ordered(leg, [("updated", state_data, "terminating"), ("deleted", terminated, "terminated")])
        self.roster_changed(leg.conv)
        if evaluate:
            await leg.conv.evaluate()

    # -- media ----------------------------------------------------------------------------------------
    async def connect_media(self, leg: BotLeg) -> None:
        """Connect the platform to the leg's media endpoint; concurrent callers wait for the first."""
        conv = leg.conv
        if leg.session is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.media_ready.wait(), timeout=15)
            return
        if leg.blob is None or conv.timeline is None or conv.state != "established":
            return
        try:
            await self._connect_media(leg)
        finally:
            leg.media_ready.set()

    async def _connect_media(self, leg: BotLeg) -> None:
        conv = leg.conv
        assert self.http is not None and leg.blob is not None and conv.timeline is not None
        unmixed = conv.spec.unmixed if conv.spec.unmixed is not None else leg.blob.receive_unmixed_meeting_audio

        async def lost(reason: str) -> None:
            await self.terminate_leg(leg, (410, 301005, "Media connectivity failure."), reason=reason)

        session = MediaSession(self.http, leg.blob, leg.id, unmixed, lost)
        leg.session = session
        if not conv.timeline.finished:
            # the leg receives the call from now on; frames made while the socket opens wait for it
            session.open()
            conv.timeline.attach(session)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leg.established_sent.wait(), timeout=5)
        try:
            await session.connect()
        except ConnectionError as error:
            if leg.state in ("answered", "established"):
                await self.terminate_leg(leg, (500, 1005, MEDIA_CONNECT_FAILED), reason=str(error))
            return
        if leg.state != "established" or conv.timeline.finished:
            await session.end()

    # -- notifications --------------------------------------------------------------------------------
    async def _post(self, leg: BotLeg, url: str, payload: dict[str, Any], kind: str) -> bool:
        assert self.http is not None
        tenant = self.tenant.model.tenant.id
        headers = {
            "Authorization": f"Bearer {self.identity.platform_token(leg.app_id, tenant)}",
            "Content-Type": "application/json",
            "User-Agent": "Microsoft-Skype/3.0,(Calling/1.0)",
            "Client-Request-Id": str(uuid.uuid4()),
            "Scenario-Id": str(uuid.uuid4()),
            "X-Microsoft-Skype-Chain-ID": leg.conv.call_chain_id,
            "X-Microsoft-Skype-Message-ID": str(uuid.uuid4()),
            "MS-Teams-Region": "EUWE",
        }
        entry: dict[str, Any] = {"kind": kind, "at": _fmt(self.clock.now()), "url": url}
        started = time.monotonic()
        try:
            async with self.http.post(
                url,
                data=json.dumps(payload),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.bot_notification_timeout_seconds),
            ) as response:
                await response.read()
                entry["status"] = response.status
                entry["delivered"] = 200 <= response.status < 300
                if not entry["delivered"]:
                    entry["error"] = f"HTTP {response.status}"
        except TimeoutError:
            entry.update(delivered=False, error="timeout")
        except aiohttp.ClientError as error:
            entry.update(delivered=False, error=error.__class__.__name__)
        entry["ms"] = round((time.monotonic() - started) * 1000, 1)
        leg.notifications.append(entry)
        return bool(entry["delivered"])

    def _send_ordered(self, leg: BotLeg, items: list[tuple[str, Any, str]], resource_suffix: str = "") -> None:
        """Send notifications to the leg's callbackUri in order (a per-leg lock keeps the order)."""
        url = leg.callback_uri
        if not url:
            return

        async def run() -> None:
            async with leg.lock:
                for change, data, kind in items:
                    path = f"{leg.id}{resource_suffix if kind == 'roster' else ''}"
                    await self._post(leg, url, _comms(change, path, data), kind)
                    if kind == "established":
                        leg.established_sent.set()

        self.clock.spawn(run())

    def _call_state(self, leg: BotLeg, state: str) -> dict[str, Any]:
        leg.etag += 1
        return {
            "@odata.type": "#microsoft.graph.call",
            "@odata.id": f"/communications/calls/{leg.id}",
            "@odata.etag": f'W/"{leg.etag}"',
            "state": state,
        }

    def incoming_call(self, leg: BotLeg) -> dict[str, Any]:
        """The documented incoming-call notification of a policy-based recording invitation."""
        conv = leg.conv
        tid = self.tenant.model.tenant.id
        data: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.call",
            "state": "incoming",
            "direction": "incoming",
        }
        observed = leg.observed
        if observed is not None:
            data["source"] = {
                "@odata.type": "#microsoft.graph.participantInfo",
                "id": observed.participant_id,
                "identity": observed.identity(tid),
                "endpointType": "default",
                "region": "euro",
                "countryCode": observed.user.country if observed.user else None,
            }
        else:
            first = conv.parties[0]
            data["source"] = {
                "@odata.type": "#microsoft.graph.participantInfo",
                "id": first.participant_id,
                "identity": first.identity(tid),
                "endpointType": "default",
                "region": "euro",
            }
        data["targets"] = [
            {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": {
                    "@odata.type": "#microsoft.graph.identitySet",
                    "applicationInstance": {
                        "@odata.type": "#microsoft.graph.identity",
                        "id": leg.instance.id,
                        "identityProvider": "AAD",
                    },
                },
                "endpointType": "default",
                "id": leg.my_participant_id,
                "region": None,
                "languageId": None,
            }
        ]
        data["meetingInfo"] = {"@odata.type": "#microsoft.graph.tokenMeetingInfo", "token": conv.meeting_token}
        if conv.meeting:
            data["chatInfo"] = {
                "@odata.type": "#microsoft.graph.chatInfo",
                "threadId": conv.thread_id,
                "messageId": "0",
            }
        data["tenantId"] = tid
        data["myParticipantId"] = leg.my_participant_id
        data["callChainId"] = conv.call_chain_id
        data["id"] = leg.id
        data["requestedModalities"] = ["audio"]
        if leg.compliance and observed is not None and leg.group is not None:
            context: dict[str, Any] = {
                "@odata.type": "#microsoft.graph.incomingContext",
                "sourceParticipantId": observed.participant_id,
                "observedParticipantId": observed.participant_id,
            }
            if leg.transferor is not None:
                context["transferor"] = leg.transferor.identity(tid)
            data["incomingContext"] = context
            data["applicationMetadata"] = {"botData": self._bot_data(leg)}
        return data

    def _bot_data(self, leg: BotLeg) -> dict[str, Any]:
        conv, observed, group = leg.conv, leg.observed, leg.group
        assert observed is not None and group is not None
        bot: dict[str, Any] = {
            "mediaHostedRegion": "EUWE",
            "user": {
                "participationMethod": observed.role if observed.role in ("caller", "callee") else "attendee",
                "clientLocation": observed.user.country if observed.user and observed.user.country else "US",
            },
            "inviteReasons": ["PolicyBasedRecording"],
            "policyIdentifier": group.policy.name,
        }
        if not conv.meeting:
            other = next((p for p in conv.parties if p is not observed), None)
            if other is not None:
                bot["otherSideUser"] = {
                    "id": other.object_id,
                    "participantId": other.participant_id,
                    "tenantId": self.tenant.model.tenant.id if other.user else None,
                    "participationMethod": other.role,
                    "clientLocation": other.user.country if other.user and other.user.country else "US",
                }
        bot["pairedRecorders"] = [
            {"id": other.instance.id, "participantId": other.my_participant_id}
            for other in group.legs
            if other is not leg
        ]
        bot["otherRecorders"] = [
            {"id": other.instance.id, "participantId": other.my_participant_id}
            for g in observed.groups
            if g is not group
            for other in g.legs
        ]
        return bot

    def _participant_json(self, conv: Conversation, who: Party | BotLeg) -> dict[str, Any]:
        tid = self.tenant.model.tenant.id
        if isinstance(who, Party):
            pid, identity, source, direction = who.participant_id, who.identity(tid), who.source_id, "sendReceive"
            recording = None
            country = who.user.country if who.user else None
        else:
            pid, source, direction = who.my_participant_id, who.source_id, "receiveOnly"
            identity = {
                "@odata.type": "#microsoft.graph.identitySet",
                "applicationInstance": {
                    "@odata.type": "#microsoft.graph.identity",
                    "id": who.instance.id,
                    "displayName": who.instance.display_name,
                    "identityProvider": "AAD",
                    "tenantId": tid,
                },
            }
            country = None
            recording = (
                {"initiator": identity, "recordingStatus": who.recording_status}
                if who.recording_status != "unknown"
                else None
            )
        return {
            "@odata.type": "#microsoft.graph.participant",
            "id": pid,
            "info": {
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": identity,
                "endpointType": "default",
                "id": pid,
                "region": "euro",
                "languageId": "en-US",
                "countryCode": country,
            },
            "mediaStreams": [
                {
                    "@odata.type": "#microsoft.graph.mediaStream",
                    "mediaType": "audio",
                    "label": "main-audio",
                    "sourceId": str(source),
                    "direction": direction,
                    "serverMuted": False,
                }
            ],
            "isMuted": False,
            "isInLobby": False,
            "metadata": None,
            "recordingInfo": recording,
            "removedState": None,
        }

    def roster(self, conv: Conversation) -> list[dict[str, Any]]:
        people = [self._participant_json(conv, p) for p in conv.parties if p.state == "joined"]
        bots = [self._participant_json(conv, leg) for leg in conv.legs if leg.state == "established"]
        return people + bots

    def roster_changed(self, conv: Conversation) -> None:
        if conv.state == "setup":
            return
        current = {p["id"]: p for p in self.roster(conv)}
        for leg in conv.legs:
            if leg.state != "established" or not leg.callback_uri:
                continue
            serialised = {pid: json.dumps(p, sort_keys=True) for pid, p in current.items()}
            if leg.delta_roster:
                changed = [current[pid] for pid, s in serialised.items() if leg.roster_sent.get(pid) != s]
                removed = [pid for pid in leg.roster_sent if pid not in current]
                if not changed and not removed:
                    continue
                items = []
                for participant in changed:
                    leg.roster_seq += 1
                    items.append({**participant, "rosterSequenceNumber": leg.roster_seq})
                for pid in removed:
                    leg.roster_seq += 1
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.participant",
                            "id": pid,
                            "removedState": {"reason": "Removed from the call"},
                            "rosterSequenceNumber": leg.roster_seq,
                        }
                    )
            else:
                if serialised == leg.roster_sent:
                    continue
                items = list(current.values())
            leg.roster_sent = serialised
            self._send_ordered(leg, [("updated", items, "roster")], "/participants")

    # -- Graph calls API ------------------------------------------------------------------------------
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
        routes += [
            web.post("/sim/calls", self.sim_place),
            web.get("/sim/calls", self.sim_list),
            web.get("/sim/calls/{sid}", self.sim_get),
            web.post("/sim/calls/{sid}/hangup", self.sim_hangup),
        ]
        return routes

    def _leg(self, request: web.Request, *roles: str) -> BotLeg:
        principal = self.identity.authorize(request, *(roles or CALL_ROLES))
        leg = self.legs.get(request.match_info["cid"])
        if leg is None or leg.state in ("timedOut", "cancelled", "failed", "rejected", "redirected", "terminated"):
            raise GraphError(404, "8507", "Call not found. The call may have ended or the answer window has passed.")
        if principal.app_id is None or principal.app_id.lower() != leg.app_id.lower():
            raise GraphError(403, "Forbidden", "The application is not the one invited to this call.")
        return leg

    async def get_call(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        data = self.incoming_call(leg)
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
            ("updated", self._call_state(leg, "establishing"), "establishing"),
            ("updated", self._call_state(leg, "established"), "established"),
        ]
        if self.faults.take("establishedOutOfOrder") is not None:
            steps.reverse()
        self._send_ordered(leg, steps)
        self._arm_keepalive(leg)
        self.clock.spawn(self._after_answer(leg))
        return web.Response(status=202)

    async def _after_answer(self, leg: BotLeg) -> None:
        conv = leg.conv
        await conv.evaluate()
        if conv.state == "established":
            await self.connect_media(leg)
            self.roster_changed(conv)

    def _arm_keepalive(self, leg: BotLeg) -> None:
        if leg.keepalive_timer is not None:
            leg.keepalive_timer.cancel()
        leg.keepalive_timer = self.clock.call_later(
            self.config.keep_alive_timeout_minutes * 60,
            lambda: self.terminate_leg(leg, (408, 8537, "Keep Alive timeout, cleaned up inactive call.")),
            label=f"keepAlive {leg.id}",
        )

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
        self.clock.spawn(self._leg_failed(leg, "rejected", f"rejected by the recorder (reason {reason})"))
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
            new = self._new_leg(leg.conv, target_instance, leg.group, leg.observed, leg.invitation)
            leg.group.legs.append(new)
            leg.conv.event("redirected", callId=leg.id, to=target_instance.id, newCallId=new.id)
            self._send_invitation(new)
        else:
            self.clock.spawn(leg.conv.evaluate())
        return web.Response(status=202)

    async def keep_alive(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        if leg.state not in ("answered", "established"):
            raise GraphError(404, "8507", "Call not found.")
        leg.keepalives += 1
        self._arm_keepalive(leg)
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
            {"status": body.status, "at": _fmt(self.clock.now()), "clientContext": body.client_context}
        )
        leg.conv.event("recordingStatus", callId=leg.id, status=body.status)
        self.roster_changed(leg.conv)
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
            self.terminate_leg(
                leg, (200, 7000, "The conversation has ended by bot."), reason="the recorder left (DELETE)"
            )
        )
        return web.Response(status=204)

    async def list_participants(self, request: web.Request) -> web.Response:
        leg = self._leg(request)
        return web.json_response(
            {
                "@odata.context": f"{base_url(request)}/v1.0/$metadata#communications/calls('{leg.id}')/participants",
                "value": self.roster(leg.conv),
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

    # -- /sim/calls -----------------------------------------------------------------------------------
    async def sim_place(self, request: web.Request) -> web.Response:
        spec = await read_model(request, ScenarioSpec, max_bytes=1024 * 1024)
        scenario = await self.place(spec)
        await asyncio.sleep(0)
        return web.json_response(scenario.dump(), status=201, headers={"Location": f"/sim/calls/{scenario.id}"})

    async def sim_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "value": [
                    {"id": s.id, "type": s.spec.type, "state": s.state, "outcome": s.outcome}
                    for s in self.scenarios.values()
                ]
            }
        )

    def _scenario(self, request: web.Request) -> Scenario:
        scenario = self.scenarios.get(request.match_info["sid"])
        if scenario is None:
            raise not_found(f"No simulated call '{request.match_info['sid']}'.")
        return scenario

    async def sim_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._scenario(request).dump())

    async def sim_hangup(self, request: web.Request) -> web.Response:
        scenario = self._scenario(request)
        body = HangupBody()
        if request.can_read_body:
            body = await read_model(request, HangupBody, max_bytes=4096)
        conv = scenario.conversations[-1]
        if conv.ended:
            raise GraphError(409, "Conflict", "The call has already ended.")
        if body.participant is not None:
            party = conv.party(body.participant)
            if party is None:
                raise bad_request(f"Participant '{body.participant}' is not in the current call.")
            await conv.leave(party, "hung up (/sim)")
        else:
            await conv.end("ended", "hung up (/sim)", (200, 5001, "The conversation has ended."))
        return web.json_response(scenario.dump())


def _comms(change: str, path: str, data: Any) -> dict[str, Any]:
    resource = f"/communications/calls/{path}"
    return {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": change,
                "resource": f"/app/calls/{path}",
                "resourceUrl": resource,
                "resourceData": data,
            }
        ],
    }
