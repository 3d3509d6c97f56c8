"""The JSON Graph returns for chats, members, messages and hosted contents, shaped like Microsoft's
documented examples (chat-get, chat-list-members, chats-getallmessages, the decrypted chatMessage of
teams-changenotifications-chatmessage, chatmessagehostedcontent-get)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .model import Chat, Member, Message, MessageState, epoch_ms


def message_time(value: datetime) -> str:
    """``2021-05-25T20:12:14.864Z``: chat message timestamps carry milliseconds."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def message_path(chat_id: str, message_id: str) -> str:
    """The ``resource`` / ``@odata.id`` form change notifications use: ``chats('…')/messages('…')``."""
    return f"chats('{chat_id}')/messages('{message_id}')"


def hosted_content_url(graph_base: str, chat_id: str, message_id: str, hosted_id: str) -> str:
    return f"{graph_base}/v1.0/chats/{chat_id}/messages/{message_id}/hostedContents/{hosted_id}/$value"


def chat_message(message: Message, state: MessageState | None = None) -> dict[str, Any]:
    """A chatMessage as of ``state`` (default: now). A deleted message keeps its metadata; its body is empty."""
    state = state or message.current
    return {
        "id": message.id,
        "replyToId": None,
        "etag": str(epoch_ms(state.at)),
        "messageType": "message",
        "createdDateTime": message_time(message.created),
        "lastModifiedDateTime": message_time(state.at),
        "lastEditedDateTime": message_time(state.last_edited) if state.last_edited else None,
        "deletedDateTime": message_time(state.deleted) if state.deleted else None,
        "subject": None,
        "summary": None,
        "chatId": message.chat_id,
        "importance": message.importance,
        "locale": "en-us",
        "webUrl": None,
        "channelIdentity": None,
        "policyViolation": None,
        "eventDetail": None,
        "from": {
            "application": None,
            "device": None,
            "user": {"id": message.sender_id, "displayName": message.sender_name, "userIdentityType": "aadUser"},
        },
        "body": {"contentType": state.content_type, "content": "" if state.deleted else state.content},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }


def notification_resource(message: Message, state: MessageState) -> dict[str, Any]:
    """The decrypted ``data`` of a rich notification: the chatMessage plus the empty navigation collections
    the documented decrypted payload shows (``replies``, ``hostedContents``)."""
    body = chat_message(message, state)
    body["from"]["conversation"] = None
    del body["eventDetail"]  # absent from the documented decrypted payload
    body["replies"] = []
    body["hostedContents"] = []
    return body


def chat(chat: Chat, *, tenant_id: str, base: str) -> dict[str, Any]:
    info = None
    if chat.chat_type == "meeting":
        organizer = next((m for m in chat.members if m.user_id == chat.organizer_id), None)
        info = {
            "calendarEventId": None,
            "joinWebUrl": chat.join_web_url,
            "organizer": {
                "id": chat.organizer_id,
                "displayName": organizer.display_name if organizer else None,
                "userIdentityType": "aadUser",
            },
        }
    return {
        "@odata.context": f"{base}/v1.0/$metadata#chats/$entity",
        "id": chat.id,
        "topic": chat.topic,
        "createdDateTime": message_time(chat.created),
        "lastUpdatedDateTime": message_time(chat.last_updated),
        "chatType": chat.chat_type,
        "webUrl": f"https://teams.microsoft.com/l/chat/{quote(chat.id, safe='')}/0?tenantId={tenant_id}",
        "tenantId": tenant_id,
        "onlineMeetingInfo": info,
        "viewpoint": None,
    }


def member(chat: Chat, member: Member, *, tenant_id: str) -> dict[str, Any]:
    raw = f"MCMjMSMj{tenant_id}##{chat.id}##{member.user_id}"
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": base64.b64encode(raw.encode()).decode(),
        "roles": ["owner"],
        "displayName": member.display_name,
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
        "userId": member.user_id,
        "email": member.email,
        "tenantId": tenant_id,
    }
