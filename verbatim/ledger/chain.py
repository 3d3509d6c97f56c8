"""The hash chain itself, without storage: building entries, signing checkpoints, verifying segments
and inclusion proofs. Everything here can run offline on an export."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from verbatim.contracts.evidence import GENESIS_HASH, ChainLink, InclusionProof, LedgerCheckpoint, LedgerEntry
from verbatim.ledger.canonical import canonical_json, canonical_sha256, format_instant
from verbatim.ledger.signing import Signer, fingerprint, verify_signature

CHECKPOINT_DOMAIN = b"verbatim-ledger-checkpoint-v1\n"

_CONTENT_FIELDS = ("schema_version", "chain", "seq", "kind", "subject", "details", "actor", "idempotency_key", "at")


def entry_content(entry: LedgerEntry) -> dict[str, object]:
    """The hashed part of an entry (everything but the chain links)."""
    return {name: getattr(entry, name) for name in _CONTENT_FIELDS}


def link_hash(prev_hash: str, content_sha256: str) -> str:
    return canonical_sha256({"content_sha256": content_sha256, "prev_hash": prev_hash})


def build_entry(
    *,
    chain: str,
    seq: int,
    kind: str,
    subject: str,
    details: Mapping[str, JsonValue],
    at: datetime,
    prev_hash: str,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """The entry that follows `prev_hash` at `seq`; raises NotCanonicalizable for details it cannot hash."""
    content: dict[str, object] = {
        "schema_version": 1,
        "chain": chain,
        "seq": seq,
        "kind": kind,
        "subject": subject,
        "details": dict(details),
        "actor": actor,
        "idempotency_key": idempotency_key,
        "at": format_instant(at),
    }
    content_sha256 = canonical_sha256(content)
    return LedgerEntry.model_validate(
        {
            **content,
            "prev_hash": prev_hash,
            "content_sha256": content_sha256,
            "hash": link_hash(prev_hash, content_sha256),
        }
    )


def checkpoint_message(*, chain: str, seq: int, hash: str, signed_at: str, key_id: str, algorithm: str) -> bytes:
    body = {"algorithm": algorithm, "chain": chain, "hash": hash, "key_id": key_id, "seq": seq, "signed_at": signed_at}
    return CHECKPOINT_DOMAIN + canonical_json(body)


def sign_checkpoint(entry: LedgerEntry, signer: Signer, at: datetime) -> LedgerCheckpoint:
    """A checkpoint over the chain up to and including `entry`."""
    signed_at = format_instant(at)
    message = checkpoint_message(
        chain=entry.chain,
        seq=entry.seq,
        hash=entry.hash,
        signed_at=signed_at,
        key_id=signer.key_id,
        algorithm=signer.algorithm,
    )
    return LedgerCheckpoint(
        chain=entry.chain,
        seq=entry.seq,
        hash=entry.hash,
        signed_at=signed_at,
        key_id=signer.key_id,
        algorithm=signer.algorithm,
        public_key=signer.public_key_pem(),
        signature=base64.b64encode(signer.sign(message)).decode(),
    )


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong, with a code for machines and a sentence for people."""

    code: str
    message: str
    seq: int | None = None


def verify_entry(entry: LedgerEntry) -> list[Finding]:
    """Does the entry's content still produce its recorded digest and hash?"""
    findings = []
    content_sha256 = canonical_sha256(entry_content(entry))
    if content_sha256 != entry.content_sha256:
        findings.append(
            Finding(
                "entry.content_altered",
                f"entry {entry.seq} ({entry.kind} {entry.subject}): its content no longer hashes to the recorded "
                f"digest {entry.content_sha256[:12]}… (now {content_sha256[:12]}…) — the entry was changed after "
                "it was written",
                entry.seq,
            )
        )
    elif link_hash(entry.prev_hash, entry.content_sha256) != entry.hash:
        findings.append(
            Finding(
                "entry.hash_altered",
                f"entry {entry.seq}: its hash does not follow from its content and previous hash",
                entry.seq,
            )
        )
    return findings


