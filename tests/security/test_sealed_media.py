"""Finding 1 of issue 13: the API serves only what was sealed.

The attack, as the review did it on the local stack: with write access to the recordings container (what the
recorder VM's identity has), upload a different Ogg/Opus file under a sealed recording's access-copy name (and
other bytes under its evidence name). Before the fix the API served the substitute as that recording while the
recording page showed the seal as valid. Now every read is by the sealed version and checked against the seal's
hashes: the substitute is refused (409 problem+json), the recording page says `tampered`, and each detection is
a security event in the audit trail. Against the local Functions host, Azurite and the Cosmos emulator.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.world import SealedCall, seal_recording
from tests.security.conftest import AUDITOR, OFFICER, REASON, Stack
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.platform import layout
from verbatim.wiring import container_for


def _record(stack: Stack, recording_id: str) -> RecordingRecord:
    found = container_for(stack.settings).recording_finder.get(recording_id)
    assert found is not None and found.seal is not None
    return found


def _overwrite(stack: Stack, blob_name: str, data: bytes) -> None:
    """What an identity with Storage Blob Data Contributor on the container can do."""
    container_for(stack.settings).recording_blobs.write(blob_name, data, overwrite=True)


def _security_events(stack: Stack, recording_id: str) -> list[dict[str, Any]]:
    audit = container_for(stack.settings).cosmos(layout.AUDIT)
    return list(
        audit.query_items(
            "SELECT * FROM c WHERE c.category = 'security' AND c.action = 'evidence.tampered' AND c.target = @t",
            parameters=[{"name": "@t", "value": f"recording:{recording_id}"}],
            enable_cross_partition_query=True,
        )
    )


@pytest.fixture
def fresh(stack: Stack) -> SealedCall:
    """A recording of this test's own, sealed by the lifecycle's activities."""
    return seal_recording(stack.settings, seconds=20.0)


def test_a_substituted_access_copy_is_refused_and_the_recording_reported_tampered(
    stack: Stack, fresh: SealedCall
) -> None:
    officer = stack.token(OFFICER)
    media = f"/v1/recordings/{fresh.recording_id}/media?copy=access"
    before = stack.get(media, officer, headers=REASON)
    assert before.status_code == 200 and before.content == fresh.access_bytes
    assert stack.get(f"/v1/recordings/{fresh.recording_id}", officer, headers=REASON).json()["integrity"] == "intact"

    # Another recording's access copy: a valid Ogg/Opus file, of the wrong call.
    assert stack.world.sealed is not None
    substitute = stack.world.sealed.access_bytes
    assert substitute != fresh.access_bytes
    seal = _record(stack, fresh.recording_id).seal
    assert seal is not None and seal.access_copy_blob is not None
    _overwrite(stack, seal.access_copy_blob, substitute)

    whole = stack.get(media, officer, headers=REASON)
    ranged = stack.get(media, officer, headers={**REASON, "Range": "bytes=0-1023"})
    for refused in (whole, ranged):
        assert refused.status_code == 409, refused.text[:200]
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert "sealed" in refused.json()["detail"]
        assert substitute[:64] not in refused.content

    detail = stack.get(f"/v1/recordings/{fresh.recording_id}", officer, headers=REASON).json()
    assert detail["integrity"] == "tampered"
    assert any("access copy" in problem for problem in detail["integrityProblems"])
    assert len(_security_events(stack, fresh.recording_id)) >= 3


def test_changed_bytes_in_one_chunk_are_caught_by_a_range_read_of_that_chunk_only(
    stack: Stack, fresh: SealedCall
) -> None:
    auditor = stack.token(AUDITOR)
    media = f"/v1/recordings/{fresh.recording_id}/media?copy=evidence"
    record = _record(stack, fresh.recording_id)
    assert record.seal is not None
    evidence = fresh.evidence_bytes
    chunk = 256 * 1024
    assert len(evidence) > chunk + 4096, "the evidence must span at least two sealed chunks"
    # Same size, one byte changed in the second chunk: the size and the first chunk still look right.
    forged = bytearray(evidence)
    forged[chunk + 100] ^= 0xFF
    _overwrite(stack, record.seal.evidence_blob, bytes(forged))

    first = stack.get(media, auditor, headers={**REASON, "Range": "bytes=0-1023"})
    assert first.status_code == 206 and first.content == evidence[:1024]  # an untouched chunk is still served
    second = stack.get(media, auditor, headers={**REASON, "Range": f"bytes={chunk + 50}-{chunk + 150}"})
    assert second.status_code == 409 and "chunk 1" in second.json()["detail"]
    assert stack.get(media, auditor, headers=REASON).status_code == 409  # the whole object
    detail = stack.get(f"/v1/recordings/{fresh.recording_id}", auditor, headers=REASON).json()
    assert detail["integrity"] == "tampered"
    assert any("evidence track mixed" in problem for problem in detail["integrityProblems"])


def test_a_deleted_sealed_object_is_reported_missing_and_a_changed_manifest_is_never_trusted(
    stack: Stack, fresh: SealedCall
) -> None:
    officer = stack.token(OFFICER)
    record = _record(stack, fresh.recording_id)
    assert record.seal is not None
    blobs = container_for(stack.settings).recording_blobs
    # A manifest edited to name the substitute's hashes: it no longer hashes to what the index and ledger hold.
    manifest = blobs.read(record.seal.manifest_blob)
    _overwrite(stack, record.seal.manifest_blob, manifest.replace(b'"status": "complete"', b'"status": "complete" '))
    media = stack.get(f"/v1/recordings/{fresh.recording_id}/media?copy=access", officer, headers=REASON)
    assert media.status_code == 409 and "manifest" in media.json()["detail"]
    detail = stack.get(f"/v1/recordings/{fresh.recording_id}", officer, headers=REASON).json()
    assert detail["integrity"] == "tampered" and detail["manifest"] is None
    # The original manifest back, the access copy gone.
    _overwrite(stack, record.seal.manifest_blob, manifest)
    assert record.seal.access_copy_blob is not None
    assert blobs.delete(record.seal.access_copy_blob)
    media = stack.get(f"/v1/recordings/{fresh.recording_id}/media?copy=access", officer, headers=REASON)
    assert media.status_code == 409 and "missing" in media.json()["detail"]
    detail = stack.get(f"/v1/recordings/{fresh.recording_id}", officer, headers=REASON).json()
    assert detail["integrity"] == "tampered"
    assert any("missing" in problem for problem in detail["integrityProblems"])


def test_the_index_keeps_the_sealed_versions_and_the_manifest_the_chunk_hashes(stack: Stack, fresh: SealedCall) -> None:
    seal = _record(stack, fresh.recording_id).seal
    assert seal is not None and seal.access_copy_sha256 is not None
    detail = stack.get(f"/v1/recordings/{fresh.recording_id}", stack.token(AUDITOR), headers=REASON).json()
    manifest = detail["manifest"]
    # The access copy is sealed after the evidence, by the access-copy manifest (recording manifest v2).
    assert manifest["access_copy"] is None
    access = detail["accessManifest"]["access_copy"]
    # Azurite keeps no versions, so the ids are None here; in Azure they are what every read names
    # (tests/unit/test_sealed_reads.py reads by version from the in-memory store, which keeps versions).
    assert seal.evidence_version_id == manifest["evidence"][0]["version_id"]
    assert seal.access_copy_version_id == access["version_id"]
    assert seal.access_copy_sha256 == access["sha256"]
    for ref in (manifest["evidence"][0], access):
        chunks = ref["chunks"]
        assert chunks["chunk_bytes"] == 256 * 1024
        assert len(chunks["sha256"]) == -(-ref["bytes"] // chunks["chunk_bytes"])
