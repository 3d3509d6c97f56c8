"""Ledger v2 contracts: the typed view of a log entry, proofs and checkpoints as the API serves them
(docs/ledger-v2.md). The log's own formats (signed notes, tiles, tlog proofs) are C2SP text and bytes,
not JSON; these models carry them across the API, camelCase on the wire like the rest of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from verbatim.contracts import contract
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.evidence import EntryKindName, Instant, LedgerEntry, Sha256Hex


@contract("ledger-log-entry", 1)
class LogEntry(CamelContract):
    """One entry of the log: its index (position, from 0), the SHA-256 leaf hash of its bytes, and its
    fields. `v1` is the whole v1 entry for leaves migrated from a v1 chain (`entry_schema_version` 1)."""

    schema_version: Literal[1] = 1
    index: int = Field(ge=0)
    leaf_hash: Sha256Hex
    entry_schema_version: Literal[1, 2] = 2
    kind: EntryKindName
    subject: str = Field(min_length=1, max_length=512)
    details: dict[str, JsonValue] = Field(default_factory=dict)
    actor: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=256)
    at: Instant
    v1: LedgerEntry | None = None

    @property
    def seq(self) -> int:
        """The entry's position, as the v1 API named it (v1 chain sequence numbers are v2 indexes: the
        configured chain is migrated right after the log's first entry, so entry n of v1 is index n)."""
        return self.index


@contract("ledger-inclusion-proof", 2)
class LogInclusionProof(CamelContract):
    """Proof that entry `index` (its bytes in `entry`, base64) is in the tree of `tree_size` leaves that
    `checkpoint` (a C2SP signed note) commits to: `hashes` is RFC 9162 PATH(index, D[tree_size]), base64."""

    schema_version: Literal[2] = 2
    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    leaf_hash: Sha256Hex
    entry: str
    hashes: list[str]
    checkpoint: str


@contract("ledger-consistency-proof", 1)
class LogConsistencyProof(CamelContract):
    """RFC 9162 PROOF(old_size, D[new_size]), base64 hashes: the standalone verifier reads this JSON as is."""

    schema_version: Literal[1] = 1
    old_size: int = Field(ge=1)
    new_size: int = Field(ge=1)
    hashes: list[str]


@contract("ledger-log-page", 1)
class LogPage(CamelContract):
    """A page of the log (`GET /api/v1/ledger`): entries of one subject after index `after`, or entries
    `from`..`to`, oldest first; `next_after` continues a subject page. `checkpoint` is the latest signed
    checkpoint (a C2SP note), read with one lookup; `checkpoint_size` its tree size (0: none yet)."""

    schema_version: Literal[1] = 1
    origin: str
    entries: list[LogEntry]
    next_after: int | None = None
    checkpoint: str | None = None
    checkpoint_size: int = 0
