"""Which video a call receives (recorder_vm.video_subscriptions): the screen share always, the policy user's camera
first, then recent dominant speakers, within the socket limit, keeping sockets that need not change (Microsoft's
PolicyRecordingBot CallHandler: subscribe while sockets are free, force a subscription on a dominant-speaker change,
free the least recently used socket)."""

from __future__ import annotations

from recorder_vm.video_subscriptions import SpeakerHistory, plan_video
from verbatim.contracts.recorder import CallParticipant, Identity


def person(pid: str, audio: int, *, camera: bool = True, sharing: bool = False, bot: bool = False) -> CallParticipant:
    return CallParticipant(
        participant_id=pid,
        identity=Identity(kind="applicationInstance" if bot else "user", id=pid),
        is_recorder=bot,
        source_ids=[audio],
        video_source_id=audio + 1,
        video_sending=camera,
        screen_share_source_id=audio + 10,
        screen_sharing=sharing,
    )


ROOM = [person("tom", 10), person("cora", 20), person("una", 30, sharing=True), person("bot", 40, bot=True)]


def test_the_policy_user_and_the_screen_share_come_first() -> None:
    plan = plan_video(ROOM, sockets=1, vbss=True, policy_participants={"tom"}, speakers=[20, 30], current={})
    assert plan.cameras == {0: 11}
    assert plan.screen == 40
    assert plan.owners[40] == "una" and plan.owners[11] == "tom"


def test_more_cameras_than_sockets_go_by_the_latest_dominant_speaker() -> None:
    first = plan_video(ROOM, sockets=2, vbss=False, policy_participants={"tom"}, speakers=[20], current={})
    assert first.cameras == {0: 11, 1: 21}
    speakers = SpeakerHistory()
    assert speakers.spoke(20) and speakers.spoke(30) and not speakers.spoke(30)
    then = plan_video(
        ROOM, sockets=2, vbss=False, policy_participants={"tom"}, speakers=speakers.sources, current=first.cameras
    )
    # Una spoke last: she takes the socket Cora had; Tom keeps his (no needless re-subscription).
    assert then.cameras == {0: 11, 1: 31}


def test_cameras_that_are_off_bots_and_the_lobby_are_not_received() -> None:
    room = [person("tom", 10, camera=False), person("cora", 20), person("bot", 40, bot=True)]
    lobby = person("guest", 50).model_copy(update={"is_in_lobby": True})
    plan = plan_video([*room, lobby], sockets=4, vbss=True, policy_participants={"tom"}, speakers=[], current={})
    assert plan.cameras == {0: 21}
    assert plan.screen is None


def test_a_sharer_keeps_the_vbss_socket_while_sharing() -> None:
    room = [person("tom", 10, sharing=True), person("cora", 20, sharing=True)]
    plan = plan_video(room, sockets=0, vbss=True, policy_participants=set(), speakers=[], current={}, current_screen=30)
    assert plan.screen == 30 and plan.cameras == {}
