"""A captured chat message version: what Graph delivered (a decrypted notification or an export-API item),
kept as the exact JSON text, with the few facts the capture needs read out of it and checked.

A *version* of a message is one state Graph reported: its identity is (chat id, message id, etag), the etag
being the time of the message's last change in Unix milliseconds (Graph: "Version number of the chat
message"); an edit or a deletion is a new version, a repeated delivery of the same etag is the same version.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MessageState = Literal["posted", "edited", "deleted"]
Source = Literal["notification", "export"]
MAX_RAW_CHARS = 4 * 1024 * 1024
_HOSTED = re.compile(r"/chats/([^/\"'\s]+)/messages/([^/\"'\s]+)/hostedContents/([A-Za-z0-9+/=_-]{1,1024})/\$value")
# Chat and message ids as Teams forms them; anything else is refused before it reaches a store or a URL.
CHAT_ID = re.compile(r"^19:[A-Za-z0-9_.@:=-]{1,250}$")
MESSAGE_ID = re.compile(r"^[0-9]{1,20}$")


class MessageRejected(ValueError):
    """The JSON is not a chat message version we can capture (the reason says why)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    content_type: str = Field(default="text", alias="contentType", max_length=20)
    content: str | None = None


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str | None = Field(default=None, max_length=128)
    display_name: str | None = Field(default=None, alias="displayName", max_length=512)


class _From(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user: _User | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str = Field(pattern=MESSAGE_ID.pattern)
    chat_id: str = Field(alias="chatId", pattern=CHAT_ID.pattern)
    etag: str | None = Field(default=None, max_length=40)
    message_type: str = Field(default="message", alias="messageType", max_length=40)
    created: datetime = Field(alias="createdDateTime")
    last_modified: datetime | None = Field(default=None, alias="lastModifiedDateTime")
    last_edited: datetime | None = Field(default=None, alias="lastEditedDateTime")
    deleted: datetime | None = Field(default=None, alias="deletedDateTime")
    sender: _From | None = Field(default=None, alias="from")
    body: _Body = Field(default_factory=_Body)


class MessageVersion(BaseModel):
    """One version of one message, with the exact JSON text Graph delivered."""

    model_config = ConfigDict(frozen=True)

    chat_id: str
    message_id: str
    etag: str
    state: MessageState
    message_type: str
    created: datetime
    last_modified: datetime
    sender_id: str | None
    sender_name: str | None
    content_type: str
    text: str
    hosted_content_ids: tuple[str, ...]
    raw: str
    raw_sha256: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.chat_id, self.message_id, self.etag)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def epoch_ms(value: datetime) -> int:
    return int(_utc(value).timestamp() * 1000)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p", "div", "li"):
            self.parts.append(" ")


def plain_text(content_type: str, content: str | None) -> str:
    """The words of a message body (HTML tags dropped), for search and display."""
    if not content:
        return ""
    if content_type.lower() != "html":
        return content
    parser = _Text()
    parser.feed(content)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def hosted_content_ids(chat_id: str, message_id: str, content: str | None) -> tuple[str, ...]:
    """The hosted contents (inline images) an HTML body references, in order, for this message only."""
    found: list[str] = []
    for match in _HOSTED.finditer(content or ""):
        if match.group(1) == chat_id and match.group(2) == message_id and match.group(3) not in found:
            found.append(match.group(3))
    return tuple(found)


def parse_version(raw: str | bytes) -> MessageVersion:
    """The version that ``raw`` (a chatMessage as JSON text) describes, or :class:`MessageRejected`."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if len(text) > MAX_RAW_CHARS:
        raise MessageRejected("the message is larger than we capture")
    try:
        data: Any = json.loads(text)
    except ValueError as error:
        raise MessageRejected("not JSON") from error
    if not isinstance(data, dict):
        raise MessageRejected("not a JSON object")
    try:
        message = _Message.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise MessageRejected(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from error
    modified = _utc(message.last_modified or message.deleted or message.last_edited or message.created)
    etag = message.etag if message.etag and message.etag.isdigit() else str(epoch_ms(modified))
    state: MessageState = "deleted" if message.deleted else "edited" if message.last_edited else "posted"
    user = message.sender.user if message.sender else None
    return MessageVersion(
        chat_id=message.chat_id,
        message_id=message.id,
        etag=etag,
        state=state,
        message_type=message.message_type,
        created=_utc(message.created),
        last_modified=modified,
        sender_id=user.id.lower() if user and user.id else None,
        sender_name=user.display_name if user else None,
        content_type=message.body.content_type,
        text=plain_text(message.body.content_type, message.body.content),
        hosted_content_ids=hosted_content_ids(message.chat_id, message.id, message.body.content),
        raw=text,
        raw_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
