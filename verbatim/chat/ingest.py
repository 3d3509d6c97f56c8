"""Ingestion: store every version of every message of the chats that include a policy user.

A captured version (from a notification or the export API) is stored once per (chat, message, etag): a repeat
is a no-op, an edit or a deletion is a new version beside the earlier ones, which stay as captured. The chat's
members come from Graph (cached on the chat's document, refreshed when stale or when a sender is not among
them); the version is kept when one member had to be recorded at the message's time — or, for a member of the
tenant whose policy the coverage audit has not observed yet, may have had to be. Inline images (hosted
contents) are fetched once and stored content-addressed beside the evidence.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from verbatim.chat.directory import ChatDirectory, ChatFacts
from verbatim.chat.meetings import thread_id_from_join_url
from verbatim.chat.messages import MessageRejected, MessageVersion, parse_version
from verbatim.chat.store import CHAT_DOC, ChatRepository, version_doc_id
from verbatim.chat.terms import normalise, terms
from verbatim.contracts.chat import CaptureSource, ChatMessageCaptured
from verbatim.platform.blobs import BlobExists, BlobStore
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

HOSTED_PREFIX = "chats/hosted/"
Action = Literal["stored", "duplicate", "not-recorded", "rejected"]


class PolicyUsers(Protocol):
    def must_record(self, user_id: str, at: datetime) -> bool | None:
        """Whether the user had to be recorded at `at`: True/False, None when the coverage audit never saw them."""
        ...


@dataclass(frozen=True)
class IngestOutcome:
    action: Action
    chat_id: str | None = None
    message_id: str | None = None
    etag: str | None = None
    reason: str | None = None


def hosted_blob_name(sha256: str) -> str:
    return f"{HOSTED_PREFIX}{sha256}"


def day_of(moment: datetime) -> str:
    return format_datetime(moment)[:10]


class ChatIngestor:
    def __init__(
        self,
        *,
        repository: ChatRepository,
        directory: ChatDirectory,
        policy: PolicyUsers,
        blobs: BlobStore,
        tenant_ids: Iterable[str],
        clock: Callable[[], datetime] = utcnow,
        membership_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self._repo = repository
        self._directory = directory
        self._policy = policy
        self._blobs = blobs
        self._tenants = {t.lower() for t in tenant_ids}
        self._clock = clock
        self._ttl = membership_ttl

    def ingest(self, captured: ChatMessageCaptured) -> IngestOutcome:
        try:
            version = parse_version(captured.raw)
        except MessageRejected as error:
            log.warning("chat message refused: %s", error, extra={"tenant_id": captured.tenant_id})
            return IngestOutcome("rejected", reason=str(error))
        return self.ingest_version(version, captured.tenant_id, captured.source)

    def ingest_version(self, version: MessageVersion, tenant_id: str, source: CaptureSource) -> IngestOutcome:
        now = self._clock()
        chat = self._chat(tenant_id, version, now)
        members: dict[str, str | None] = {m["id"]: m.get("tenantId") for m in chat.get("memberDetails", [])}
        if version.sender_id and version.sender_id not in members:
            members[version.sender_id] = tenant_id
        policy_users, pending = self._policy_users(members, version.last_modified)
        if not policy_users and not pending:
            reason = f"none of the chat's {len(members)} members is a policy user"
            return IngestOutcome("not-recorded", version.chat_id, version.message_id, version.etag, reason)
        text = version.text
        document: dict[str, Any] = {
            "id": version_doc_id(version.message_id, version.etag),
            "chatId": version.chat_id,
            "docType": "version",
            "tenantId": tenant_id,
            "messageId": version.message_id,
            "etag": version.etag,
            "state": version.state,
            "messageType": version.message_type,
            "created": format_datetime(version.created),
            "lastModified": format_datetime(version.last_modified),
            "day": day_of(version.last_modified),
            "senderId": version.sender_id,
            "senderName": version.sender_name,
            "contentType": version.content_type,
            "text": text,
            "textLower": normalise(text),
            "terms": terms(text),
            "participants": sorted(members),
            "policyUsers": sorted(policy_users),
            "policyPending": sorted(pending),
            "hostedContents": [],
            "raw": version.raw,
            "rawSha256": version.raw_sha256,
            "source": source,
            "capturedAt": format_datetime(now),
            "sealedIn": None,
        }
        if not self._repo.add_version(document):
            return IngestOutcome("duplicate", version.chat_id, version.message_id, version.etag)
        if version.hosted_content_ids:
            document["hostedContents"] = self._hosted(tenant_id, version)
            self._repo.replace_version(document)
        self._touch(version, policy_users | pending)
        return IngestOutcome("stored", version.chat_id, version.message_id, version.etag)

    # -- membership and policy --------------------------------------------------------------------------

    def _chat(self, tenant_id: str, version: MessageVersion, now: datetime) -> dict[str, Any]:
        current = self._repo.get_chat(version.chat_id)
        stale = current is None or now - _instant(current.get("membersCheckedAt"), now) > self._ttl
        unknown_sender = (
            current is not None
            and version.sender_id is not None
            and version.sender_id not in {m["id"] for m in current.get("memberDetails", [])}
        )
        if not (stale or unknown_sender):
            assert current is not None
            return current
        facts = self._directory.chat(tenant_id, version.chat_id)
        if facts is None:
            if current is not None:
                return current
            facts = ChatFacts(version.chat_id, None, None, None, ((version.sender_id or "", None, tenant_id),))

        def refresh(existing: dict[str, Any] | None) -> dict[str, Any]:
            doc = dict(existing or {"id": CHAT_DOC, "chatId": version.chat_id, "docType": "chat", "messages": 0})
            doc.update(
                {
                    "tenantId": tenant_id,
                    "chatType": facts.chat_type or doc.get("chatType"),
                    "topic": facts.topic if facts.topic is not None else doc.get("topic"),
                    "joinWebUrl": facts.join_web_url or doc.get("joinWebUrl"),
                    "threadId": thread_id_from_join_url(facts.join_web_url) or doc.get("threadId"),
                    "memberDetails": [{"id": m, "name": n, "tenantId": t} for m, n, t in facts.members if m],
                    "members": sorted({m for m, _, _ in facts.members if m} | set(doc.get("members", []))),
                    "memberNames": sorted({n for _, n, _ in facts.members if n} | set(doc.get("memberNames", []))),
                    "membersCheckedAt": format_datetime(now),
                }
            )
            return doc

        return self._repo.update_chat(version.chat_id, refresh)

    def _policy_users(self, members: dict[str, str | None], at: datetime) -> tuple[set[str], set[str]]:
        recorded, pending = set(), set()
        for user_id, tenant in members.items():
            must = self._policy.must_record(user_id, at)
            if must is True:
                recorded.add(user_id)
            elif must is None and (tenant is None or tenant.lower() in self._tenants):
                pending.add(user_id)
        return recorded, pending

    def _touch(self, version: MessageVersion, policy_users: set[str]) -> None:
        at = format_datetime(version.last_modified)

        def change(existing: dict[str, Any] | None) -> dict[str, Any]:
            doc = dict(existing or {"id": CHAT_DOC, "chatId": version.chat_id, "docType": "chat"})
            doc["firstMessageAt"] = min(doc.get("firstMessageAt") or at, at)
            doc["lastMessageAt"] = max(doc.get("lastMessageAt") or at, at)
            doc["versions"] = int(doc.get("versions", 0)) + 1
            if version.state == "posted":
                doc["messages"] = int(doc.get("messages", 0)) + 1
            doc["policyUsers"] = sorted(set(doc.get("policyUsers", [])) | policy_users)
            members = set(doc.get("members", []))
            if version.sender_id:
                members.add(version.sender_id)
            doc["members"] = sorted(members)
            return doc

        self._repo.update_chat(version.chat_id, change)

    # -- hosted contents --------------------------------------------------------------------------------

    def _hosted(self, tenant_id: str, version: MessageVersion) -> list[dict[str, Any]]:
        stored = []
        for hosted_id in version.hosted_content_ids:
            got = self._directory.hosted_content(tenant_id, version.chat_id, version.message_id, hosted_id)
            if got is None:
                log.warning("hosted content gone before capture", extra={"chat_id": version.chat_id})
                stored.append({"hostedContentId": hosted_id, "missing": True})
                continue
            sha = hashlib.sha256(got.data).hexdigest()
            name = hosted_blob_name(sha)
            try:
                version_id = self._blobs.write(name, got.data, overwrite=False, content_type=got.content_type)
            except BlobExists:
                version_id = self._blobs.version_of(name)
            stored.append(
                {
                    "hostedContentId": hosted_id,
                    "blob": name,
                    "versionId": version_id,
                    "bytes": len(got.data),
                    "sha256": sha,
                    "contentType": got.content_type,
                }
            )
        return stored


def _instant(value: object, fallback: datetime) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed or (fallback - timedelta(days=3650))
