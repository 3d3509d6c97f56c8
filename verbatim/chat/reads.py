"""The compliance API's chat reads: chats by participant and time, one chat with every message's history
(each version, edits and deletions, and the bundle that sealed it), a meeting's chat on its recording's
timeline, and search over captured text. Every read is recorded (ledger `accessed` entry and audit record)
before anything is returned; a read that cannot be recorded is refused.

Search has two modes (docs/chat.md): `terms` — every query word must be a whole word of the message, served
from the versions' term arrays (indexed); `substring` — the lower-cased query anywhere in the lower-cased text,
a scan of the window's versions, so its window is limited to `MAX_SUBSTRING_DAYS`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from verbatim.chat.meetings import thread_id_from_join_url
from verbatim.chat.sealing import chat_subject
from verbatim.chat.store import ChatRepository
from verbatim.chat.terms import normalise, query_terms
from verbatim.contracts.chat import (
    ChatDetail,
    ChatMessageView,
    ChatPage,
    ChatSearchHit,
    ChatSearchPage,
    ChatSummary,
    ChatVersionView,
)
from verbatim.ledger.access import AccessLog
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, Principal
from verbatim.platform.errors import InvalidInput, NotFound
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

READERS = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
MAX_WINDOW_DAYS = 366
MAX_SUBSTRING_DAYS = 31
MIN_SUBSTRING = 3
MAX_QUERY = 200


@dataclass(frozen=True)
class Window:
    start: str
    end: str


def window(params: Mapping[str, str], *, default_days: int = 30, max_days: int = MAX_WINDOW_DAYS) -> Window:
    end = _instant(params.get("to")) or utcnow()
    start = _instant(params.get("from")) or end - timedelta(days=default_days)
    if end <= start:
        raise InvalidInput("`to` must be after `from`")
    if end - start > timedelta(days=max_days):
        raise InvalidInput(f"the window is longer than {max_days} days")
    return Window(format_datetime(start), format_datetime(end))


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    parsed = parse_datetime(f"{text}T00:00:00Z" if len(text) == 10 else text)
    if parsed is None:
        raise InvalidInput(f"{value!r} is not an ISO-8601 date or date-time")
    return parsed


def _limit(params: Mapping[str, str], default: int = 50) -> int:
    raw = params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise InvalidInput("`limit` must be between 1 and 200")
    return int(raw)


def _user(params: Mapping[str, str]) -> str | None:
    value = params.get("participant")
    if value is None:
        return None
    value = value.strip().lower()
    if not value or len(value) > 128:
        raise InvalidInput("`participant` must be a user object id")
    return value


def summary(doc: Mapping[str, Any]) -> ChatSummary:
    return ChatSummary(
        chat_id=doc["chatId"],
        chat_type=doc.get("chatType"),
        topic=doc.get("topic"),
        members=list(doc.get("members", [])),
        member_names=list(doc.get("memberNames", [])),
        policy_users=list(doc.get("policyUsers", [])),
        thread_id=doc.get("threadId"),
        join_web_url=doc.get("joinWebUrl"),
        first_message_at=doc.get("firstMessageAt"),
        last_message_at=doc.get("lastMessageAt"),
        messages=int(doc.get("messages", 0)),
        versions=int(doc.get("versions", 0)),
    )


def messages_of(
    versions: list[dict[str, Any]], start: str | None = None, end: str | None = None
) -> list[ChatMessageView]:
    """Versions grouped per message (oldest message first), each message's versions oldest first."""
    grouped: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for version in sorted(versions, key=lambda v: (v["created"], v["messageId"], v["lastModified"], v["etag"])):
        grouped.setdefault(version["messageId"], []).append(version)
    out = []
    for message_id, items in grouped.items():
        first = items[0]
        if start is not None and end is not None and not (start <= first["created"] < end):
            continue
        out.append(
            ChatMessageView(
                message_id=message_id,
                sender_id=first.get("senderId"),
                sender_name=first.get("senderName"),
                created=first["created"],
                state=items[-1]["state"],
                versions=[
                    ChatVersionView(
                        etag=v["etag"],
                        state=v["state"],
                        last_modified=v["lastModified"],
                        captured_at=v["capturedAt"],
                        source=v["source"],
                        content_type=v.get("contentType", "text"),
                        text=v.get("text", ""),
                        hosted_contents=[h["sha256"] for h in v.get("hostedContents", []) if h.get("sha256")],
                        sealed_in=v.get("sealedIn"),
                    )
                    for v in items
                ],
            )
        )
    return out


