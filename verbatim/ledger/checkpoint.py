"""C2SP checkpoints (c2sp.org/tlog-checkpoint) and tlog proofs (c2sp.org/tlog-proof): what the ledger's log
signs, and the one self-contained file that proves an entry is in it (no I/O).

A checkpoint is the text of a signed note: origin line, tree size (decimal, no leading zeroes), base64 root
hash, then optional non-empty extension lines. A tlog proof is `c2sp.org/tlog-proof@v1`, an optional
`extra <base64>` line (Verbatim puts the entry's bytes there), `index <n>`, the inclusion proof's hashes in
base64 one per line, a blank line, then the signed checkpoint verbatim.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verbatim.ledger.merkle import EMPTY_ROOT, HASH_SIZE
from verbatim.ledger.note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_TREE_SIZE = (1 << 63) - 1  # sizes travel as uint64 in the C2SP tooling; 2**63 keeps them signed-safe too
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_PROOF_HASHES = 63  # a tree of 2**63 leaves needs 63


class CheckpointError(NoteError):
    """A checkpoint or tlog proof that is malformed or does not match what it must."""


def _canonical_b64(value: str, what: str, code: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(code, f"{what} is not base64") from None
    if base64.b64encode(decoded).decode() != value:
        raise CheckpointError(code, f"{what} is not in canonical base64")
    return decoded


def _decimal(value: str, what: str, code: str) -> int:
    if not _DECIMAL.fullmatch(value) or len(value) > 19 or int(value) > MAX_TREE_SIZE:
        raise CheckpointError(code, f"{what} {value[:24]!r} is not a decimal number without leading zeroes")
    return int(value)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint.malformed", "the origin must be one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError("checkpoint.malformed", f"tree size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("checkpoint.malformed", f"the root hash is {len(self.root_hash)} bytes, not 32")
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("checkpoint.malformed", "extension lines must be non-empty single lines")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text, strictly per tlog-checkpoint (and with a SHA-256 root)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint.malformed", "the checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("checkpoint.malformed", "a checkpoint has at least three non-empty lines")
    origin, size, root = lines[0], lines[1], lines[2]
    checkpoint = Checkpoint(
        origin=origin,
        size=_decimal(size, "tree size", "checkpoint.malformed"),
        root_hash=_canonical_b64(root, "the root hash", "checkpoint.malformed"),
        extensions=tuple(lines[3:]),
    )
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        raise CheckpointError("checkpoint.malformed", "a checkpoint of size 0 must carry the empty tree's root hash")
    return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> bytes:
    """The signed note. The log's key name should be its origin (tlog-checkpoint), so the first signer's
    name must be the origin."""
    if not signers or signers[0].verifier.name != checkpoint.origin:
        raise CheckpointError("checkpoint.bad_signer", "the log's own key must be named after the origin")
    return sign_note(checkpoint.body(), signers)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    checkpoint: Checkpoint
    verified_by: tuple[NoteVerifier, ...]
    note: bytes


def open_checkpoint(data: bytes, verifiers: Iterable[NoteVerifier], origin: str | None = None) -> VerifiedCheckpoint:
    """Verify a signed checkpoint. Its origin must be `origin`, or, by default, the name of a key that
    verified it (Verbatim names its log key after the origin)."""
    verified = open_note(data, verifiers)
    checkpoint = parse_checkpoint(verified.text)
    expected = {origin} if origin is not None else {v.name for v in verified.verified_by}
    if checkpoint.origin not in expected:
        raise CheckpointError(
            "checkpoint.origin_mismatch",
            f"the checkpoint is for log {checkpoint.origin!r}, not {' or '.join(sorted(expected))!r}",
        )
    return VerifiedCheckpoint(checkpoint, verified.verified_by, data)


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, verbatim
    extra: bytes | None = None

    def encode(self) -> bytes:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.hashes)
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Split a tlog proof into its parts, strictly per tlog-proof (the checkpoint is checked by the caller)."""
    header, rest = _line(data, "the header")
    if header != TLOG_PROOF_HEADER:
        raise CheckpointError("proof.malformed", f"a tlog proof starts with {TLOG_PROOF_HEADER!r}")
    line, rest = _line(rest, "the index line")
    extra = None
    if line.startswith("extra "):
        extra = _canonical_b64(line[len("extra ") :], "the extra data", "proof.malformed")
        line, rest = _line(rest, "the index line")
    if not line.startswith("index "):
        raise CheckpointError("proof.malformed", "the tlog proof has no index line")
    index = _decimal(line[len("index ") :], "the index", "proof.malformed")
    hashes: list[bytes] = []
    while True:
        line, rest = _line(rest, "the blank line before the checkpoint")
        if not line:
            break
        if len(hashes) == _MAX_PROOF_HASHES:
            raise CheckpointError("proof.malformed", f"an inclusion proof has at most {_MAX_PROOF_HASHES} hashes")
        value = _canonical_b64(line, f"proof hash {len(hashes)}", "proof.malformed")
        if len(value) != HASH_SIZE:
            raise CheckpointError("proof.malformed", f"proof hash {len(hashes)} is {len(value)} bytes, not 32")
        hashes.append(value)
    if not rest:
        raise CheckpointError("proof.malformed", "the tlog proof carries no checkpoint")
    return TlogProof(index, tuple(hashes), rest, extra)


def _line(data: bytes, what: str) -> tuple[str, bytes]:
    end = data.find(b"\n")
    if end < 0:
        raise CheckpointError("proof.malformed", f"the tlog proof ends before {what}")
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise CheckpointError("proof.malformed", f"{what} is not ASCII") from None
    return line, data[end + 1 :]


__all__ = [
    "TLOG_PROOF_HEADER",
    "Checkpoint",
    "CheckpointError",
    "TlogProof",
    "VerifiedCheckpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_tlog_proof",
    "sign_checkpoint",
]
