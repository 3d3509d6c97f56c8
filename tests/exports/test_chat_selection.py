"""Which sealed chat bundles an export takes (verbatim.exports.chats), on the chat store's in-memory fake: for
recordings, the meeting chat their call record names and the chats their people were members of on the
recordings' days; for a legal hold, the bundles the hold covers; deleted bundles never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from verbatim.chat.retention import HoldScope
from verbatim.chat.sealing import bundle_id
from verbatim.chat.store import InMemoryChatRepository
from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.recorder import CallParticipant, Identity, ObservedUser
from verbatim.exports.chats import ChatSources, plan_for_hold, plan_for_recordings

TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"
UNA = "4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104"
ONE_TO_ONE = f"19:{TOM}_{TARA}@unq.gbl.spaces"
UNA_CHAT = f"19:{UNA}_{TARA}@unq.gbl.spaces"
MEETING = "19:meeting_NjQ3ZGQ2NWEtZTBiNS00ZDk0LWI5YTMtNTJiNjM1ZmJkNDEz@thread.v2"
# Microsoft's example shape of a meeting's joinWebUrl (the thread id URL-encoded in the path).
JOIN_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ3ZGQ2NWEtZTBiNS00ZDk0LWI5YTMtNTJiNjM1ZmJkNDEz"
    "%40thread.v2/0?context=%7b%22Tid%22%3a%22tenant%22%7d"
)
START = datetime(2030, 3, 4, 23, 50, tzinfo=UTC)


def bundle(repo: InMemoryChatRepository, chat_id: str, day: str, members: list[str], **extra: Any) -> str:
    the_id = bundle_id(chat_id, day, 1)
    repo.add_bundle(
        {"id": f"bundle:{day}:1", "chatId": chat_id, "docType": "bundle", "bundleId": the_id, "day": day, "part": 1}
        | {"members": members, **extra}
    )
    return the_id


def recording(user: str, others: list[str], start: datetime, minutes: int) -> RecordingRecord:
    facts = RecordingFacts(
        recording_id=f"r-{user[:4]}",
        call_id="c",
        call_chain_id="chain-1",
        observed_user=ObservedUser(id=user.upper()),  # ids compare case-insensitively
        recorder_instance="r",
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        participants=[
            CallParticipant(participant_id=f"p{n}", identity=Identity(kind="user", id=other))
            for n, other in enumerate(others)
        ],
    )
    return RecordingRecord(id=facts.recording_id, status="sealed", facts=facts)


def sources(repo: InMemoryChatRepository, scope: HoldScope | None = None) -> ChatSources:
    return ChatSources(repository=repo, reader=None, hold_scope=lambda _: scope)  # type: ignore[arg-type]


def test_recordings_take_their_meeting_chat_and_their_peoples_chats_on_the_days_they_span() -> None:
    repo = InMemoryChatRepository()
    meeting_before = bundle(repo, MEETING, "2030-03-01", [TOM, TARA])
    meeting_day = bundle(repo, MEETING, "2030-03-04", [TOM, TARA])
    on_day = bundle(repo, ONE_TO_ONE, "2030-03-04", [TOM, TARA])
    past_midnight = bundle(repo, ONE_TO_ONE, "2030-03-05", [TOM, TARA])  # the call ran past midnight UTC
    bundle(repo, ONE_TO_ONE, "2030-03-06", [TOM, TARA])  # another day: not taken
    bundle(repo, ONE_TO_ONE, "2030-03-03", [TOM, TARA], deleted=True)
    bundle(repo, UNA_CHAT, "2030-03-04", [UNA, TARA])  # Tara took part in the call, so her chats on its day go in
    nobody = "19:aaaa_bbbb@unq.gbl.spaces"
    bundle(repo, nobody, "2030-03-04", ["aaaa", "bbbb"])

    planned = plan_for_recordings(sources(repo), [recording(TOM, [TARA], START, 30)], lambda _: JOIN_URL)

    by_chat = {p.chat_id: p for p in planned}
    assert set(by_chat) == {MEETING, ONE_TO_ONE, UNA_CHAT}
    assert by_chat[MEETING].bundle_ids == [meeting_before, meeting_day]  # the whole meeting chat
    assert by_chat[ONE_TO_ONE].bundle_ids == [on_day, past_midnight]
    assert any("meeting chat of recording" in why for why in by_chat[MEETING].why)
    assert by_chat[UNA_CHAT].why == [f"member {TARA} on a recording's day"]


def test_a_hold_takes_the_bundles_it_covers_by_custodian_and_time_range() -> None:
    repo = InMemoryChatRepository()
    before = bundle(repo, ONE_TO_ONE, "2030-02-27", [TOM, TARA])
    inside = bundle(repo, ONE_TO_ONE, "2030-03-02", [TOM, TARA])
    bundle(repo, UNA_CHAT, "2030-03-02", [UNA, TARA])
    scope = HoldScope("hold-1", frozenset({TOM}), datetime(2030, 3, 1, tzinfo=UTC), None)

    planned = plan_for_hold(sources(repo, scope), "hold-1")

    assert [(p.chat_id, p.bundle_ids, p.why) for p in planned] == [(ONE_TO_ONE, [inside], ["under legal hold hold-1"])]
    assert before not in planned[0].bundle_ids
    assert plan_for_hold(sources(repo, None), "no-such-hold") == []
