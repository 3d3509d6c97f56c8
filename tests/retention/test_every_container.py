"""A deletion under retention leaves nothing of the recording in any container the app writes for it, and its
certificate names the container of every object it deleted.

The app writes a recording's data into three containers: `recordings` (the sealed evidence, access copies and
manifests), `captures` (what the recorder staged and committed, per capture generation: the lifecycle keeps a
*salvaged* generation there, since its recorder may not know yet that it was fenced) and the lifecycle's scratch
container (finalised track lists, salvage manifests, access-copy chunks). Export packages are copies made for a
disclosure and follow their own expiry (docs/exports.md), so they are not the deletion's to remove. Run on Azurite
and the Cosmos emulator, with recordings sealed by the lifecycle's own activities."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.retention.world import T0, TRADER, RetentionWorld
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.retention import DeletionCertificate, HoldRequest, Officer
from verbatim.evidence import access_copy, names
from verbatim.evidence.certificates import check_certificate
from verbatim.evidence.verify import verify_recording
from verbatim.lifecycle.activities import finalised_name, salvage_name
from verbatim.platform.blobs import AzureBlobStore


def stored(world: RetentionWorld, recording_id: str) -> dict[str, list[str]]:
    """Every object of the recording, every version and uncommitted blob included, by container."""
    captures = world.container.captures.list_blobs(
        name_starts_with=names.capture_folder(recording_id), include=["versions", "uncommittedblobs"]
    )
    scratch = [
        b.name
        for b in world.container.scratch.list_blobs(include=["versions"])
        if recording_id in b.name  # finalised/<id>.json, salvaged/<id>/g<n>.json, access-chunks/<id>/...
    ]
    return {
        "recordings": world.blobs_of(recording_id),
        "captures": sorted(b.name for b in captures),
        "scratch": sorted(scratch),
    }


def certificate_of(world: RetentionWorld, recording_id: str) -> DeletionCertificate:
    entry = next(
        e for e in world.runtime.ledger.entries_for_subject(f"recording:{recording_id}") if e.kind == EntryKind.DELETED
    )
    return DeletionCertificate.model_validate(entry.details)


def test_a_salvaged_capture_goes_with_the_recording_and_the_certificate_names_each_container(
    world: RetentionWorld,
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(salvaged=True, access_after=True)
    # An access-copy attempt that died half-way left a chunk in scratch, and the salvage manifest is still there.
    leftover = access_copy.chunk_blob_name(record.id, "f" * 64, 7)
    world.deps.scratch.write(leftover, b"opus", content_type="application/octet-stream")
    world.deps.scratch.write(salvage_name(record.id, 0), b"{}", content_type="application/json")
    before = stored(world, record.id)
    # The lifecycle keeps the salvaged generation: its recorder may not know yet that it was fenced.
    assert f"{record.id}/g0/audio.flac" in before["captures"]
    assert f"{record.id}/g0/fenced" in before["captures"]
    assert before["scratch"] == sorted([leftover, salvage_name(record.id, 0)])
    world.clock.set(T0 + timedelta(days=31))

    assert world.runtime.sweep.run().deleted == [record.id]

    assert stored(world, record.id) == {"recordings": [], "captures": [], "scratch": []}
    certificate = certificate_of(world, record.id)
    assert certificate.schema_version == 2
    by_container = {c: sorted(b.blob for b in certificate.deleted if b.container == c) for c in before}
    assert {c: sorted(set(n)) for c, n in by_container.items()} == {c: sorted(set(n)) for c, n in before.items()}
    # The sealed objects are certified in `recordings` with their sealed hashes; `verbatim verify` still accepts it.
    result = verify_recording(record.id, AzureBlobStore(world.runtime.media), world.runtime.ledger)
    assert result.ok, result.findings
    assert all(b.sha256 is None for b in certificate.deleted if b.container != "recordings")


def test_a_hold_keeps_the_salvaged_capture_too(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(salvaged=True)
    world.runtime.holds.create(
        HoldRequest(matter_id="M-1", description="matter", recording_ids=[record.id]), Officer(subject="officer-1")
    )
    before = stored(world, record.id)
    world.clock.set(T0 + timedelta(days=31))

    report = world.runtime.sweep.run()

    assert report.deleted == [] and report.held == 1
    assert stored(world, record.id) == before and before["captures"]


def test_a_deletion_that_died_after_its_claim_finishes_in_every_container_with_one_certificate(
    world: RetentionWorld,
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(salvaged=True)
    world.clock.set(T0 + timedelta(days=31))
    deleter = world.runtime.deleter
    real_delete = deleter._blobs.delete
    calls = {"n": 0}

    def dies_after_the_first_object(objects):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            real_delete(list(objects)[:1])
            raise RuntimeError("host killed")
        return real_delete(objects)

    deleter._blobs.delete = dies_after_the_first_object  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="host killed"):
        deleter.delete(record.id, reason="retention_expired", actor="sweep-1")
    assert world.record(record.id).status == "deleting"
    world.clock.set(T0 + timedelta(days=32))  # the claim is abandoned now

    deleter.delete(record.id, reason="retention_expired", actor="sweep-2")

    assert stored(world, record.id) == {"recordings": [], "captures": [], "scratch": []}
    certificates = [
        e for e in world.runtime.ledger.entries_for_subject(f"recording:{record.id}") if e.kind == EntryKind.DELETED
    ]
    assert len(certificates) == 1
    assert {b.container for b in certificate_of(world, record.id).deleted} == {"recordings", "captures"}
    assert finalised_name(record.id, 0) not in stored(world, record.id)["scratch"]


def test_a_version_1_certificate_without_containers_still_verifies_and_a_captured_copy_cannot_stand_in_for_evidence(
    world: RetentionWorld,
) -> None:
    """Certificates written before version 2 name no container (everything they deleted was in `recordings`): they
    read as such and still verify. An object certified in `captures` with the same name and hash as a sealed one
    does not count as the sealed one's deletion."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    world.clock.set(T0 + timedelta(days=31))
    world.runtime.sweep.run()
    sealed, deleted = world.runtime.ledger.entries_for_subject(f"recording:{record.id}")[:2]
    assert deleted.kind == EntryKind.DELETED

    version_1 = deleted.model_copy(deep=True)
    version_1.details["schema_version"] = 1
    version_1.details["deleted"] = [  # type: ignore[index]
        {k: v for k, v in b.items() if k != "container"}
        for b in version_1.details["deleted"]  # type: ignore[union-attr]
        if b["container"] == "recordings"  # type: ignore[index]
    ]
    old = DeletionCertificate.model_validate(version_1.details)
    assert old.schema_version == 1 and {b.container for b in old.deleted} == {"recordings"}
    assert check_certificate(sealed, version_1)[0] == []

    elsewhere = deleted.model_copy(deep=True)
    for b in elsewhere.details["deleted"]:  # type: ignore[union-attr]
        if str(b["blob"]).endswith("audio.flac"):  # type: ignore[index]
            b["container"] = "captures"  # type: ignore[index]
    findings, _ = check_certificate(sealed, elsewhere)
    assert [f.code for f in findings] == ["certificate.mismatch"] and "audio.flac" in findings[0].message


def test_blocks_a_recorder_staged_and_never_committed_go_too(world: RetentionWorld) -> None:
    """A blob that has only staged blocks (a recorder that died before it committed anything, here in a generation
    the lifecycle never heard of) is listed only with `include=uncommittedblobs`: the deletion lists it and removes
    it, and certifies it."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(salvaged=True)
    staged_only = names.capture_track_name(record.id, 1)
    world.container.captures.get_blob_client(staged_only).stage_block("YmxvY2stMDAwMDA=", b"fLaC staged audio")
    assert staged_only in stored(world, record.id)["captures"]
    assert staged_only not in [b.name for b in world.container.captures.list_blobs(name_starts_with=record.id)]
    world.clock.set(T0 + timedelta(days=31))

    assert world.runtime.sweep.run().deleted == [record.id]

    assert stored(world, record.id) == {"recordings": [], "captures": [], "scratch": []}
    assert staged_only in {b.blob for b in certificate_of(world, record.id).deleted if b.container == "captures"}
