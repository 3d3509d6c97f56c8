"""Placing a scenario call: checks it against the tenant, builds its parties (roles, source ids), renders
its speech and audio files, works out its duration, and starts its conversation (and, after a transfer,
the second one)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..odata import bad_request
from ..speech import DEFAULT_VOICES, SAMPLE_RATE, SpeechError
from ..video import render_video
from .conversation import Conversation, Scenario
from .model import AudioItem, Party
from .specs import ParticipantSpec, ScenarioSpec

if TYPE_CHECKING:
    from .service import Calls


class Placement:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.tenant = calls.tenant
        self.speech = calls.speech
        self.scenarios = calls.scenarios

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
            principal = None
            if p.on_behalf_of is not None:
                principal = self.tenant.user(p.on_behalf_of)
                if principal is None:
                    raise bad_request(f"participant {p.key}: onBehalfOf '{p.on_behalf_of}' is not in the tenant.")
                if user is not None and principal.id == user.id:
                    raise bad_request(f"participant {p.key}: a user cannot act on behalf of itself.")
            parties.append(
                Party(
                    spec=p,
                    kind=kind,
                    user=user,
                    display_name=p.display_name or name,
                    participant_id=str(uuid.uuid4()),
                    source_id=base_source + index,
                    role=role,
                    principal=principal,
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
        if any(p.camera or p.screen_share for p in spec.participants):
            # Encoding takes a moment (real H.264): off the event loop, so other calls' answers are not delayed.
            scenario.video = await asyncio.to_thread(render_video, spec, duration)
        conv = Conversation(self.calls, scenario, first, audio, duration)
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
            self.calls,
            scenario,
            parties,
            audio,
            self._duration(spec, audio, shift if spec.duration_seconds else 0.0),
            transferor,
        )
        scenario.conversations.append(conv)
        await conv.start()
