"""Verify a chat's sealed bundles from storage and the ledger (v2 log) alone: each `chat.sealed` entry is the
leaf a signed checkpoint's tree has at its index (an inclusion proof from the tiles), the log extends every
anchored checkpoint, the manifest and `messages.ndjson` still hash to what the entry recorded, every line still
hashes to what the manifest lists, and every hosted content is still there with its hash. A bundle deleted under
a certificate (`chat.deleted`) is not expected in storage. Each problem is explained in words."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from verbatim.chat.sealing import CHAT_SEALED, chat_subject
from verbatim.contracts.chat import ChatBundleManifest
from verbatim.contracts.ledger import LogEntry
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.ledger.chain import Finding, verify_entry
from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.anchors import AnchorStore, check_anchors
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from verbatim.ledger.note import NoteError
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import NotFound

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
    chat_id: str, blobs: BlobStore, ledger: TransparencyLog, anchors: AnchorStore | None = None
) -> ChatVerification:
    result = ChatVerification(chat_id)
    entries = list(subject_entries(ledger, chat_subject(chat_id)))
    sealed = [e for e in entries if e.kind == CHAT_SEALED]
    deleted = {str(e.details.get("bundle_id")) for e in entries if e.kind == CHAT_DELETED}
    if not sealed:
        result.findings.append(Finding("ledger.no_seal", f"the ledger has no chat.sealed entry for chat {chat_id}"))
        return result
    for entry in entries:
        if entry.v1 is not None:
            result.findings.extend(verify_entry(entry.v1))
    for entry in entries:
        if entry.kind in (CHAT_SEALED, CHAT_DELETED):
            _inclusion(result, ledger, entry)
    if anchors is not None:
        findings, notes = check_anchors(
            ledger.latest_checkpoint(), ledger, anchors, ledger.keys.verifiers, ledger.origin
        )
        result.findings.extend(Finding(f.code, f.message, f.size) for f in findings if f.code != "log.no_checkpoint")
        result.notes.extend(notes)
    for entry in sealed:
        result.bundles += 1
        if str(entry.details.get("bundle_id")) in deleted:
            result.notes.append(f"bundle {entry.details.get('bundle_id')} was deleted under a certificate")
            continue
        _bundle(result, blobs, entry)
    return result


def _inclusion(result: ChatVerification, ledger: TransparencyLog, entry: LogEntry) -> None:
    """Is `entry`, as the ledger holds it, the leaf the latest signed tree has at its index?"""
    try:
        proof = ledger.prove(entry.index)
    except NotFound:
        result.notes.append(
            f"{entry.kind} entry {entry.index} is not yet covered by a signed checkpoint (one is signed within a "
            "minute; sign one now with `verbatim ledger checkpoint`)"
        )
        return
    try:
        checkpoint = open_checkpoint(proof.checkpoint.encode(), ledger.keys.verifiers, ledger.origin).checkpoint
    except NoteError as error:
        result.findings.append(Finding(error.code, f"the checkpoint of size {proof.tree_size}: {error}"))
        return
    hashes = [base64.b64decode(h) for h in proof.hashes]
    try:
        verify_inclusion(
            entry.index, checkpoint.size, leaf_hash(base64.b64decode(proof.entry)), hashes, checkpoint.root_hash
        )
    except ProofError as error:
        result.findings.append(
            Finding(
                "entry.not_in_tree" if error.code == "proof.root_mismatch" else error.code,
                f"{entry.kind} entry {entry.index} as the ledger holds it is not the leaf the signed tree of size "
                f"{checkpoint.size} has at that index: it was changed after it was written ({error})",
                entry.index,
            )
        )
        return
    result.notes.append(f"{entry.kind} entry {entry.index} is in the tree signed at size {checkpoint.size}")


def _bundle(result: ChatVerification, blobs: BlobStore, entry: LogEntry) -> None:
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
