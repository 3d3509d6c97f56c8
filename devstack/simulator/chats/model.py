"""What the simulated Teams chat service holds: chats (1:1, group, meeting), their members, and messages with
every state they went through (posted, edited, soft-deleted) and their hosted contents (inline images).

Identifiers follow the shapes Microsoft's examples show: a 1:1 chat is ``19:{userA}_{userB}@unq.gbl.spaces``,
a group chat ``19:{32 hex}@thread.v2``, a meeting chat the meeting's thread ``19:meeting_…@thread.v2``; a
message id is the creation time in Unix milliseconds (unique within its chat) and its ``etag`` the time of
its last modification in the same unit; a hosted content id is the base64 of
``id=x_{object},type=1,url=https://us-api.asm.skype.com/v1/objects/{object}/views/imgo`` as in the
documented Get chatMessageHostedContent example.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

ChatType = Literal["oneOnOne", "group", "meeting"]
ChangeType = Literal["created", "updated", "deleted"]


def epoch_ms(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp() * 1000)


def one_on_one_id(user_a: str, user_b: str) -> str:
    first, second = sorted((user_a.lower(), user_b.lower()))
    return f"19:{first}_{second}@unq.gbl.spaces"


def group_chat_id() -> str:
    return f"19:{uuid.uuid4().hex}@thread.v2"


def hosted_content_id() -> str:
    obj = f"0-wus-d9-{secrets.token_hex(16)}"
    raw = f"id=x_{obj},type=1,url=https://us-api.asm.skype.com/v1/objects/{obj}/views/imgo"
    return base64.b64encode(raw.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Member:
    user_id: str
    display_name: str
    email: str | None
    added_at: datetime


@dataclass
class HostedContent:
    id: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class MessageState:
    """One state of a message as Graph would have returned it at that moment."""

    change: ChangeType
    at: datetime
    content_type: Literal["text", "html"]
    content: str
    last_edited: datetime | None
    deleted: datetime | None


@dataclass
class Message:
    id: str
    chat_id: str
    sender_id: str
    sender_name: str
    created: datetime
    states: list[MessageState] = field(default_factory=list)
    hosted_contents: list[HostedContent] = field(default_factory=list)
    importance: Literal["normal", "high", "urgent"] = "normal"

    @property
    def current(self) -> MessageState:
        return self.states[-1]

    @property
    def last_modified(self) -> datetime:
        return self.current.at

    @property
    def deleted(self) -> datetime | None:
        return self.current.deleted


@dataclass
class Chat:
    id: str
    chat_type: ChatType
    topic: str | None
    created: datetime
    last_updated: datetime
    members: list[Member]
    join_web_url: str | None = None
    organizer_id: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)

    def member_ids(self) -> set[str]:
        return {m.user_id.lower() for m in self.members}

    def next_message_id(self, when: datetime) -> str:
        candidate = epoch_ms(when)
        while str(candidate) in self.messages:
            candidate += 1
        return str(candidate)
