"""Verify a chat's sealed bundles from storage and the ledger alone: each `chat.sealed` entry is intact and
included in the chain up to a signed checkpoint, the manifest and `messages.ndjson` still hash to what the
entry recorded, every line still hashes to what the manifest lists, and every hosted content is still there
with its hash. A bundle deleted under a certificate (`chat.deleted`) is not expected in storage. Each problem is
explained in words."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from verbatim.chat.sealing import CHAT_SEALED, chat_subject
from verbatim.contracts.chat import ChatBundleManifest
from verbatim.contracts.evidence import LedgerEntry
from verbatim.ledger.chain import Finding, verify_entry, verify_inclusion
from verbatim.ledger.writer import Ledger
from verbatim.platform.blobs import BlobNotFound, BlobStore

CHAT_DELETED = "chat.deleted"


@dataclass
class ChatVerification:
    chat_id: str
    bundles: int = 0
    versions: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and self.bundles > 0


def _download(blobs: BlobStore, name: str, version_id: object) -> bytes | None:
    try:
        return blobs.read(name, version_id=str(version_id) if version_id else None)
    except BlobNotFound:
        return None


def verify_chat(
    chat_id: str, blobs: BlobStore, ledger: Ledger, trusted_fingerprints: Iterable[str]
) -> ChatVerification:
    result = ChatVerification(chat_id)
    trusted = set(trusted_fingerprints)
    entries = ledger.store.entries_for_subject(ledger.chain, chat_subject(chat_id))
    sealed = [e for e in entries if e.kind == CHAT_SEALED]
    deleted = {str(e.details.get("bundle_id")) for e in entries if e.kind == CHAT_DELETED}
    if not sealed:
        result.findings.append(Finding("ledger.no_seal", f"the ledger has no chat.sealed entry for chat {chat_id}"))
        return result
    for entry in entries:
        result.findings.extend(verify_entry(entry))
    for entry in sealed:
        result.bundles += 1
        _inclusion(result, ledger, entry, trusted)
        if str(entry.details.get("bundle_id")) in deleted:
            result.notes.append(f"bundle {entry.details.get('bundle_id')} was deleted under a certificate")
            continue
        _bundle(result, blobs, entry)
    return result


def _inclusion(result: ChatVerification, ledger: Ledger, entry: LedgerEntry, trusted: set[str]) -> None:
    proof = ledger.prove(entry)
    if proof is None:
        head = ledger.head_entry()
        segment = ledger.verify(entry.seq, head.seq if head else entry.seq)
        result.findings.extend(segment)
        result.notes.append(
            f"chat.sealed entry {entry.seq} is not yet covered by a signed checkpoint (the chain from it to the "
            f"head {'verifies' if not segment else 'does NOT verify'})"
        )
        return
    findings = verify_inclusion(proof, trusted)
    result.findings.extend(f for f in findings if f.code != "entry.content_altered")
    if not findings:
        result.notes.append(f"chat.sealed entry {entry.seq} is included under checkpoint {proof.checkpoint.seq}")


def _bundle(result: ChatVerification, blobs: BlobStore, entry: LedgerEntry) -> None:
    bundle = str(entry.details.get("bundle_id"))
    recorded: dict[str, Any] = entry.details.get("manifest") or {}  # type: ignore[assignment]
    body = _download(blobs, str(recorded.get("blob")), recorded.get("version_id"))
    if body is None:
        result.findings.append(Finding("chat.manifest_missing", f"bundle {bundle}: its manifest is gone"))
        return
    if hashlib.sha256(body).hexdigest() != recorded.get("sha256"):
        result.findings.append(Finding("chat.manifest_altered", f"bundle {bundle}: the manifest changed after sealing"))
        return
    try:
        manifest = ChatBundleManifest.model_validate_json(body)
    except ValidationError:
        result.findings.append(Finding("chat.manifest_unreadable", f"bundle {bundle}: the manifest is unreadable"))
        return
    sealed_messages: dict[str, Any] = entry.details.get("messages") or {}  # type: ignore[assignment]
    data = _download(blobs, manifest.messages.blob_name, manifest.messages.version_id)
    if data is None:
        result.findings.append(Finding("chat.messages_missing", f"bundle {bundle}: messages.ndjson is gone"))
        return
    if hashlib.sha256(data).hexdigest() != sealed_messages.get("sha256"):
        lines = data.splitlines(keepends=True)
        changed = [
            ref.line
            for ref in manifest.versions
            if ref.line >= len(lines) or hashlib.sha256(lines[ref.line]).hexdigest() != ref.line_sha256
        ]
        where = f" (lines {', '.join(str(n) for n in changed[:10])} differ)" if changed else ""
        result.findings.append(
            Finding("chat.messages_altered", f"bundle {bundle}: messages.ndjson changed after sealing{where}")
        )
        return
    result.versions += len(manifest.versions)
    for hosted in manifest.hosted_contents:
        content = _download(blobs, hosted.blob_name, hosted.version_id)
        if content is None:
            result.findings.append(
                Finding("chat.hosted_missing", f"bundle {bundle}: hosted content {hosted.sha256[:16]}… is gone")
            )
        elif hashlib.sha256(content).hexdigest() != hosted.sha256:
            result.findings.append(
                Finding("chat.hosted_altered", f"bundle {bundle}: hosted content {hosted.sha256[:16]}… changed")
            )
    result.notes.append(
        f"bundle {bundle} ({manifest.day} part {manifest.part}): {len(manifest.versions)} versions and "
        f"{len(manifest.hosted_contents)} hosted contents as sealed"
    )
