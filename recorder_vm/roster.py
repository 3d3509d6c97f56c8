"""Who is in the call: the roster from participants notifications, and the facts of the incoming call
(observed user, direction, policy) in the shape of the recorder's event contracts.

Full rosters replace the previous one; delta rosters (when the answer asked for them) add, update and
remove single participants. `rosterSequenceNumber` orders updates: a stale one is ignored. The recorder
only reads the roster: it never removes anyone from the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from recorder_vm.notifications import Call, IdentitySet, Participant, ParticipantInfo
from verbatim.contracts.recorder import (
    CallDirection,
    CallParticipant,
    CallType,
    Identity,
    IdentityKind,
    ObservedUser,
    RecordingPolicyInfo,
)

_KINDS: dict[str, IdentityKind] = {
    "user": "user",
    "phone": "phone",
    "guest": "guest",
    "application": "application",
    "applicationInstance": "applicationInstance",
    "onPremises": "onPremises",
    "encrypted": "encrypted",
    "azureCommunicationServicesUser": "acsUser",
}


def identity_of(identity_set: IdentitySet | None) -> Identity:
    primary = identity_set.primary() if identity_set is not None else None
    if primary is None:
        return Identity(kind="unknown")
    kind, ref = primary
    extra = ref.model_extra or {}
    upn = ref.user_principal_name or extra.get("upn") or extra.get("userPrincipalName")
    return Identity(
        kind=_KINDS.get(kind, "unknown"),
        id=ref.id,
        display_name=ref.display_name,
        tenant_id=ref.tenant_id,
        upn=upn if isinstance(upn, str) else None,
    )


SENDING = ("sendonly", "sendreceive")  # mediaStream.direction values of a stream its participant sends


def _stream(participant: Participant, media_type: str) -> tuple[int | None, bool]:
    """The source id of the participant's first stream of `media_type` (`video`, `videoBasedScreenSharing`) and
    whether it is sending. Microsoft's PolicyRecordingBot subscribes to a video stream whose direction is
    sendReceive or sendOnly, and to the VBSS stream whose direction is sendOnly (CallHandler.cs)."""
    for stream in participant.media_streams or []:
        if (stream.media_type or "").lower() == media_type.lower() and stream.source_number is not None:
            return stream.source_number, (stream.direction or "").lower() in SENDING
    return None, False


def to_call_participant(participant: Participant, seen_at: datetime) -> CallParticipant:
    identity = identity_of(participant.info.identity if participant.info else None)
    sources = sorted(
        {
            number
            for stream in participant.media_streams or []
            if (stream.media_type or "audio").lower() == "audio" and (number := stream.source_number) is not None
        }
    )
    video, video_sending = _stream(participant, "video")
    screen, sharing = _stream(participant, "videoBasedScreenSharing")
    return CallParticipant(
        participant_id=participant.id,
        identity=identity,
        phone_number=identity.id if identity.kind == "phone" else None,
        is_recorder=identity.kind in ("application", "applicationInstance"),
        is_in_lobby=bool(participant.is_in_lobby),
        is_muted=bool(participant.is_muted),
        source_ids=sources,
        video_source_id=video,
        video_sending=video_sending,
        screen_share_source_id=screen,
        screen_sharing=sharing,
        first_seen_at=seen_at,
        removed_reason=participant.removed_state.reason if participant.removed_state else None,
    )


@dataclass(frozen=True)
class RosterChange:
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # lobby or media sources changed

    @property
    def any(self) -> bool:
        return bool(self.joined or self.left or self.changed)


class Roster:
    def __init__(self, *, delta: bool) -> None:
        self.delta = delta
        self._present: dict[str, CallParticipant] = {}
        self._sequence: dict[str, int] = {}
        self._full_sequence = -1
        self.sequence_number: int | None = None

    @property
    def participants(self) -> list[CallParticipant]:
        return list(self._present.values())

    def get(self, participant_id: str) -> CallParticipant | None:
        return self._present.get(participant_id)

    def apply(self, participants: list[Participant], now: datetime) -> RosterChange:
        if self.delta:
            return self._apply_delta(participants, now)
        return self._apply_full(participants, now)

    def _apply_full(self, participants: list[Participant], now: datetime) -> RosterChange:
        numbers = [p.roster_sequence_number for p in participants if p.roster_sequence_number is not None]
        if numbers and len(numbers) == len(participants):
            newest = max(numbers)
            if newest < self._full_sequence:
                return RosterChange()  # an older full roster arriving late
            self._full_sequence = newest
            self.sequence_number = newest
        present = {p.id: p for p in participants if p.removed_state is None}
        change = RosterChange(
            left=[pid for pid in self._present if pid not in present],
        )
        for pid in change.left:
            self._present.pop(pid)
        for participant in present.values():
            self._upsert(participant, now, change)
        return change

    def _apply_delta(self, participants: list[Participant], now: datetime) -> RosterChange:
        change = RosterChange()
        for participant in participants:
            number = participant.roster_sequence_number
            if number is not None:
                if number <= self._sequence.get(participant.id, -1):
                    continue  # stale
                self._sequence[participant.id] = number
                self.sequence_number = max(number, self.sequence_number or number)
            if participant.removed_state is not None:
                if self._present.pop(participant.id, None) is not None:
                    change.left.append(participant.id)
                continue
            self._upsert(participant, now, change)
        return change

    def _upsert(self, participant: Participant, now: datetime, change: RosterChange) -> None:
        previous = self._present.get(participant.id)
        seen_at = previous.first_seen_at if previous is not None and previous.first_seen_at else now
        current = to_call_participant(participant, seen_at)
        if previous is None:
            change.joined.append(participant.id)
        elif _media_of(previous) != _media_of(current):
            change.changed.append(participant.id)
        self._present[participant.id] = current


def _media_of(participant: CallParticipant) -> tuple[object, ...]:
    return (
        participant.is_in_lobby,
        participant.source_ids,
        participant.video_source_id,
        participant.video_sending,
        participant.screen_share_source_id,
        participant.screen_sharing,
    )


# --- facts of the incoming call ---------------------------------------------------------------------------


def observed_user(call: Call, roster: Roster | None = None) -> ObservedUser:
    """The recorded user, identified as Microsoft's PolicyRecordingBot sample does: the participant under
    observation is `incomingContext.observedParticipantId`; `source` describes it when
    `sourceParticipantId` equals that id (the documented example's `source.id` differs from both); the user
    is `onBehalfOf` when the call is delegated, otherwise that participant's identity. What the invitation
    leaves out of the participant's own identity (names, UPN) is filled in from the roster."""
    context = call.incoming_context
    observed_id = context.observed_participant_id if context else None
    source: ParticipantInfo | None = call.source
    on_behalf_of = context.on_behalf_of if context is not None else None
    if on_behalf_of is not None and on_behalf_of.primary() is not None:
        identity = identity_of(on_behalf_of)
        from_observed_leg = False
    else:
        from_observed_leg = True
        observed_source = source is not None and _source_is_observed(call)
        identity = identity_of(source.identity if source is not None and observed_source else None)
    known = roster.get(observed_id) if roster is not None and observed_id else None
    if known is not None and from_observed_leg:
        theirs = known.identity
        identity = Identity(
            kind=identity.kind if identity.kind != "unknown" else theirs.kind,
            id=identity.id or theirs.id,
            display_name=identity.display_name or theirs.display_name,
            tenant_id=identity.tenant_id or theirs.tenant_id,
            upn=identity.upn or theirs.upn,
        )
    return ObservedUser(
        id=identity.id,
        upn=identity.upn,
        display_name=identity.display_name,
        tenant_id=identity.tenant_id or call.tenant_id,
        participant_id=observed_id or (source.id if source else None),
        phone_number=identity.id if identity.kind == "phone" else None,
    )


def _source_is_observed(call: Call) -> bool:
    context = call.incoming_context
    observed_id = context.observed_participant_id if context else None
    if not observed_id:
        return True  # no observation context: the caller is all the invitation says
    assert context is not None
    if context.source_participant_id:
        return context.source_participant_id == observed_id
    return call.source is not None and call.source.id == observed_id


def not_policy_recording(call: Call) -> str | None:
    """Why an invitation is not a policy-based (compliance) recording call, or None when it is one.

    Microsoft's PolicyRecordingBot treats a call without `incomingContext.observedParticipantId` as "not
    associated with a participant (not a CR call)"; `applicationMetadata.botData.inviteReasons` is
    documented only by example, so it is not required here."""
    context = call.incoming_context
    if context is None:
        return "the invitation has no incomingContext"
    if not (context.observed_participant_id or "").strip():
        return "the invitation's incomingContext names no observedParticipantId"
    return None


def direction_of(call: Call) -> CallDirection:
    bot_data = call.application_metadata.bot_data if call.application_metadata else None
    method = (bot_data.user.participation_method if bot_data and bot_data.user else None) or ""
    return {"caller": "outbound", "callee": "inbound"}.get(method.lower(), "unknown")  # type: ignore[return-value]


def call_type_of(call: Call) -> CallType:
    bot_data = call.application_metadata.bot_data if call.application_metadata else None
    method = (bot_data.user.participation_method if bot_data and bot_data.user else None) or ""
    if method.lower() in ("caller", "callee"):
        return "peerToPeer"
    if call.chat_info is not None and call.chat_info.thread_id:
        return "groupCall"
    return "unknown"


def policy_of(call: Call) -> RecordingPolicyInfo:
    bot_data = call.application_metadata.bot_data if call.application_metadata else None
    if bot_data is None:
        return RecordingPolicyInfo()
    return RecordingPolicyInfo(
        identifier=bot_data.policy_identifier,
        invite_reasons=list(bot_data.invite_reasons or []),
        paired_recorders=[ref.participant_id or ref.id or "" for ref in bot_data.paired_recorders or []],
        other_recorders=[ref.participant_id or ref.id or "" for ref in bot_data.other_recorders or []],
    )


def phone_numbers(participants: list[CallParticipant], observed: ObservedUser) -> list[str]:
    numbers = {p.phone_number for p in participants if p.phone_number}
    if observed.phone_number:
        numbers.add(observed.phone_number)
    return sorted(numbers)
