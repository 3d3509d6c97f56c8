"""Checking a deletion certificate against the seal it ends: what `verbatim verify` runs for a deleted
recording, whose media are gone by design. The certificate must name the sealed entry and carry the same
hashes the seal recorded for the manifest, the evidence and the access copy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from verbatim.contracts.retention import DeletionCertificate
from verbatim.ledger.chain import Finding
from verbatim.ledger.writer import LedgerRecord


def check_certificate(
    sealed: LedgerRecord, deleted: LedgerRecord, access_sealed: Sequence[LedgerRecord] = ()
) -> tuple[list[Finding], str]:
    """(findings, a note saying what was checked). `access_sealed`: the `access_copy.sealed` entries of a recording
    whose access copies were sealed after its evidence (recording manifest v2); their objects are certified too."""
    try:
        certificate = DeletionCertificate.model_validate(deleted.details)
    except ValidationError:
        return [Finding("certificate.unreadable", f"ledger entry {deleted.seq} is not a deletion certificate")], ""
    findings: list[Finding] = []

    def mismatch(what: str) -> None:
        findings.append(
            Finding("certificate.mismatch", f"the deletion certificate (entry {deleted.seq}) {what}", deleted.seq)
        )

    if certificate.sealed_seq not in (None, sealed.seq):
        mismatch(f"names sealed entry {certificate.sealed_seq}, but the recording was sealed in entry {sealed.seq}")
    manifest: dict[str, Any] = sealed.details.get("manifest") or {}  # type: ignore[assignment]
    if manifest.get("sha256") and certificate.manifest_sha256 != manifest.get("sha256"):
        mismatch("gives a manifest hash other than the one sealed")
    # The sealed objects were in `recordings` (a version-1 certificate names no container: all it deleted was there).
    certified = {(b.blob, b.sha256) for b in certificate.deleted if b.container == "recordings"}
    sealed_objects: list[dict[str, Any]] = list(sealed.details.get("evidence") or [])  # type: ignore[arg-type]
    access = sealed.details.get("access_copy")
    if isinstance(access, dict):
        sealed_objects.append(access)
    if manifest:
        sealed_objects.append(manifest)
    for entry in access_sealed:
        for key in ("manifest", "access_copy", "video_access_copy"):
            item = entry.details.get(key)
            if isinstance(item, dict):
                sealed_objects.append(item)
                streams = item.get("streams") if key == "video_access_copy" else None
                sealed_objects += [s for s in streams or [] if isinstance(s, dict)]  # type: ignore[union-attr]
    for item in sealed_objects:
        if (str(item.get("blob")), item.get("sha256")) not in certified:
            mismatch(f"does not certify the deletion of {item.get('blob')} with its sealed hash")
    absent = [b.blob for b in certificate.deleted if not b.found]
    note = (
        f"deletion certificate (entry {deleted.seq}, {certificate.deleted_at}): {certificate.reason}, class "
        f"{certificate.retention_class}, {len(certificate.deleted)} objects whose hashes match the seal"
        + (f"; already absent when the deletion began: {', '.join(absent)}" if absent else "")
    )
    return findings, note