class ChatReader:
    def __init__(self, repository: ChatRepository, access: AccessLog) -> None:
        self._repo = repository
        self._access = access

    def list(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> ChatPage:
        principal.require(*READERS)
        span, user, limit = window(params), _user(params), _limit(params)
        items, continuation = self._repo.chats_of(user, span.start, span.end, params.get("continuation"), limit)
        self._access.record(
            principal,
            "chat.search",
            "chats:search",
            reason,
            {"participant": user, "from": span.start, "to": span.end, "results": [d["chatId"] for d in items]},
        )
        return ChatPage(items=[summary(d) for d in items], continuation=continuation)

    def detail(self, chat_id: str, principal: Principal, reason: str | None) -> ChatDetail:
        principal.require(*READERS)
        self._access.record(principal, "chat.read", chat_subject(chat_id), reason)
        chat = self._repo.get_chat(chat_id)
        if chat is None:
            raise NotFound(f"no captured chat {chat_id}")
        return ChatDetail(
            chat=summary(chat),
            messages=messages_of(self._repo.versions(chat_id)),
            bundles=[b["bundleId"] for b in self._repo.bundles(chat_id)],
        )

    def record_recording_read(self, principal: Principal, subject: str, reason: str | None) -> None:
        """The recording's side of `GET /recordings/{id}/chat`: its times and meeting are read even when no chat
        was captured (issue 13, finding 4: every read is recorded)."""
        self._access.record(principal, "recording.chat.read", subject, reason, {})

    def meeting_chat(
        self,
        join_web_url: str | None,
        start: datetime | None,
        end: datetime | None,
        principal: Principal,
        reason: str | None,
    ) -> ChatDetail | None:
        """The chat of a meeting (by the meeting's join URL), its messages with those of the meeting's time first."""
        principal.require(*READERS)
        thread = thread_id_from_join_url(join_web_url)
        if thread is None:
            return None
        self._access.record(principal, "chat.read", chat_subject(thread), reason, {"via": "meeting"})
        chat = self._repo.get_chat(thread)
        if chat is None:
            return None
        return ChatDetail(
            chat=summary(chat),
            messages=messages_of(self._repo.versions(thread)),
            bundles=[b["bundleId"] for b in self._repo.bundles(thread)],
        )

    def search(self, params: Mapping[str, str], principal: Principal, reason: str | None) -> ChatSearchPage:
        principal.require(*READERS)
        query = (params.get("q") or "").strip()
        if not query or len(query) > MAX_QUERY:
            raise InvalidInput(f"`q` must hold 1 to {MAX_QUERY} characters")
        mode = params.get("mode", "terms")
        if mode not in ("terms", "substring"):
            raise InvalidInput("`mode` is terms or substring")
        user, limit = _user(params), _limit(params)
        if mode == "terms":
            span = window(params)
            wanted = query_terms(query)
            if not wanted:
                raise InvalidInput("`q` holds no words")
            items, continuation = self._repo.search(
                start=span.start,
                end=span.end,
                terms=wanted,
                substring=None,
                user_id=user,
                continuation=params.get("continuation"),
                limit=limit,
            )
        else:
            span = window(params, default_days=7, max_days=MAX_SUBSTRING_DAYS)
            needle = normalise(query)
            if len(needle) < MIN_SUBSTRING:
                raise InvalidInput(f"a substring search needs at least {MIN_SUBSTRING} characters")
            items, continuation = self._repo.search(
                start=span.start,
                end=span.end,
                terms=None,
                substring=needle,
                user_id=user,
                continuation=params.get("continuation"),
                limit=limit,
            )
        self._access.record(
            principal,
            "chat.search",
            "chats:search",
            reason,
            {
                "mode": mode,
                "query": query,
                "participant": user,
                "from": span.start,
                "to": span.end,
                "results": [f"{d['chatId']}/{d['messageId']}/{d['etag']}" for d in items],
            },
        )
        hits = [
            ChatSearchHit(
                chat_id=d["chatId"],
                message_id=d["messageId"],
                etag=d["etag"],
                state=d["state"],
                sender_id=d.get("senderId"),
                last_modified=d["lastModified"],
                text=d.get("text", ""),
            )
            for d in items
        ]
        return ChatSearchPage(items=hits, mode=mode, continuation=continuation)
