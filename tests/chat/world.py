"""A chat capture world on in-memory fakes: repository, directory, blobs, WORM, ledger, queues; and message
JSON shaped like Graph's (the documented getAllMessages item)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.ledger.logkit import memory_log
from verbatim.chat.directory import InMemoryChatDirectory
from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.sealing import ChatSealer
from verbatim.chat.store import InMemoryChatRepository
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.contracts.evidence import RetentionTerm
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.blobs import InMemoryBlobStore

TENANT = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"
UNA = "4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104"
CHAT = "19:1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101_2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102@unq.gbl.spaces"
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message(
    text: str,
    at: datetime,
    *,
    chat: str = CHAT,
    sender: str = TOM,
    created: datetime | None = None,
    edited: datetime | None = None,
    deleted: datetime | None = None,
) -> dict[str, Any]:
    created = created or at
    return {
        "id": ms(created),
        "replyToId": None,
        "etag": ms(at),
        "messageType": "message",
        "createdDateTime": stamp(created),
        "lastModifiedDateTime": stamp(at),
        "lastEditedDateTime": stamp(edited) if edited else None,
        "deletedDateTime": stamp(deleted) if deleted else None,
        "chatId": chat,
        "from": {"user": {"id": sender, "displayName": "Tom Trader", "userIdentityType": "aadUser"}},
        "body": {"contentType": "text", "content": "" if deleted else text},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }


class Recorded:
    def __init__(self, users: set[str]) -> None:
        self.users = users

    def must_record(self, user_id: str, at: datetime) -> bool | None:
        return user_id in self.users


class FixedChatRetention:
    def term_for_chat(self, policy_users: Any, day_start: datetime, sealed_at: datetime) -> RetentionTerm:
        return RetentionTerm(retention_class="standard", until=day_start + timedelta(days=2555))


@dataclass
class Holds:
    custodians: dict[str, list[str]] = field(default_factory=dict)

    def holds_for_chat(self, members: Any, start: datetime, end: datetime) -> list[str]:
        return sorted(h for h, people in self.custodians.items() if set(people) & set(members))


@dataclass
class World:
    now: datetime = START
    repo: InMemoryChatRepository = field(default_factory=InMemoryChatRepository)
    directory: InMemoryChatDirectory = field(default_factory=InMemoryChatDirectory)
    blobs: InMemoryBlobStore = field(default_factory=InMemoryBlobStore)
    worm: InMemoryWorm = field(default_factory=InMemoryWorm)
    ledger: TransparencyLog = field(default_factory=memory_log)
    recorded: Recorded = field(default_factory=lambda: Recorded({TOM}))
    holds: Holds = field(default_factory=Holds)

    def __post_init__(self) -> None:
        self.directory.add(CHAT, [TOM, TARA], chat_type="oneOnOne", tenant_id=TENANT)
        self.ingestor = ChatIngestor(
            repository=self.repo,
            directory=self.directory,
            policy=self.recorded,
            blobs=self.blobs,
            tenant_ids=[TENANT],
            clock=lambda: self.now,
        )
        self.sealer = ChatSealer(
            repository=self.repo,
            blobs=self.blobs,
            worm=self.worm,
            ledger=self.ledger,
            retention=FixedChatRetention(),
            holds=self.holds,
            clock=lambda: self.now,
        )

    def capture(self, body: dict[str, Any], source: str = "notification") -> str:
        captured = ChatMessageCaptured(
            tenant_id=TENANT,
            source=source,
            received_at=stamp(self.now),
            raw=json.dumps(body),  # type: ignore[arg-type]
        )
        return self.ingestor.ingest(captured).action
