"""Evidence contracts: ledger entries, signed checkpoints and inclusion proofs (exported, verified offline).

Hashes are lowercase hex SHA-256 over canonical JSON (`verbatim.ledger.canonical`); instants inside
hashed content are fixed-width UTC text (`2025-01-31T09:30:00.000000Z`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from verbatim.contracts import Contract, contract

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Instant = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]
# Dotted lowercase names; the set is open so other areas can add kinds without a schema change.
EntryKindName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=64)]
SignatureAlgorithmName = Literal["Ed25519", "ES256"]

# The previous hash of the first entry of every chain.
GENESIS_HASH = "0" * 64


class EntryKind(StrEnum):
    """Kinds of ledger entry Verbatim writes; other dotted names are allowed."""

    SEALED = "sealed"
    SALVAGED = "salvaged"
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    ACCESSED = "accessed"
    EXPORTED = "exported"
    DELETED = "deleted"
    POLICY_CHANGED = "policy.changed"
    RETENTION_EXTENDED = "retention.extended"
    REPORT_COMPLETENESS = "report.completeness"


@contract("ledger-entry", 1)
class LedgerEntry(Contract):
    """One append-only ledger entry. `hash` = SHA-256 of canonical {content_sha256, prev_hash}, and
    `content_sha256` = SHA-256 of the canonical content (every field above `prev_hash`)."""

    schema_version: Literal[1] = 1
    chain: str
    seq: int = Field(ge=1)
    kind: EntryKindName
    # What the entry is about, as "<type>:<id>" (e.g. "recording:2f1c...", "hold:m-42").
    subject: str = Field(min_length=1, max_length=512)
    details: dict[str, JsonValue] = Field(default_factory=dict)
    # Who caused it: a user (UPN / object id) or a service identity; None for the system itself.
    actor: str | None = None
    # Set by callers that may retry; an append with a key already in the chain returns that entry.
    idempotency_key: str | None = Field(default=None, max_length=256)
    at: Instant
    prev_hash: Sha256Hex
    content_sha256: Sha256Hex
    hash: Sha256Hex


@contract("ledger-checkpoint", 1)
class LedgerCheckpoint(Contract):
    """A signature over the chain's head at `seq`: it commits to every entry up to and including it.
    The signed message is `verbatim-ledger-checkpoint-v1\\n` + canonical {algorithm, chain, hash, key_id,
    seq, signed_at}; ES256 signatures are raw r||s (64 bytes), as JWS and Key Vault produce them."""

    schema_version: Literal[1] = 1
    chain: str
    seq: int = Field(ge=1)
    hash: Sha256Hex
    signed_at: Instant
    key_id: str
    algorithm: SignatureAlgorithmName
    # The signer's public key (PEM, SubjectPublicKeyInfo); trust comes from its fingerprint, not from here.
    public_key: str
    signature: str  # base64


class ChainLink(Contract):
    """An entry after the proven one, reduced to what re-computing the chain needs (no content)."""

    seq: int = Field(ge=1)
    content_sha256: Sha256Hex
    hash: Sha256Hex


@contract("ledger-inclusion-proof", 1)
class InclusionProof(Contract):
    """Proves `entry` is in the chain that `checkpoint` signed: re-hash the entry, then follow `links`
    (entries entry.seq+1 .. checkpoint.seq) to the checkpoint's hash."""

    schema_version: Literal[1] = 1
    entry: LedgerEntry
    links: list[ChainLink] = Field(default_factory=list)
    checkpoint: LedgerCheckpoint
