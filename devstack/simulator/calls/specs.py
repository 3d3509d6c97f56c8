"""The body of ``POST /sim/calls`` (a scenario call: its participants, dialog, media and call record) and of
``POST /sim/calls/{id}/hangup``, validated before anything is placed."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..media import Pace
from ..tenant import E164

MAX_DURATION = 24 * 3600.0
CallType = Literal["peerToPeer", "pstnInbound", "pstnOutbound", "groupCall", "meeting"]


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


class VideoInterval(_Model):
    """A stretch of the call in which a participant's camera is on, or their screen is shared."""

    at: float = Field(ge=0, le=MAX_DURATION, description="seconds into the call")
    until: float | None = Field(
        default=None, gt=0, le=MAX_DURATION, description="seconds into the call; open: to the end"
    )

    @model_validator(mode="after")
    def _ordered(self) -> VideoInterval:
        if self.until is not None and self.until <= self.at:
            raise ValueError("until must be after at")
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
    on_behalf_of: str | None = Field(
        default=None,
        description="tenant user id or UPN this user acts for as a delegate (incomingContext.onBehalfOf)",
    )
    camera: list[VideoInterval] = Field(default_factory=list, max_length=50, description="when the camera is on")
    screen_share: list[VideoInterval] = Field(default_factory=list, max_length=50, description="when sharing a screen")

    @model_validator(mode="after")
    def _one_identity(self) -> ParticipantSpec:
        if sum(x is not None for x in (self.user, self.phone, self.guest)) != 1:
            raise ValueError("a participant is exactly one of user, phone or guest")
        if self.on_behalf_of is not None and self.user is None:
            raise ValueError("onBehalfOf: only a tenant user acts as a delegate")
        if self.phone is not None and not E164.match(self.phone):
            raise ValueError(f"phone {self.phone!r} is not E.164")
        if self.leave_at is not None and self.leave_at <= self.join_at:
            raise ValueError("leaveAt must be after joinAt")
        if self.phone is not None and (self.camera or self.screen_share):
            raise ValueError("a PSTN participant has no camera and shares no screen")
        for intervals in (self.camera, self.screen_share):
            ordered = sorted(intervals, key=lambda i: i.at)
            for before, after in itertools.pairwise(ordered):
                if before.until is None or before.until > after.at:
                    raise ValueError("camera and screenShare intervals of a participant must not overlap")
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
        if self.transfer is not None and any(p.camera or p.screen_share for p in self.participants):
            raise ValueError("video is simulated for calls without a transfer")
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
