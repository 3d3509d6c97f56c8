"""Finding 1 of issue 13 on a recording sealed in parts (issue 14: a continuation sealed after a salvage).

Every part is its own sealed manifest with its own sealed objects (version ids, whole and chunk hashes). The
compliance API reads media through the parts: the access copy of the newest part (it covers every part), the
evidence of the part asked for, each by its sealed version and checked against the part's manifest; the recording
page checks every part. Service-layer tests over the in-memory stores, which, unlike Azurite, keep versions: a
new current version written under a sealed name is simply not what is served.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from devstack.testkit.captures import speech, stage_capture
from tests.lifecycle.events import T0, continued, started, stopped
from tests.lifecycle.test_service import AnsweringRecorder, run_to_seal
from tests.lifecycle.test_service import deps as deps  # the lifecycle's in-memory dependencies
from verbatim.api.service import ComplianceApi
from verbatim.contracts.evidence import RecordingManifest
from verbatim.evidence.sealed import EvidenceTampered
from verbatim.ledger.access import AccessLog
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.audit import InMemoryAuditLog, InMemoryAuditReader
from verbatim.platform.auth import Principal
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore
from verbatim.search.index import InMemoryRecordingIndex

AUDITOR = Principal(subject="auditor-1", name="Ann Auditor", roles=frozenset({"Compliance.Auditor"}), delegated=True)
REASON = "Case 13: parts"

__all__ = ["deps"]


def sealed_in_two_parts(deps: LifecycleDeps) -> str:
    """The continuation flow of tests/lifecycle/test_service.py: part 0 salvaged, part 1 the recorder's rest."""
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    pcm = speech(12)
    captures = deps.staging
    assert isinstance(captures, InMemoryBlobStore)
    lease = "recorder-lease"
    captures.acquire_lease(f"{recording_id}/g0/audio.flac", lease)
    stage_capture(captures, recording_id, pcm, commit=False, started_at=T0, blocks_range=(0, 3), lease_id=lease)
    captures.delete(f"{recording_id}/g0/capture.json")
    record_event(deps.store, started(recording_id, heartbeat=5.0))
    deps.liveness = AnsweringRecorder("unreachable")
    deps.clock = lambda: T0 + timedelta(seconds=60)
    check = activities.check_recording(deps, recording_id)
    activities.salvage(deps, recording_id, reason=check.reason, evidence=check.evidence)
    run_to_seal(deps, recording_id)
    rest = stage_capture(captures, recording_id, pcm, started_at=T0, blocks_range=(3, None), generation=1)
    first_sample = rest.manifest.track().blocks[0].start_sample
    record_event(deps.store, continued(recording_id, generation=1, first_block=3, first_sample=first_sample, kept=3))
    record_event(deps.store, stopped(recording_id, rest.manifest.track().sha256, 12.0, sequence=5, generation=1))
    run_to_seal(deps, recording_id, part=1)
    return recording_id


def api_over(deps: LifecycleDeps, audit: InMemoryAuditLog) -> ComplianceApi:
    store = deps.store
    assert isinstance(store, InMemoryRecordingStore)
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    return ComplianceApi(
        index=InMemoryRecordingIndex(),
        recordings=InMemoryRecordingFinder(lambda: [record for _, record in store.docs.values()]),
        verdicts=InMemoryVerdictStore(),
        recording_blobs=deps.recordings,
        ledger=ledger,
        access=AccessLog(ledger=ledger, audit=audit),
        reporter=None,  # type: ignore[arg-type]  # reports are not read here
        audit_reader=InMemoryAuditReader(audit),
        chunk_bytes=64 * 1024,
    )


@pytest.fixture
def two_parts(deps: LifecycleDeps) -> Iterator[tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi]]:
    recording_id = sealed_in_two_parts(deps)
    audit = InMemoryAuditLog()
    yield deps, recording_id, audit, api_over(deps, audit)


def _manifest(deps: LifecycleDeps, name: str) -> RecordingManifest:
    return RecordingManifest.model_validate_json(deps.recordings.read(name))


def _tampered_events(audit: InMemoryAuditLog) -> list[str]:
    return [e.action for e in audit.events if e.category == "security" and e.action == "evidence.tampered"]