def verify_segment(entries: Sequence[LedgerEntry], *, prev_hash: str, first_seq: int) -> list[Finding]:
    """Verify consecutive entries starting at `first_seq` whose predecessor's hash is `prev_hash`
    (GENESIS_HASH before seq 1). Each alteration is reported once, at the entry where it happened."""
    findings: list[Finding] = []
    expected_seq, expected_prev = first_seq, prev_hash
    for entry in entries:
        if entry.seq != expected_seq:
            missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}..{entry.seq - 1}"
            findings.append(
                Finding("chain.gap", f"entries {missing} are missing before entry {entry.seq}", expected_seq)
                if entry.seq > expected_seq
                else Finding("chain.order", f"entry {entry.seq} appears where {expected_seq} was expected", entry.seq)
            )
        elif entry.prev_hash != expected_prev:
            findings.append(
                Finding(
                    "chain.broken_link",
                    f"entry {entry.seq} names previous hash {entry.prev_hash[:12]}…, but entry {entry.seq - 1} "
                    f"hashes to {expected_prev[:12]}… — an entry was replaced, inserted or removed",
                    entry.seq,
                )
            )
        findings.extend(verify_entry(entry))
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    return findings


def verify_checkpoint(checkpoint: LedgerCheckpoint, trusted_fingerprints: Iterable[str]) -> list[Finding]:
    """Is the checkpoint signed, correctly, by a trusted key?"""
    if fingerprint(checkpoint.public_key) not in set(trusted_fingerprints):
        return [
            Finding(
                "checkpoint.untrusted_key",
                f"checkpoint {checkpoint.seq} is signed by key {checkpoint.key_id}, which is not a trusted key",
                checkpoint.seq,
            )
        ]
    message = checkpoint_message(
        chain=checkpoint.chain,
        seq=checkpoint.seq,
        hash=checkpoint.hash,
        signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id,
        algorithm=checkpoint.algorithm,
    )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not verify_signature(checkpoint.public_key, checkpoint.algorithm, message, signature):
        return [
            Finding(
                "checkpoint.signature_invalid",
                f"checkpoint {checkpoint.seq}: the signature does not match its content — the checkpoint was "
                "altered or not signed by its key",
                checkpoint.seq,
            )
        ]
    return []


def links_after(entries: Sequence[LedgerEntry]) -> list[ChainLink]:
    return [ChainLink(seq=e.seq, content_sha256=e.content_sha256, hash=e.hash) for e in entries]


def verify_inclusion(proof: InclusionProof, trusted_fingerprints: Iterable[str]) -> list[Finding]:
    """Does the signed checkpoint commit to this exact entry? Needs nothing but the proof and the keys."""
    entry, checkpoint = proof.entry, proof.checkpoint
    findings = verify_entry(entry)
    if entry.chain != checkpoint.chain:
        findings.append(Finding("proof.chain_mismatch", f"entry is on chain {entry.chain!r}, checkpoint on "
                                f"{checkpoint.chain!r}", entry.seq))  # fmt: skip
    running_seq, running_hash = entry.seq, link_hash(entry.prev_hash, canonical_sha256(entry_content(entry)))
    for link in proof.links:
        if link.seq != running_seq + 1:
            findings.append(Finding("proof.gap", f"the proof skips from entry {running_seq} to {link.seq}", link.seq))
            break
        recomputed = link_hash(running_hash, link.content_sha256)
        if recomputed != link.hash:
            findings.append(
                Finding(
                    "chain.broken_link",
                    f"entry {link.seq} does not follow from entry {running_seq} as the ledger now holds it",
                    link.seq,
                )
            )
        # Carry on from the stored hash, so one alteration is reported once, where it breaks the chain.
        running_seq, running_hash = link.seq, link.hash
    if running_seq != checkpoint.seq or running_hash != checkpoint.hash:
        findings.append(
            Finding(
                "proof.checkpoint_mismatch",
                f"following the chain from entry {entry.seq} to {running_seq} gives hash {running_hash[:12]}…, but "
                f"checkpoint {checkpoint.seq} signed {checkpoint.hash[:12]}… — the entries differ from what was signed",
                checkpoint.seq,
            )
        )
    findings.extend(verify_checkpoint(checkpoint, trusted_fingerprints))
    return findings


__all__ = [
    "GENESIS_HASH",
    "Finding",
    "build_entry",
    "checkpoint_message",
    "entry_content",
    "link_hash",
    "links_after",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_entry",
    "verify_inclusion",
    "verify_segment",
]
