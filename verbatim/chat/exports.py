"""Chat evidence as an export takes it (verbatim.exports.chats packages it): every sealed bundle of a chat, or
of the chats a person was a member of, in a time range — the manifest and `messages.ndjson` exactly as sealed, the
hosted contents, the `chat.sealed` entry of the ledger (v2 log) and, once a signed checkpoint covers it, its
inclusion proof (with the checkpoint) — so an export can write them out and a recipient can verify them offline
(`verbatim verify` reads the same; `verbatim ledger verify-proof` checks a proof with the log's key).

The caller records the access (an `exported` ledger entry); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from verbatim.chat.sealing import CHAT_SEALED, chat_subject
from verbatim.chat.store import ChatRepository
from verbatim.contracts.chat import ChatBundleManifest
from verbatim.contracts.ledger import LogEntry, LogInclusionProof
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import NotFound


@dataclass(frozen=True)
class HostedFile:
    name: str
    sha256: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class SealedBundle:
    chat_id: str
    bundle_id: str
    manifest_bytes: bytes
    manifest: ChatBundleManifest
    messages_bytes: bytes
    sealed_entry: LogEntry | None
    proof: LogInclusionProof | None
    hosted: list[HostedFile] = field(default_factory=list)


class ChatEvidenceReader:
    def __init__(self, repository: ChatRepository, blobs: BlobStore, ledger: TransparencyLog) -> None:
        self._repo = repository
        self._blobs = blobs
        self._ledger = ledger

    def bundles(
        self,
        *,
        chat_id: str | None = None,
        participant: str | None = None,
        start_day: str = "",
        end_day: str = "~",
        bundle_ids: Collection[str] | None = None,
        with_proofs: bool = True,
    ) -> Iterator[SealedBundle]:
        """The sealed, not deleted bundles of a chat (or of a participant's chats) whose day is in
        [start_day, end_day] (YYYY-MM-DD), oldest first; only `bundle_ids` when given. `with_proofs=False` leaves
        `proof` None (an export proves entries against its own checkpoint)."""
        if chat_id is not None:
            found = self._repo.bundles(chat_id)
        else:
            found = self._repo.all_bundles([participant] if participant else None)
        wanted = sorted(
            (
                b
                for b in found
                if not b.get("deleted")
                and start_day <= str(b["day"]) <= end_day
                and (bundle_ids is None or b["bundleId"] in bundle_ids)
            ),
            key=lambda b: (b["chatId"], b["day"], int(b["part"])),
        )
        entries: dict[str, list[LogEntry]] = {}
        for bundle in wanted:
            chat = str(bundle["chatId"])
            if chat not in entries:
                entries[chat] = list(subject_entries(self._ledger, chat_subject(chat)))
            sealed = next(
                (
                    e
                    for e in entries[chat]
                    if e.kind == CHAT_SEALED and e.details.get("bundle_id") == bundle["bundleId"]
                ),
                None,
            )
            manifest_bytes = self._blobs.read(bundle["manifestBlob"])
            manifest = ChatBundleManifest.model_validate_json(manifest_bytes)
            hosted = []
            for ref in manifest.hosted_contents:
                try:
                    data = self._blobs.read(ref.blob_name, version_id=ref.version_id)
                except BlobNotFound:
                    continue  # verification reports it; the export still carries the rest
                hosted.append(HostedFile(ref.blob_name, ref.sha256, ref.content_type, data))
            yield SealedBundle(
                chat_id=chat,
                bundle_id=str(bundle["bundleId"]),
                manifest_bytes=manifest_bytes,
                manifest=manifest,
                messages_bytes=self._blobs.read(manifest.messages.blob_name, version_id=manifest.messages.version_id),
                sealed_entry=sealed,
                proof=self._proof(sealed) if with_proofs else None,
                hosted=hosted,
            )

    def _proof(self, entry: LogEntry | None) -> LogInclusionProof | None:
        if entry is None:
            return None
        try:
            return self._ledger.prove(entry.index)
        except NotFound:
            return None  # not yet under a signed checkpoint (one is signed within a minute)
