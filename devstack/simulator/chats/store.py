"""The chat service's state and its three changes (post, edit, soft delete), each announced to listeners
(the change-notification publisher) with the message's new state. Times come from the simulated clock."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from ..clock import Clock
from ..odata import GraphError, bad_request, not_found
from ..tenant import TenantStore
from .model import (
    ChangeType,
    Chat,
    ChatType,
    HostedContent,
    Member,
    Message,
    MessageState,
    group_chat_id,
    hosted_content_id,
    one_on_one_id,
)
from .payloads import hosted_content_url

Listener = Callable[[Chat, Message, MessageState], None]
MAX_HOSTED_BYTES = 4 * 1024 * 1024
# Teams keeps a message a user deleted readable through the export API for 21 days
# (learn.microsoft.com/microsoftteams/export-teams-content, "User Deleted Messages").
DELETED_VISIBLE = timedelta(days=21)


class ChatStore:
    def __init__(self, clock: Clock, tenant: TenantStore, graph_base: str) -> None:
        self.clock = clock
        self.tenant = tenant
        self.graph_base = graph_base.rstrip("/")
        self.chats: dict[str, Chat] = {}
        self.listeners: list[Listener] = []

    # -- chats ----------------------------------------------------------------------------------------
    def _member(self, key: str, when: datetime) -> Member:
        user = self.tenant.user(key)
        if user is None:
            raise bad_request(f"No user '{key}' in the tenant.")
        return Member(user.id, user.display_name, user.mail or user.user_principal_name, when)

    def create_chat(
        self,
        chat_type: ChatType,
        members: Iterable[str],
        *,
        topic: str | None = None,
        thread_id: str | None = None,
        join_web_url: str | None = None,
        organizer: str | None = None,
    ) -> Chat:
        now = self.clock.now()
        people = [self._member(key, now) for key in members]
        ids = [m.user_id.lower() for m in people]
        if len(set(ids)) != len(ids):
            raise bad_request("A chat lists each member once.")
        if chat_type == "oneOnOne":
            if len(people) != 2:
                raise bad_request("A oneOnOne chat has exactly two members.")
            chat_id = one_on_one_id(people[0].user_id, people[1].user_id)
            if chat_id in self.chats:
                return self.chats[chat_id]  # Teams has one 1:1 chat per pair
        elif chat_type == "group":
            if len(people) < 2:
                raise bad_request("A group chat has at least two members.")
            chat_id = group_chat_id()
        else:
            if not thread_id or not thread_id.startswith("19:meeting_") or not thread_id.endswith("@thread.v2"):
                raise bad_request("A meeting chat needs the meeting's thread id (19:meeting_…@thread.v2).")
            if thread_id in self.chats:
                raise GraphError(409, "Conflict", f"The meeting chat '{thread_id}' already exists.")
            chat_id = thread_id
        organizer_id = None
        if chat_type == "meeting":
            organizer_id = self._member(organizer, now).user_id if organizer else people[0].user_id
        chat = Chat(
            id=chat_id,
            chat_type=chat_type,
            topic=topic if chat_type != "oneOnOne" else None,
            created=now,
            last_updated=now,
            members=people,
            join_web_url=join_web_url,
            organizer_id=organizer_id,
        )
        self.chats[chat_id] = chat
        return chat

    def chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise not_found(f"Chat '{chat_id}' was not found.", "NotFound")
        return chat

    def message(self, chat_id: str, message_id: str) -> Message:
        message = self.chat(chat_id).messages.get(message_id)
        if message is None:
            raise not_found(f"Message '{message_id}' was not found in chat '{chat_id}'.", "NotFound")
        return message

    # -- messages -------------------------------------------------------------------------------------
    def post(
        self,
        chat_id: str,
        sender: str,
        content: str,
        *,
        content_type: str = "text",
        hosted: Iterable[tuple[str, str]] = (),
        importance: str = "normal",
    ) -> Message:
        """Post a message; ``hosted`` is (contentType, base64 bytes) pairs referenced in the HTML body as
        ``{hostedContent:N}`` (N counting from 1), replaced by the hosted content's Graph URL."""
        chat = self.chat(chat_id)
        member = self._sender(chat, sender)
        if content_type not in ("text", "html"):
            raise bad_request("contentType is 'text' or 'html'.")
        if importance not in ("normal", "high", "urgent"):
            raise bad_request("importance is 'normal', 'high' or 'urgent'.")
        now = _ms(self.clock.now())
        message_id = chat.next_message_id(now)
        created = datetime.fromtimestamp(int(message_id) / 1000, UTC)
        contents = [self._hosted(kind, data) for kind, data in hosted]
        if contents and content_type != "html":
            raise bad_request("Hosted contents are referenced from an html body.")
        message = Message(
            id=message_id,
            chat_id=chat.id,
            sender_id=member.user_id,
            sender_name=member.display_name,
            created=created,
            hosted_contents=contents,
            importance=importance,  # type: ignore[arg-type]
        )
        for number, hosted_content in enumerate(contents, start=1):
            url = hosted_content_url(self.graph_base, chat.id, message_id, hosted_content.id)
            content = content.replace(f"{{hostedContent:{number}}}", url)
        chat.messages[message_id] = message
        self._change(chat, message, "created", created, content_type, content, None, None)
        return message

    def edit(self, chat_id: str, message_id: str, content: str, *, content_type: str | None = None) -> Message:
        chat = self.chat(chat_id)
        message = self.message(chat_id, message_id)
        if message.deleted is not None:
            raise bad_request("A deleted message cannot be edited.")
        now = self._after(message)
        kind = content_type or message.current.content_type
        if kind not in ("text", "html"):
            raise bad_request("contentType is 'text' or 'html'.")
        self._change(chat, message, "updated", now, kind, content, now, None)
        return message

    def delete(self, chat_id: str, message_id: str) -> Message:
        chat = self.chat(chat_id)
        message = self.message(chat_id, message_id)
        if message.deleted is not None:
            raise bad_request("The message is already deleted.")
        now = self._after(message)
        current = message.current
        self._change(chat, message, "deleted", now, current.content_type, current.content, current.last_edited, now)
        return message

    def hosted_content(self, chat_id: str, message_id: str, hosted_id: str) -> HostedContent:
        message = self.message(chat_id, message_id)
        for content in message.hosted_contents:
            if content.id == hosted_id:
                return content
        raise not_found(f"Hosted content '{hosted_id}' was not found.", "NotFound")

    # -- queries --------------------------------------------------------------------------------------
    def chats_of(self, user_id: str) -> list[Chat]:
        return [c for c in self.chats.values() if user_id.lower() in c.member_ids()]

    def visible(self, message: Message) -> bool:
        """Deleted messages stay readable for 21 days after their deletion."""
        deleted = message.deleted
        return deleted is None or self.clock.now() - deleted <= DELETED_VISIBLE

    # -- helpers --------------------------------------------------------------------------------------
    def _sender(self, chat: Chat, key: str) -> Member:
        user = self.tenant.user(key)
        if user is None:
            raise bad_request(f"No user '{key}' in the tenant.")
        for member in chat.members:
            if member.user_id.lower() == user.id.lower():
                return member
        raise GraphError(403, "Forbidden", f"'{key}' is not a member of chat '{chat.id}'.")

    def _hosted(self, content_type: str, data: str) -> HostedContent:
        if not content_type.startswith("image/"):
            raise bad_request("Hosted contents are images (contentType image/*).")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request("contentBytes is not base64.") from error
        if not raw or len(raw) > MAX_HOSTED_BYTES:
            raise bad_request(f"contentBytes must hold 1 to {MAX_HOSTED_BYTES} bytes.")
        return HostedContent(hosted_content_id(), content_type, raw)

    def _after(self, message: Message) -> datetime:
        """Now, but at least a millisecond after the message's last change (each state has its own etag)."""
        floor = message.last_modified + timedelta(milliseconds=1)
        return max(_ms(self.clock.now()), floor)

    def _change(
        self,
        chat: Chat,
        message: Message,
        change: ChangeType,
        at: datetime,
        content_type: str,
        content: str,
        last_edited: datetime | None,
        deleted: datetime | None,
    ) -> None:
        state = MessageState(change, at, content_type, content, last_edited, deleted)  # type: ignore[arg-type]
        message.states.append(state)
        for listener in list(self.listeners):
            listener(chat, message, state)


def _ms(when: datetime) -> datetime:
    """Chat timestamps have millisecond precision (ids and etags are Unix milliseconds)."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)