def test_every_part_keeps_its_sealed_manifest_version_and_every_object_its_chunk_hashes(
    two_parts: tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi],
) -> None:
    deps, recording_id, _, _ = two_parts
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None and len(record.seal.parts) == 2
    for part in record.seal.parts:
        assert part.manifest_version_id is not None  # the in-memory store keeps versions, as Azure does
        manifest = _manifest(deps, part.manifest_blob)
        for ref in (*manifest.evidence, manifest.access_copy):
            assert ref is not None and ref.version_id is not None and ref.chunks is not None
            assert len(ref.chunks.sha256) == -(-ref.bytes // ref.chunks.chunk_bytes)
    newest = _manifest(deps, record.seal.parts[1].manifest_blob).access_copy
    assert newest is not None and record.seal.access_copy_version_id == newest.version_id


def test_a_new_current_version_under_a_sealed_name_of_either_part_is_not_what_is_served(
    two_parts: tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi],
) -> None:
    deps, recording_id, _, api = two_parts
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    part1 = _manifest(deps, record.seal.parts[1].manifest_blob)
    part0 = _manifest(deps, record.seal.parts[0].manifest_blob)
    assert part1.access_copy is not None
    sealed_access = deps.recordings.read(part1.access_copy.blob_name, version_id=part1.access_copy.version_id)
    sealed_evidence_1 = deps.recordings.read(part1.track().blob_name, version_id=part1.track().version_id)
    # What Storage Blob Data Contributor on the container allows: a new current version of each sealed name.
    for name in (part1.access_copy.blob_name, part1.track().blob_name, part0.track().blob_name):
        deps.recordings.write(name, b"OggS substitute " * 100, overwrite=True)

    access = api.media(recording_id, "access", None, AUDITOR, REASON)
    assert access.status == 200 and access.body == sealed_access  # the newest part's sealed copy, every part
    evidence = api.media(recording_id, "evidence", "bytes=0-1023", AUDITOR, REASON, part=1)
    assert evidence.status == 206 and evidence.body == sealed_evidence_1[:1024]
    first = api.media(recording_id, "evidence", None, AUDITOR, REASON)
    assert first.body == deps.recordings.read(part0.track().blob_name, version_id=part0.track().version_id)
    assert api.detail(recording_id, AUDITOR, REASON).integrity == "intact"


def test_a_sealed_version_of_a_continuation_gone_is_refused_and_the_recording_reported_tampered(
    two_parts: tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi],
) -> None:
    deps, recording_id, audit, api = two_parts
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    part1 = _manifest(deps, record.seal.parts[1].manifest_blob)
    evidence_1 = part1.track()
    original = deps.recordings.read(evidence_1.blob_name, version_id=evidence_1.version_id)
    # The sealed version itself replaced (what only a broken WORM allows): same name, same size, one byte changed.
    forged = bytearray(original)
    forged[len(forged) // 2] ^= 0xFF
    assert deps.recordings.delete(evidence_1.blob_name)
    deps.recordings.write(evidence_1.blob_name, bytes(forged))

    with pytest.raises(EvidenceTampered) as refused:
        api.media(recording_id, "evidence", None, AUDITOR, REASON, part=1)
    assert refused.value.status == 409 and evidence_1.blob_name in refused.value.detail
    # Part 0 is untouched and still served.
    assert api.media(recording_id, "evidence", "bytes=0-99", AUDITOR, REASON, part=0).status == 206
    detail = api.detail(recording_id, AUDITOR, REASON)
    assert detail.integrity == "tampered"
    assert any(problem.startswith("part 1: evidence track") for problem in detail.integrity_problems)
    assert detail.parts is not None and [p.part for p in detail.parts] == [0, 1]
    assert len(_tampered_events(audit)) == 2  # the refused read and the page that showed it


def test_a_continuation_manifest_changed_is_never_trusted(
    two_parts: tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi],
) -> None:
    deps, recording_id, audit, api = two_parts
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    name = record.seal.parts[1].manifest_blob
    body = deps.recordings.read(name)
    assert deps.recordings.delete(name)
    deps.recordings.write(name, body.replace(b'"part": 1', b'"part":  1'))

    with pytest.raises(EvidenceTampered) as refused:
        api.media(recording_id, "access", None, AUDITOR, REASON)
    assert "manifest" in refused.value.detail
    detail = api.detail(recording_id, AUDITOR, REASON)
    assert detail.integrity == "tampered" and detail.parts is not None
    assert detail.parts[1].manifest is None and detail.parts[1].manifest_matches_ledger is False
    assert detail.parts[0].manifest is not None
    assert len(_tampered_events(audit)) == 2


def test_a_part_the_recording_does_not_have_is_not_found(
    two_parts: tuple[LifecycleDeps, str, InMemoryAuditLog, ComplianceApi],
) -> None:
    _, recording_id, _, api = two_parts
    from verbatim.platform.errors import NotFound

    with pytest.raises(NotFound):
        api.media(recording_id, "evidence", None, AUDITOR, REASON, part=2)
