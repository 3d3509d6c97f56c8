"""A recording's audit trail as an export attests it: every ledger entry about the recording before the export's
`exported` entry, which lists them (by index, with a digest of their leaf hashes) so a recipient can tell that
none was left out between the first and the last — something inclusion proofs alone cannot show.

The digest is SHA-256 over, for each entry in index order, its index (8 bytes, big-endian) and its RFC 9162 leaf
hash (32 bytes). Beyond `MAX_LISTED` entries the indexes are not listed (an entry holds at most 64 KiB); the count,
the first and last index and the digest still are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import JsonValue

from verbatim.contracts.exports import TrailAttestation
from verbatim.contracts.ledger import LogEntry

MAX_LISTED = 4000
EXPORTED = "exported"


def trail_digest(entries: Sequence[tuple[int, str]]) -> str:
    """SHA-256 of (index, leaf hash) pairs, in index order; leaf hashes as lowercase hex."""
    digest = hashlib.sha256()
    for index, leaf in sorted(entries):
        digest.update(index.to_bytes(8, "big") + bytes.fromhex(leaf))
    return digest.hexdigest()


def attest(entries: Sequence[LogEntry]) -> TrailAttestation:
    ordered = sorted(entries, key=lambda e: e.index)
    indexes = [e.index for e in ordered]
    return TrailAttestation(
        count=len(ordered),
        first=indexes[0] if indexes else None,
        last=indexes[-1] if indexes else None,
        indexes=indexes if len(indexes) <= MAX_LISTED else None,
        sha256=trail_digest([(e.index, e.leaf_hash) for e in ordered]),
    )


def exported_details(
    export_id: str, title: str | None, reason: str, trail: TrailAttestation, attempt: int
) -> dict[str, JsonValue]:
    """The `exported` entry: which export, why, and the trail it carries."""
    return {
        "export_id": export_id,
        "title": title,
        "reason": reason,
        "attempt": attempt,
        "trail": trail.model_dump(mode="json", exclude_none=True),
    }
