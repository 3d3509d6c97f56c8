"""A meeting's chat beside its recording: the recording's call record names the meeting (`joinWebUrl`), whose
thread is the meeting chat; its messages come back with their offset from the recording's start, so the portal
lays them on the recording's timeline. The read is recorded like every other."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from verbatim.callrecords.store import CallRecordStore
from verbatim.chat.reads import READERS, ChatReader
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.chat import ChatDetail
from verbatim.platform.auth import Principal
from verbatim.platform.errors import NotFound
from verbatim.platform.times import parse_datetime
from verbatim.reconciliation.store import RecordingFinder


class TimedMessage(CamelContract):
    message_id: str
    offset_seconds: float | None = Field(default=None, description="from the recording's start; None without one")


class RecordingChat(CamelContract):
    recording_id: str
    recording_started_at: str | None = None
    recording_ended_at: str | None = None
    join_web_url: str | None = None
    chat: ChatDetail | None = None
    timeline: list[TimedMessage] = Field(default_factory=list)


@dataclass
class RecordingChats:
    recordings: RecordingFinder
    calls: CallRecordStore
    chats: ChatReader

    def for_recording(self, recording_id: str, principal: Principal, reason: str | None) -> RecordingChat:
        principal.require(*READERS)
        record = self.recordings.get(recording_id)
        if record is None:
            raise NotFound(f"no recording {recording_id}")
        self.chats.record_recording_read(principal, f"recording:{recording_id}", reason)
        facts = record.facts
        call = self.calls.get(facts.call_chain_id) if facts.call_chain_id else None
        join_url = call.join_web_url if call is not None else None
        start, end = facts.started_at, facts.ended_at
        chat = self.chats.meeting_chat(join_url, start, end, principal, reason)
        timeline = []
        if chat is not None:
            for message in chat.messages:
                created = parse_datetime(message.created)
                offset = (created - start).total_seconds() if created is not None and start is not None else None
                timeline.append(TimedMessage(message_id=message.message_id, offset_seconds=offset))
        return RecordingChat(
            recording_id=recording_id,
            recording_started_at=start.isoformat() if start else None,
            recording_ended_at=end.isoformat() if end else None,
            join_web_url=join_url,
            chat=chat,
            timeline=timeline,
        )
