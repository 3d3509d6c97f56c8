"""The runtime state of simulated calls: the human parties, each recorder application's group of
invitations, and each invitation's bot leg (the bot's own call with its Graph call id)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..clock import TimerHandle
from ..media import MediaBlob, MediaSession
from ..odata import format_datetime
from ..speech import SAMPLE_RATE
from ..tenant import ApplicationInstance, CompliancePolicy, RecordingApplication, User
from .specs import ParticipantSpec

if TYPE_CHECKING:
    from .conversation import Conversation

VIDEO_SOURCE_BASE = 20_000
SCREEN_SOURCE_BASE = 30_000
LegState = Literal[
    "incoming", "answered", "established", "rejected", "timedOut", "failed", "redirected", "cancelled", "terminated"
]
PartyState = Literal["idle", "joining", "joined", "blocked", "dropped", "left", "removed"]


def fmt(value: datetime | None) -> str | None:
    return format_datetime(value) if value else None


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
    # The user this party acts for as a delegate (incomingContext.onBehalfOf), when it does.
    principal: User | None = None
    # The id an invitation's `source` carries for this party. Microsoft's documented policy-recording
    # invitation (call: answer, Example 3) shows a `source.id` that differs from the participant ids of its
    # `incomingContext`; what it stands for is not documented, so it is just another id here.
    source_leg_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    camera_on: bool = False  # the main-video stream is sending (sendReceive) rather than receiveOnly
    sharing: bool = False  # the videoBasedScreenSharing stream is sendOnly

    @property
    def key(self) -> str:
        return self.spec.key

    # The media source ids of a participant's video and screen-sharing streams; Microsoft's documented rosters give
    # each stream its own id (e.g. audio 12, main-video 13, applicationsharing-video 23).
    @property
    def video_source_id(self) -> int:
        return VIDEO_SOURCE_BASE + self.source_id

    @property
    def screen_source_id(self) -> int:
        return SCREEN_SOURCE_BASE + self.source_id

    @property
    def has_video(self) -> bool:
        return self.kind != "phone"

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
    backend: str | None = None  # the instance the load balancer gave the invitation to (None: no load balancer)
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
            "invitedAt": fmt(self.invited_at),
            "answeredAt": fmt(self.answered_at),
            "establishedAt": fmt(self.established_at),
            "endedAt": fmt(self.ended_at),
            "answerLatencyMs": self.answer_latency_ms,
            "callbackUri": self.callback_uri,
            "backend": self.backend,
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


@dataclass
class AudioItem:
    party: str
    at: float
    pcm: np.ndarray[Any, np.dtype[np.int16]]

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE
