"""Sealing captured chat as evidence, one bundle per chat and UTC day.

The unit: every version of a chat's messages whose last modification falls on one UTC day. A day is sealed
once it is over and a grace period has passed (late notifications, retries, the daily reconciliation's
back-fill); a version that arrives after its day was sealed goes into the next *part* of that day. A bundle is
`messages.ndjson` (one canonical JSON line per version: ids, etag, state, times, source, and the exact JSON
text Graph delivered) and `manifest.json` (the chat, its members and policy users, every line's SHA-256, the
hosted contents by SHA-256, retention and holds), under `chats/<sha256(chat id)[:32]>/<day>/part-<n>/` in the
recordings container; the bundle's blobs and its hosted contents are made WORM until the retention date (and
held when a legal hold covers a member), and a `chat.sealed` ledger entry records the hashes. Why per chat and
day, not per notification batch: a batch mixes chats and tenants and its size follows Graph's delivery, not
the conversation; a chat-day is what an officer reviews and exports, what retention and holds apply to, and
keeps the ledger at one entry per active chat per day. Sealing is idempotent: a retry finds what an earlier
attempt wrote and finishes it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from verbatim import __version__
from verbatim.chat.store import ChatRepository, bundle_doc_id
from verbatim.contracts.chat import ChatBundleManifest, ChatSealedDetails, ChatVersionRef, HostedContentRef
from verbatim.contracts.evidence import BlobRef, RetentionTerm
from verbatim.evidence.worm import Enforcement, WormProtection
from verbatim.ledger.canonical import canonical_json
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.blobs import BlobExists, BlobStore
from verbatim.platform.errors import Conflict
from verbatim.platform.times import format_datetime, utcnow

log = logging.getLogger(__name__)

CHAT_SEALED = "chat.sealed"
MANIFEST = "manifest.json"
MESSAGES = "messages.ndjson"


class ChatRetention(Protocol):
    def term_for_chat(self, policy_users: Sequence[str], day_start: datetime, sealed_at: datetime) -> RetentionTerm:
        """The retention of a chat-day bundle: the longest class any of its policy users' recordings would get."""
        ...


class ChatHolds(Protocol):
    def holds_for_chat(self, members: Sequence[str], start: datetime, end: datetime) -> list[str]:
        """Ids of the active legal holds with a custodian among `members` covering [start, end)."""
        ...


def chat_subject(chat_id: str) -> str:
    return f"chat:{chat_id}"


def chat_key(chat_id: str) -> str:
    return hashlib.sha256(chat_id.encode()).hexdigest()[:32]


def bundle_prefix(chat_id: str, day: str, part: int) -> str:
    return f"chats/{chat_key(chat_id)}/{day}/part-{part:03d}/"


def bundle_id(chat_id: str, day: str, part: int) -> str:
    return f"{chat_key(chat_id)}-{day}-{part:03d}"


def line_of(version: dict[str, Any]) -> bytes:
    """A version's canonical line in `messages.ndjson`."""
    return (
        canonical_json(
            {
                "chatId": version["chatId"],
                "messageId": version["messageId"],
                "etag": version["etag"],
                "state": version["state"],
                "created": version["created"],
                "lastModified": version["lastModified"],
                "senderId": version.get("senderId"),
                "source": version["source"],
                "capturedAt": version["capturedAt"],
                "rawSha256": version["rawSha256"],
                "raw": version["raw"],
            }
        )
        + b"\n"
    )


@dataclass(frozen=True)
class SealOutcome:
    chat_id: str
    day: str
    part: int
    bundle_id: str
    versions: int
    enforcement: Enforcement
    ledger_seq: int


class ChatSealer:
    def __init__(
        self,
        *,
        repository: ChatRepository,
        blobs: BlobStore,
        worm: WormProtection,
        ledger: LedgerWriter,
        retention: ChatRetention,
        holds: ChatHolds,
        grace: timedelta = timedelta(hours=3),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repository
        self._blobs = blobs
        self._worm = worm
        self._ledger = ledger
        self._retention = retention
        self._holds = holds
        self._grace = grace
        self._clock = clock

    def seal_due(self) -> list[SealOutcome]:
        """Seal every chat-day that is over by more than the grace period and has unsealed versions."""
        before = format_datetime(self._clock() - self._grace)[:10]
        outcomes = []
        for chat_id, day in self._repo.unsealed(before):
            try:
                outcome = self.seal(chat_id, day)
            except Exception:
                log.exception("sealing a chat day failed", extra={"chat_day": day})
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def seal(self, chat_id: str, day: str) -> SealOutcome | None:
        versions = sorted(
            (v for v in self._repo.versions(chat_id) if v["day"] == day and v.get("sealedIn") is None),
            key=lambda v: (v["lastModified"], v["messageId"], v["etag"]),
        )
        if not versions:
            return None
        ids = [v["id"] for v in versions]
        bundles = [b for b in self._repo.bundles(chat_id) if b["day"] == day]
        resumed = next((b for b in bundles if set(ids) <= set(b.get("versionIds", []))), None)
        part = int(resumed["part"]) if resumed else max((int(b["part"]) for b in bundles), default=0) + 1
        chat = self._repo.get_chat(chat_id) or {}
        sealed_at = self._clock()
        day_start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        policy_users = sorted({u for v in versions for u in v.get("policyUsers", []) + v.get("policyPending", [])})
        members = sorted({u for v in versions for u in v.get("participants", [])})
        retention = self._retention.term_for_chat(policy_users, day_start, sealed_at)
        holds = self._holds.holds_for_chat(members, day_start, day_start + timedelta(days=1))
        prefix = bundle_prefix(chat_id, day, part)
        the_id = bundle_id(chat_id, day, part)

        lines = [line_of(v) for v in versions]
        body = b"".join(lines)
        messages_ref = self._write(prefix + MESSAGES, body, "application/x-ndjson")
        refs, offset = [], 0
        for index, (version, line) in enumerate(zip(versions, lines, strict=True)):
            refs.append(
                ChatVersionRef(
                    message_id=version["messageId"],
                    etag=version["etag"],
                    state=version["state"],
                    last_modified=version["lastModified"],
                    sender_id=version.get("senderId"),
                    source=version["source"],
                    line=index,
                    line_sha256=hashlib.sha256(line).hexdigest(),
                )
            )
            offset += len(line)
        hosted = [
            HostedContentRef(
                blob_name=h["blob"],
                version_id=h.get("versionId"),
                bytes=int(h["bytes"]),
                sha256=h["sha256"],
                message_id=v["messageId"],
                hosted_content_id=h["hostedContentId"],
                content_type=h.get("contentType"),
            )
            for v in versions
            for h in v.get("hostedContents", [])
            if not h.get("missing")
        ]
        manifest = ChatBundleManifest(
            bundle_id=the_id,
            chat_id=chat_id,
            chat_type=chat.get("chatType"),
            topic=chat.get("topic"),
            join_web_url=chat.get("joinWebUrl"),
            day=day,
            part=part,
            members=members,
            policy_users=policy_users,
            messages=messages_ref,
            versions=refs,
            hosted_contents=hosted,
            retention=retention,
            legal_holds=sorted(set(holds)),
            sealed_at=sealed_at,
            sealed_by=f"verbatim {__version__}",
        )
        manifest_body = manifest.model_dump_json(by_alias=True, indent=2).encode()
        manifest_ref = self._write(prefix + MANIFEST, manifest_body, "application/json", adopt=True)
        if manifest_ref.sha256 != hashlib.sha256(manifest_body).hexdigest():
            manifest = ChatBundleManifest.model_validate_json(self._blobs.read(prefix + MANIFEST))
        enforcement: Enforcement = "azure"
        targets = [(messages_ref.blob_name, messages_ref.version_id), (manifest_ref.blob_name, manifest_ref.version_id)]
        targets += [(h.blob_name, h.version_id) for h in manifest.hosted_contents]
        for name, version_id in targets:
            outcomes = [self._worm.protect_until(name, manifest.retention.until, version_id)]
            if manifest.legal_holds:
                outcomes.append(self._worm.set_legal_hold(name, True, version_id))
            if any(o.enforcement == "emulator-not-enforced" for o in outcomes):
                enforcement = "emulator-not-enforced"
        details = ChatSealedDetails(
            bundle_id=the_id,
            chat_id=chat_id,
            day=day,
            part=part,
            manifest=_ref(manifest_ref),
            messages=_ref(messages_ref),
            versions=len(versions),
            hosted_contents=len(manifest.hosted_contents),
            retention_class=manifest.retention.retention_class,
            retention_until=manifest.retention.until.astimezone(UTC).isoformat(),
            legal_holds=list(manifest.legal_holds),
            worm=enforcement,
        )
        entry = self._ledger.append(
            CHAT_SEALED, chat_subject(chat_id), details.model_dump(), idempotency_key=f"{CHAT_SEALED}:{the_id}"
        )
        self._repo.add_bundle(
            {
                "id": bundle_doc_id(day, part),
                "chatId": chat_id,
                "docType": "bundle",
                "bundleId": the_id,
                "day": day,
                "part": part,
                "versionIds": ids,
                "versions": len(ids),
                "manifestBlob": manifest_ref.blob_name,
                "messagesBlob": messages_ref.blob_name,
                "sealedAt": format_datetime(sealed_at),
                "retentionClass": manifest.retention.retention_class,
                "retentionUntil": format_datetime(manifest.retention.until),
                "legalHolds": list(manifest.legal_holds),
                "members": members,
                "ledgerSeq": entry.seq,
                "worm": enforcement,
            }
        )
        for version in versions:
            version["sealedIn"] = the_id
            self._repo.replace_version(version)
        return SealOutcome(chat_id, day, part, the_id, len(versions), enforcement, entry.seq)

    def _write(self, name: str, body: bytes, content_type: str, *, adopt: bool = False) -> BlobRef:
        """Write once; a retry finds the same bytes (or, for the manifest, the earlier attempt's)."""
        try:
            version_id = self._blobs.write(name, body, overwrite=False, content_type=content_type)
        except BlobExists:
            stored = self._blobs.read_versioned(name)
            if stored.data != body and not adopt:
                raise Conflict(f"{name} exists with other content: a bundle is never rewritten") from None
            body, version_id = stored.data, stored.version_id
        return BlobRef(blob_name=name, version_id=version_id, bytes=len(body), sha256=hashlib.sha256(body).hexdigest())


def _ref(ref: BlobRef) -> dict[str, str | int | None]:
    return {"blob": ref.blob_name, "version_id": ref.version_id, "bytes": ref.bytes, "sha256": ref.sha256}
