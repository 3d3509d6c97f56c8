"""Which video a call's media session receives: the screen share always, cameras within the socket limit.

The platform gives a bot a fixed number of receive-only video sockets (at most 10 main-video streams per media
session) and one VBSS socket; in meetings the bot must subscribe each socket to one participant's media source id
(`VideoSocket.Subscribe(VideoResolution, msi)`, the msi from the roster's `mediaStreams`). Microsoft's
PolicyRecordingBot subscribes to every participant whose video stream is sendReceive/sendOnly while sockets are
free, and on each dominant-speaker change forces a subscription to that speaker, freeing the least recently used
socket (CallHandler.cs: `SubscribeToParticipantVideo`, `OnDominantSpeakerChanged`, its LRU cache). Its VBSS socket
follows whoever's screen-sharing stream is sendOnly.

A compliance recorder adds one rule: the recorded (policy) users' cameras come first. So the order is: policy users,
then the most recent dominant speakers, then everyone else in roster order; the first `sockets` of those who send
video are received. A source that stays chosen keeps its socket (no needless re-subscription, which would cost a
key frame and a gap); a newly chosen one takes a socket that was freed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from verbatim.contracts.recorder import CallParticipant


@dataclass(frozen=True)
class VideoPlan:
    """What the sockets should receive: camera source per video socket, and the screen share's source."""

    cameras: dict[int, int] = field(default_factory=dict)  # socket id -> media source id
    screen: int | None = None
    owners: dict[int, str] = field(default_factory=dict)  # media source id -> participant id


def _senders(participants: Iterable[CallParticipant]) -> list[CallParticipant]:
    return [p for p in participants if not p.is_recorder and not p.is_in_lobby]


def plan_video(
    participants: list[CallParticipant],
    *,
    sockets: int,
    vbss: bool,
    policy_participants: set[str],
    speakers: list[int],
    current: dict[int, int],
    current_screen: int | None = None,
) -> VideoPlan:
    """The subscriptions to make now. `speakers`: audio source ids of recent dominant speakers, newest first;
    `current`: what each socket receives now."""
    people = _senders(participants)
    owners: dict[int, str] = {}
    for person in people:
        if person.video_source_id is not None:
            owners[person.video_source_id] = person.participant_id
        if person.screen_share_source_id is not None:
            owners[person.screen_share_source_id] = person.participant_id
    screen: int | None = None
    if vbss:
        sharing = [
            p.screen_share_source_id for p in people if p.screen_sharing and p.screen_share_source_id is not None
        ]
        # One VBSS socket: keep the current sharer while they share, else the first one sharing.
        screen = current_screen if current_screen in sharing else (sharing[0] if sharing else None)
    if sockets <= 0:
        return VideoPlan({}, screen, owners)
    by_audio = {source: p for p in people for source in p.source_ids}
    order: list[CallParticipant] = [p for p in people if p.participant_id in policy_participants]
    for source in speakers:
        speaker = by_audio.get(source)
        if speaker is not None and speaker not in order:
            order.append(speaker)
    order += [p for p in people if p not in order]
    chosen = [p.video_source_id for p in order if p.video_sending and p.video_source_id is not None][:sockets]
    cameras = {socket: source for socket, source in current.items() if source in chosen and 0 <= socket < sockets}
    free = [socket for socket in range(sockets) if socket not in cameras]
    for source in chosen:
        if source not in cameras.values():
            cameras[free.pop(0)] = source
    return VideoPlan(dict(sorted(cameras.items())), screen, owners)


@dataclass
class SpeakerHistory:
    """Recent dominant speakers (audio source ids), newest first, as the sample's LRU cache keeps them."""

    limit: int = 16
    sources: list[int] = field(default_factory=list)

    def spoke(self, source: int | None) -> bool:
        """Record a dominant-speaker change; True when the order changed."""
        if source is None or (self.sources and self.sources[0] == source):
            return False
        if source in self.sources:
            self.sources.remove(source)
        self.sources.insert(0, source)
        del self.sources[self.limit :]
        return True
