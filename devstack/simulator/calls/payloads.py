"""The Graph payloads the platform sends a bot: the ``commsNotifications`` envelope, call-state updates,
the incoming-call notification of a compliance-recording invitation (with ``incomingContext`` and
``applicationMetadata``) and the participant roster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import BotLeg, Party

if TYPE_CHECKING:
    from .conversation import Conversation


def comms(change: str, path: str, data: Any) -> dict[str, Any]:
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


def call_state(leg: BotLeg, state: str) -> dict[str, Any]:
    leg.etag += 1
    return {
        "@odata.type": "#microsoft.graph.call",
        "@odata.id": f"/communications/calls/{leg.id}",
        "@odata.etag": f'W/"{leg.etag}"',
        "state": state,
    }


def user_identity(user_id: str) -> dict[str, Any]:
    """A user's identity set as Microsoft's policy-recording invitation shows it: the id alone (call: answer,
    Example 3); names come from the roster."""
    return {
        "@odata.type": "#microsoft.graph.identitySet",
        "user": {"@odata.type": "#microsoft.graph.identity", "id": user_id, "identityProvider": "AAD"},
    }


def incoming_call(leg: BotLeg, tid: str) -> dict[str, Any]:
    """The documented incoming-call notification of a policy-based recording invitation."""
    conv = leg.conv
    data: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.call",
        "state": "incoming",
        "direction": "incoming",
    }
    observed = leg.observed
    if observed is not None:
        data["source"] = {
            "@odata.type": "#microsoft.graph.participantInfo",
            "id": observed.source_leg_id,
            "identity": user_identity(observed.user.id) if observed.user else observed.identity(tid),
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
        if observed.principal is not None:
            context["onBehalfOf"] = user_identity(observed.principal.id)
        data["incomingContext"] = context
        data["applicationMetadata"] = {"botData": bot_data(leg, tid)}
    return data


def bot_data(leg: BotLeg, tid: str) -> dict[str, Any]:
    conv, observed, group = leg.conv, leg.observed, leg.group
    assert observed is not None and group is not None
    bot: dict[str, Any] = {
        "mediaHostedRegion": "EUWE",
        "user": {
            **_participation(observed),
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
                "tenantId": tid if other.user else None,
                **({"onBehalfOf": {"id": other.principal.id}} if other.principal is not None else {}),
                **_participation(other),
                "clientLocation": other.user.country if other.user and other.user.country else "US",
            }
    bot["pairedRecorders"] = [
        {"id": other.instance.id, "participantId": other.my_participant_id} for other in group.legs if other is not leg
    ]
    bot["otherRecorders"] = [
        {"id": other.instance.id, "participantId": other.my_participant_id}
        for g in observed.groups
        if g is not group
        for other in g.legs
    ]
    return bot


def _participation(party: Party) -> dict[str, str]:
    """`participationMethod`, only with the values Microsoft's example shows ("caller", "callee"): none is
    documented for meeting or group-call participants, so they get none."""
    return {"participationMethod": party.role} if party.role in ("caller", "callee") else {}


def _stream(media_type: str, label: str, source: int, direction: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.mediaStream",
        "mediaType": media_type,
        "label": label,
        "sourceId": str(source),
        "direction": direction,
        "serverMuted": False,
    }


def participant_json(who: Party | BotLeg, tid: str, *, video: bool = False) -> dict[str, Any]:
    """`video`: the call has video, so people's rosters list their main-video and applicationsharing-video streams
    too (receiveOnly while the camera is off / nothing is shared), as Teams clients' do."""
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
            _stream("audio", "main-audio", source, direction),
            *(
                [
                    _stream(
                        "video", "main-video", who.video_source_id, "sendReceive" if who.camera_on else "receiveOnly"
                    ),
                    _stream(
                        "videoBasedScreenSharing",
                        "applicationsharing-video",
                        who.screen_source_id,
                        "sendOnly" if who.sharing else "receiveOnly",
                    ),
                ]
                if video and isinstance(who, Party) and who.has_video
                else []
            ),
        ],
        "isMuted": False,
        "isInLobby": False,
        "metadata": None,
        "recordingInfo": recording,
        "removedState": None,
    }


def roster(conv: Conversation, tid: str) -> list[dict[str, Any]]:
    video = conv.has_video
    people = [participant_json(p, tid, video=video) for p in conv.parties if p.state == "joined"]
    bots = [participant_json(leg, tid) for leg in conv.legs if leg.state == "established"]
    return people + bots
