"""The anchor store: every signed checkpoint written again to a container the Function App can add to but not
change (in Azure: an append-only container under a *locked* time-based retention policy), with an RFC 3161
time stamp where a TSA is configured; and the check of a log against its anchors.

A log rewritten by someone who holds the signing key still verifies on its own, but it cannot produce a
consistency proof from an anchored checkpoint of the original tree to its own, and it cannot time-stamp its
forged checkpoints in the past. `check_anchors` is what `verbatim verify` runs.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.blobs import LogBlobConflict, LogBlobMissing, LogBlobs
from verbatim.ledger.log.maintenance import checkpoint_name
from verbatim.ledger.log.timestamps import Rfc3161Client, TimestampInvalid
from verbatim.ledger.merkle import ProofError, verify_consistency
from verbatim.ledger.note import NoteError, NoteVerifier

TIME_STAMP_SUFFIX = ".tsr"


@dataclass(frozen=True)
class AnchorFinding:
    code: str
    message: str
    size: int | None = None


class AnchorStore:
    """Implements the maintenance's `Anchor`: `checkpoints/<size>` and `checkpoints/<size>.tsr`."""

    def __init__(self, blobs: LogBlobs, tsa: Rfc3161Client | None = None) -> None:
        self.blobs = blobs
        self.tsa = tsa

    def anchor(self, size: int, note: bytes) -> None:
        name = checkpoint_name(size)
        if not self.blobs.create(name, note, "text/plain; charset=utf-8") and self.blobs.read(name) != note:
            raise LogBlobConflict(name)
        if self.tsa is not None:
            try:
                self.blobs.read(name + TIME_STAMP_SUFFIX)
            except LogBlobMissing:
                self.blobs.create(name + TIME_STAMP_SUFFIX, self.tsa.timestamp(note), "application/timestamp-reply")

    def sizes(self) -> list[int]:
        prefix = checkpoint_name(0)[:-1]
        return sorted(int(n[len(prefix) :]) for n in self.blobs.names(prefix) if n[len(prefix) :].isdigit())

    def read(self, size: int) -> tuple[bytes, bytes | None]:
        note = self.blobs.read(checkpoint_name(size))
        try:
            token: bytes | None = self.blobs.read(checkpoint_name(size) + TIME_STAMP_SUFFIX)
        except LogBlobMissing:
            token = None
        return note, token


class ConsistencySource(Protocol):
    """What `check_anchors` needs from the log under test (a `TransparencyLog` offers it)."""

    def consistency_hashes(self, old_size: int, new_size: int) -> list[bytes]: ...


def check_anchors(
    latest: bytes | None,
    proofs: ConsistencySource,
    anchors: AnchorStore,
    verifiers: Iterable[NoteVerifier],
    origin: str,
    *,
    require_timestamps: bool = False,
) -> tuple[list[AnchorFinding], list[str]]:
    """Check the log's latest checkpoint against every anchored one: signed by a trusted key, time-stamped
    (when a TSA is configured), and consistent with the log (the anchored tree is a prefix of the log's).
    Returns (findings, notes)."""
    trusted = list(verifiers)
    findings: list[AnchorFinding] = []
    notes: list[str] = []
    if latest is None:
        return [AnchorFinding("log.no_checkpoint", "the log has no signed checkpoint to check against anchors")], []
    try:
        current = open_checkpoint(latest, trusted, origin).checkpoint
    except NoteError as error:
        return [AnchorFinding("log.checkpoint_invalid", f"the log's latest checkpoint: {error}")], []
    sizes = anchors.sizes()
    if not sizes:
        notes.append("no anchored checkpoints yet")
    for size in sizes:
        note, token = anchors.read(size)
        try:
            anchored = open_checkpoint(note, trusted, origin).checkpoint
        except NoteError as error:
            findings.append(AnchorFinding("anchor.signature_invalid", f"anchored checkpoint {size}: {error}", size))
            continue
        if anchors.tsa is not None:
            if token is None and require_timestamps:
                message = f"anchored checkpoint {size} has no time stamp"
                findings.append(AnchorFinding("anchor.untimestamped", message, size))
            elif token is not None:
                try:
                    anchors.tsa.verify(token, note)
                except TimestampInvalid as error:
                    message = f"anchored checkpoint {size}: {error}"
                    findings.append(AnchorFinding("anchor.timestamp_invalid", message, size))
        if anchored.size > current.size:
            findings.append(
                AnchorFinding(
                    "anchor.beyond_log",
                    f"checkpoint {size} was anchored, but the log's latest checkpoint is of size {current.size}: "
                    "the log was truncated or replaced",
                    size,
                )
            )
            continue
        if anchored.size == 0:
            continue
        try:
            hashes = proofs.consistency_hashes(anchored.size, current.size)
            verify_consistency(anchored.size, current.size, anchored.root_hash, current.root_hash, hashes)
        except (ProofError, LookupError, ValueError) as error:
            findings.append(
                AnchorFinding(
                    "anchor.inconsistent",
                    f"the log (size {current.size}, root {base64.b64encode(current.root_hash).decode()[:12]}…) does "
                    f"not extend the tree anchored at size {size} (root "
                    f"{base64.b64encode(anchored.root_hash).decode()[:12]}…): the log was rewritten ({error})",
                    size,
                )
            )
    if sizes and not findings:
        notes.append(
            f"the log's checkpoint of size {current.size} extends all {len(sizes)} anchored checkpoints "
            f"(the oldest of size {sizes[0]}, the newest of size {sizes[-1]})"
        )
    return findings, notes
