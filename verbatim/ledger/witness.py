"""Witness cosignatures on checkpoints (C2SP tlog-cosignature v1 and the tlog-witness protocol's bodies), no I/O.

A witness keeps, per log, the largest checkpoint it has verified; asked to cosign a new one with a consistency
proof from that size, it checks the proof and signs "as of time t, this is the largest consistent tree I have
seen". A checkpoint cosigned by a quorum of independent witnesses cannot have been shown to one party while
another saw a different tree (a split view), even by someone holding the log's own signing key.

- `Cosigner`: an Ed25519 witness key that signs cosignature/v1 (the local witness of the devstack, tests).
- `WitnessPolicy`: the witnesses a verifier trusts and how many of them must have cosigned.
- `check_cosignatures`: the witnesses whose cosignatures on a checkpoint verify, or why the policy is not met.
- `add_checkpoint_body` / `parse_add_checkpoint_body`: the add-checkpoint request body (old size line,
  consistency proof lines, empty line, checkpoint), both ends of it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from verbatim.ledger.note import (
    NoteError,
    NoteSignature,
    NoteVerifier,
    cosignature_time,
    cosigned_message,
    parse_note,
)

MAX_PROOF_LINES = 63  # tlog-witness: "The client MUST NOT send more than 63 consistency proof lines"
DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Cosigner:
    """A witness's Ed25519 key, signing cosignature/v1 as `name`."""

    name: str
    private_key: ed25519.Ed25519PrivateKey

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.for_cosigner(self.name, self.private_key.public_key())

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """The cosignature line's content over the checkpoint text (the note body, final newline included)."""
        signature = self.private_key.sign(cosigned_message(text, timestamp))
        return NoteSignature(self.name, self.verifier.key_id, timestamp.to_bytes(8, "big") + signature)

    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class Cosigned:
    """A witness whose cosignature on the checkpoint verified, and the time it signed at."""

    name: str
    key_id: int
    time: int


@dataclass(frozen=True)
class WitnessPolicy:
    """Trust `witnesses` (cosignature/v1 verifier keys); a checkpoint needs `quorum` of them."""

    witnesses: tuple[NoteVerifier, ...]
    quorum: int

    def __post_init__(self) -> None:
        if any(not w.is_cosigner for w in self.witnesses):
            raise NoteError("note.bad_key", "a witness key is a cosignature/v1 key (signature type 0x04)")
        if len({(w.name, w.key_id) for w in self.witnesses}) != len(self.witnesses):
            raise NoteError("note.bad_key", "a witness is listed twice")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise NoteError("note.bad_key", f"a quorum of {self.quorum} of {len(self.witnesses)} witnesses")

    @classmethod
    def from_vkeys(cls, vkeys: Sequence[str], quorum: int | None = None) -> WitnessPolicy:
        """Witnesses by their vkeys; the quorum defaults to all of them."""
        witnesses = tuple(NoteVerifier.from_vkey(v) for v in vkeys)
        return cls(witnesses, len(witnesses) if quorum is None else quorum)


def check_cosignatures(note: bytes, policy: WitnessPolicy) -> list[Cosigned]:
    """The policy's witnesses that cosigned `note`, each once. A cosignature that names a trusted witness but
    does not verify is an error (the note or the cosignature was altered); fewer than the quorum is an error.
    The log's own signature is not looked at here: `open_checkpoint` checks it."""
    parsed = parse_note(note)
    known = {(w.name, w.key_id): w for w in policy.witnesses}
    found: dict[tuple[str, int], Cosigned] = {}
    for signature in parsed.signatures:
        witness = known.get((signature.name, signature.key_id))
        if witness is None:
            continue
        if not witness.verify(parsed.text.encode(), signature.signature):
            raise NoteError(
                "note.cosignature_invalid",
                f"the cosignature of witness {signature.name} (key {signature.key_id:08x}) does not match the "
                "checkpoint — the checkpoint or the cosignature was altered",
            )
        found.setdefault(
            (signature.name, signature.key_id),
            Cosigned(signature.name, signature.key_id, cosignature_time(signature.signature)),
        )
    if len(found) < policy.quorum:
        names = ", ".join(w.name for w in policy.witnesses)
        raise NoteError(
            "checkpoint.witness_quorum",
            f"the checkpoint is cosigned by {len(found)} of the trusted witnesses ({names}); {policy.quorum} needed",
        )
    return list(found.values())


# --- the add-checkpoint request body (c2sp.org/tlog-witness) ---


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], checkpoint: bytes) -> bytes:
    """`old <size>`, one base64 hash per line, an empty line, then the signed checkpoint."""
    if len(proof) > MAX_PROOF_LINES:
        raise NoteError("witness.bad_request", f"a consistency proof of {len(proof)} hashes is too long")
    lines = [f"old {old_size}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"]
    return "".join(lines).encode() + checkpoint


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes


def parse_add_checkpoint_body(body: bytes) -> AddCheckpoint:
    """Split an add-checkpoint body; NoteError(`witness.bad_request`) when it is not one."""
    head, blank, checkpoint = body.partition(b"\n\n")
    if not blank:
        raise NoteError("witness.bad_request", "no empty line between the old size and proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise NoteError("witness.bad_request", "the old size and proof lines are not ASCII") from None
    first = lines[0]
    if not first.startswith("old ") or not DECIMAL.fullmatch(first[4:]):
        raise NoteError("witness.bad_request", "the first line is not `old <size>`")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise NoteError("witness.bad_request", "more than 63 consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("witness.bad_request", "a consistency proof line is not base64") from None
        if len(value) != 32:
            raise NoteError("witness.bad_request", "a consistency proof line is not a SHA-256 hash")
        proof.append(value)
    return AddCheckpoint(int(first[4:]), tuple(proof), checkpoint)


def parse_signature_lines(body: bytes) -> list[NoteSignature]:
    """The note signature lines of an add-checkpoint response (each `— <name> <base64>` and a newline)."""
    text = body.decode("utf-8", errors="replace")
    if not text.endswith("\n") or not text.strip():
        raise NoteError("witness.bad_response", "the witness's answer is not signature lines")
    # A signature block parses as a note's: borrow that parser with a one-line placeholder text.
    return list(parse_note(b"x\n\n" + body).signatures)


__all__ = [
    "AddCheckpoint",
    "Cosigned",
    "Cosigner",
    "WitnessPolicy",
    "add_checkpoint_body",
    "check_cosignatures",
    "parse_add_checkpoint_body",
    "parse_signature_lines",
]
