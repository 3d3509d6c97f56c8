"""What capture asks Graph about a chat besides its messages: the chat (type, topic, meeting link), its
members, and the bytes of a hosted content. `GraphChatDirectory` answers from Graph (``GET /chats/{id}``,
``/chats/{id}/members``, ``…/hostedContents/{id}/$value``); tests use `InMemoryChatDirectory`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from verbatim.graph import GraphClient, GraphNotFound

MAX_HOSTED_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ChatFacts:
    chat_id: str
    chat_type: str | None
    topic: str | None
    join_web_url: str | None
    members: tuple[tuple[str, str | None, str | None], ...]  # (user id lower-case, display name, tenant id)


@dataclass(frozen=True)
class HostedBytes:
    data: bytes
    content_type: str | None


class ChatDirectory(Protocol):
    def chat(self, tenant_id: str, chat_id: str) -> ChatFacts | None:
        """The chat and its members, or None when Graph does not know it."""
        ...

    def hosted_content(self, tenant_id: str, chat_id: str, message_id: str, hosted_id: str) -> HostedBytes | None: ...


def _path(chat_id: str) -> str:
    return f"/chats/{quote(chat_id, safe='')}"


class GraphChatDirectory:
    def __init__(self, graph_for: Callable[[str], GraphClient]) -> None:
        self._graph_for = graph_for

    def chat(self, tenant_id: str, chat_id: str) -> ChatFacts | None:
        graph = self._graph_for(tenant_id)
        try:
            chat = graph.get_json(_path(chat_id))
            members = list(graph.iter_items(f"{_path(chat_id)}/members"))
        except GraphNotFound:
            return None
        info = chat.get("onlineMeetingInfo") or {}
        people = tuple(
            (str(m["userId"]).lower(), m.get("displayName"), m.get("tenantId"))
            for m in members
            if isinstance(m, dict) and isinstance(m.get("userId"), str)
        )
        return ChatFacts(
            chat_id=chat_id,
            chat_type=chat.get("chatType"),
            topic=chat.get("topic"),
            join_web_url=info.get("joinWebUrl") if isinstance(info, dict) else None,
            members=people,
        )

    def hosted_content(self, tenant_id: str, chat_id: str, message_id: str, hosted_id: str) -> HostedBytes | None:
        graph = self._graph_for(tenant_id)
        path = (
            f"{_path(chat_id)}/messages/{quote(message_id, safe='')}/hostedContents/{quote(hosted_id, safe='')}/$value"
        )
        try:
            response = graph.request("GET", path)
        except GraphNotFound:
            return None
        data = response.content
        if len(data) > MAX_HOSTED_BYTES:
            raise ValueError(f"hosted content of {len(data)} bytes exceeds {MAX_HOSTED_BYTES}")
        return HostedBytes(data, response.headers.get("content-type"))


@dataclass
class InMemoryChatDirectory:
    chats: dict[str, ChatFacts] = field(default_factory=dict)
    hosted: dict[tuple[str, str, str], HostedBytes] = field(default_factory=dict)
    lookups: int = 0

    def chat(self, tenant_id: str, chat_id: str) -> ChatFacts | None:
        self.lookups += 1
        return self.chats.get(chat_id)

    def hosted_content(self, tenant_id: str, chat_id: str, message_id: str, hosted_id: str) -> HostedBytes | None:
        return self.hosted.get((chat_id, message_id, hosted_id))

    def add(self, chat_id: str, members: list[str], **facts: Any) -> None:
        self.chats[chat_id] = ChatFacts(
            chat_id=chat_id,
            chat_type=facts.get("chat_type", "group"),
            topic=facts.get("topic"),
            join_web_url=facts.get("join_web_url"),
            members=tuple((m.lower(), None, facts.get("tenant_id")) for m in members),
        )
