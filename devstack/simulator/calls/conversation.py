"""A scenario call and its conversations: who is in the call, the Required* rules that let parties in, block
or drop them, the media timeline's start and end, transfers, and the facts the call record is built from."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from ..callrecords import CallFacts, PartyFacts
from ..media import MediaTimeline
from ..odata import format_datetime
from ..video import VideoClip
from .model import AudioItem, BotLeg, Party, PartyState, RecorderGroup, fmt
from .specs import ScenarioSpec

if TYPE_CHECKING:
    from .service import Calls


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
    def has_video(self) -> bool:
        """Whether anyone in this conversation turns a camera on or shares a screen (its rosters list video)."""
        return bool(self.video_clips)

    @property
    def video_clips(self) -> list[Any]:
        return self.scenario.video if self.scenario.conversations[:1] == [self] else []

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
                    self.service.invitations.invite(self, party, None)
            for bot in self.spec.invite_bots:
                self.service.invitations.invite_plain(self, bot)
            await self.evaluate()
        else:
            for party in self.parties:
                party.state = "joining"
                self.service.invitations.invite(self, party, self.transferor if party is not self.parties[0] else None)
            for bot in self.spec.invite_bots:
                self.service.invitations.invite_plain(self, bot)
            await self.evaluate()

    async def join(self, party: Party) -> None:
        if self.ended or party.state != "idle":
            return
        party.state = "joining"
        self.event("joining", participant=party.key)
        self.service.invitations.invite(self, party, None)
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
                    await self.service.bot_legs.release_party(party, (200, 5000, "Removed from the conversation."))
                elif verdict == "ready":
                    self._joined(party)
                    self.service.notifier.roster_changed(self)
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
        self.timeline = self.service.media.build_timeline(self)
        if not self.meeting:
            for party in self.parties:
                self._joined(party)
        self.event("established")
        if not self.waiting_for_start:
            await self._start_media()

    async def _start_media(self) -> None:
        assert self.timeline is not None
        await asyncio.gather(*(self.service.media.connect(leg) for leg in self.legs if leg.state == "established"))
        self.service.media.schedule_faults(self)
        self._schedule_video()
        if self.spec.transfer is not None and self.transferor is None and self.scenario.conversations[0] is self:
            self.timeline.at(self.spec.transfer.at, self.transfer)
        self.service.pump.start(self.timeline)
        self.service.notifier.roster_changed(self)

    def _schedule_video(self) -> None:
        """Cameras going on and off and screens shared, at their places on the media timeline, each a roster update."""
        assert self.timeline is not None
        for party in self.parties:
            for attribute, intervals in (("camera_on", party.spec.camera), ("sharing", party.spec.screen_share)):
                for interval in intervals:
                    self.timeline.at(interval.at, partial(self._video_state, party, attribute, True))
                    if interval.until is not None:
                        self.timeline.at(interval.until, partial(self._video_state, party, attribute, False))

    async def _video_state(self, party: Party, attribute: str, on: bool) -> None:
        if self.ended or getattr(party, attribute) == on:
            return
        setattr(party, attribute, on)
        self.event(
            ("cameraOn" if on else "cameraOff")
            if attribute == "camera_on"
            else ("sharingStarted" if on else "sharingStopped"),
            participant=party.key,
        )
        if party.state == "joined":
            self.service.notifier.roster_changed(self)

    async def leave(self, party: Party, reason: str, state: PartyState = "left") -> None:
        if party.state not in ("joined", "joining") or self.ended:
            return
        party.state, party.reason, party.left_at = state, reason, self.now()
        if self.timeline is not None:
            self.timeline.audible.discard(party.source_id)
        self.event(state, participant=party.key, reason=reason)
        await self.service.bot_legs.release_party(party, (200, 5001, "The conversation has ended."))
        self.service.notifier.roster_changed(self)
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
        await self.service.placement.start_transfer_leg(self.scenario, by)

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
                await self.service.bot_legs.terminate(leg, result, evaluate=False)
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
                modalities=[
                    "audio",
                    *(["video"] if p.spec.camera else []),
                    *(["videoBasedScreenSharing"] if p.spec.screen_share else []),
                ],
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
            "startedAt": fmt(self.started_at),
            "establishedAt": fmt(self.established_at),
            "endedAt": fmt(self.ended_at),
            "mediaSeconds": self.timeline.seconds() if self.timeline else 0.0,
            "callRecordDueAt": fmt(self.record_due),
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
                    "joinedAt": fmt(p.joined_at),
                    "leftAt": fmt(p.left_at),
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
        self.video: list[VideoClip] = []  # cameras and screen shares, encoded when the call is placed
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
