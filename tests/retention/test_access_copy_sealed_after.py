"""Issue 22: a recording whose access copy is sealed after its evidence (recording manifest v2) is retained,
held and deleted as one: the access copy and its access-copy manifest are WORM until the retention date, a hold
placed between the two seals covers them, and the deletion certificate certifies them with their sealed hashes
(which `verbatim verify` checks against the `access_copy.sealed` entry)."""

from __future__ import annotations

from datetime import timedelta

from tests.retention.world import CLIENT_PHONE, T0, TRADER, RetentionWorld, phone_participant
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.retention import DeletionCertificate, HoldRequest, Officer
from verbatim.evidence.verify import verify_recording
from verbatim.platform.blobs import AzureBlobStore

OFFICER = Officer(subject="officer-a", name="Olivia Officer")
SEALED_FILES = {"audio.flac", "capture.json", "manifest.json", "access.opus", "access.json"}


def test_the_access_copy_sealed_after_the_evidence_is_worm_until_the_date_and_deleted_with_a_certificate(
    world: RetentionWorld,
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")  # 30 days
    world.transport.requests.clear()
    record = world.seal(access_after=True, others=[phone_participant("p2", CLIENT_PHONE)])
    assert record.seal is not None and record.seal.access_copy_blob is not None
    assert {name.rsplit("/", 1)[1] for name in world.blobs_of(record.id)} == SEALED_FILES
    until = {
        r.url.split("?")[0].rsplit("/", 1)[1]: r.headers["x-ms-immutability-policy-until-date"]
        for r in world.worm_requests(record.id)
        if "comp=immutabilityPolicies" in r.url
    }
    assert set(until) == SEALED_FILES and len(set(until.values())) == 1  # the copy: the evidence's date

    world.clock.set(T0 + timedelta(days=30, minutes=1))
    report = world.runtime.sweep.run()
    assert report.deleted == [record.id] and world.blobs_of(record.id) == []

    ledger = world.runtime.ledger
    entries = ledger.entries_for_subject(f"recording:{record.id}")
    assert [e.kind for e in entries] == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED, EntryKind.DELETED]
    _, access_sealed, deleted = entries
    by_name = {b.blob.rsplit("/", 1)[1]: b for b in DeletionCertificate.model_validate(deleted.details).deleted}
    assert set(by_name) == SEALED_FILES
    assert by_name["access.opus"].role == "access_copy"
    assert by_name["access.opus"].sha256 == access_sealed.details["access_copy"]["sha256"]  # type: ignore[index,call-overload]
    assert by_name["access.json"].sha256 == access_sealed.details["manifest"]["sha256"]  # type: ignore[index,call-overload]
    ledger.checkpoint()
    result = verify_recording(record.id, AzureBlobStore(world.runtime.media), ledger)
    assert result.ok, result.findings


def test_a_hold_placed_between_the_two_seals_covers_the_access_copy(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")

    def place_hold(recording_id: str) -> None:
        placed = world.runtime.holds.create(
            HoldRequest(matter_id="M-2025-022", description="between the seals", custodians=[TRADER[1]]), OFFICER
        )
        assert placed.application is not None and placed.application.newly_held == [recording_id]
        world.transport.requests.clear()

    record = world.seal(access_after=True, between=place_hold)

    # The access copy and its manifest were written after the hold: the access seal applies it to them.
    held = {
        r.url.split("?")[0].rsplit("/", 1)[1]
        for r in world.worm_requests(record.id)
        if "comp=legalhold" in r.url and r.headers["x-ms-legal-hold"] == "true"
    }
    assert {"access.opus", "access.json"} <= held
    entries = world.runtime.ledger.entries_for_subject(f"recording:{record.id}")
    access_sealed = next(e for e in entries if e.kind == EntryKind.ACCESS_COPY_SEALED)
    assert access_sealed.details["legal_holds"] != []

    world.clock.set(T0 + timedelta(days=40))
    report = world.runtime.sweep.run()
    assert report.deleted == [] and report.held == 1
    assert {name.rsplit("/", 1)[1] for name in world.blobs_of(record.id)} == SEALED_FILES
