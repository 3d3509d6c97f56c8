"""The retention sweep on simulated time against Azurite and the Cosmos emulator, on recordings sealed by the
lifecycle: nothing before the retention date; at it, media, access copy and manifest deleted, a tombstone with
no personal data and a deletion certificate that `verbatim verify` accepts; a hold placed before the sweep
saves a recording; one run at a time; a crashed run is continued and a half-done deletion finished."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests.retention.world import CLIENT_PHONE, SALES, T0, TRADER, RetentionWorld, phone_participant
from verbatim.cli import main as verbatim_cli
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.retention import DeletionCertificate, HoldRequest, Officer
from verbatim.evidence.verify import verify_recording
from verbatim.platform.blobs import AzureBlobStore
from verbatim.retention.lease import SWEEP_LEASE, LeaseState
from verbatim.retention.storage import RecordingBlobs

OFFICER = Officer(subject="officer-a", name="Olivia Officer")


def test_nothing_is_deleted_before_the_retention_date_and_at_it_the_sweep_deletes_with_a_certificate(
    world: RetentionWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")  # 30 days
    record = world.seal(access_copy=True, others=[phone_participant("p2", CLIENT_PHONE)])
    assert record.seal is not None and record.seal.retention_class == "cftc-oral"
    assert record.seal.retention_until == T0 + timedelta(days=30)
    before = world.blobs_of(record.id)
    assert {name.rsplit("/", 1)[1] for name in before} == {"audio.flac", "access.opus", "capture.json", "manifest.json"}

    world.clock.set(T0 + timedelta(days=29, hours=23))
    early = world.runtime.sweep.run()
    assert early.outcome == "completed" and early.deleted == [] and early.retained == 1
    assert world.blobs_of(record.id) == before

    world.clock.set(T0 + timedelta(days=30, minutes=1))
    report = world.runtime.sweep.run()
    assert report.outcome == "completed" and report.deleted == [record.id]
    assert world.blobs_of(record.id) == []

    tombstone = world.record(record.id)
    assert tombstone.status == "deleted"
    facts = tombstone.facts
    assert facts.observed_user is None and facts.participants == [] and facts.phone_numbers == []
    dumped = tombstone.model_dump_json()
    for personal in (TRADER[0], TRADER[1], CLIENT_PHONE, "Observed User"):
        assert personal not in dumped
    assert tombstone.seal is not None and tombstone.seal.evidence_sha256 == record.seal.evidence_sha256
    assert tombstone.deletion is not None and tombstone.deletion.reason == "retention_expired"

    ledger = world.runtime.ledger
    entries = ledger.entries_for_subject(f"recording:{record.id}")
    assert [e.kind for e in entries] == [EntryKind.SEALED, EntryKind.DELETED]
    sealed, deleted = entries
    certificate = DeletionCertificate.model_validate(deleted.details)
    assert tombstone.deletion.certificate_seq == deleted.seq
    assert certificate.retention_class == "cftc-oral" and certificate.retention_days == 30
    assert certificate.legal_basis == "CFTC Rule 1.35(a) (shortened for the tests)"
    assert "30 days from the call's start" in certificate.rule and certificate.worm == "emulator-not-enforced"
    assert certificate.deleted_at == "2025-04-02T09:01:00.000000Z"
    by_name = {b.blob.rsplit("/", 1)[1]: b for b in certificate.deleted}
    assert set(by_name) == {"audio.flac", "access.opus", "capture.json", "manifest.json"}
    assert by_name["audio.flac"].sha256 == record.seal.evidence_sha256
    assert by_name["manifest.json"].sha256 == record.seal.manifest_sha256
    assert by_name["access.opus"].sha256 == sealed.details["access_copy"]["sha256"]  # type: ignore[index]
    assert by_name["audio.flac"].role == "evidence" and by_name["capture.json"].role == "capture_manifest"

    ledger.checkpoint()
    result = verify_recording(record.id, AzureBlobStore(world.runtime.media), ledger)
    assert result.ok, result.findings
    assert result.deleted_by is not None and result.deleted_by.seq == deleted.seq
    assert any("deletion certificate" in note and "match the seal" in note for note in result.notes)
    capsys.readouterr()
    assert verbatim_cli(["verify", record.id]) == 0
    assert "VERIFIED" in capsys.readouterr().out

    # Idempotent: another run finds nothing and writes nothing.
    size = ledger.size()
    again = world.runtime.sweep.run()
    assert again.deleted == [] and again.evaluated == 0
    assert ledger.size() == size


def test_verify_rejects_a_certificate_whose_hashes_do_not_match_the_seal(world: RetentionWorld) -> None:
    from verbatim.evidence.certificates import check_certificate

    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    world.clock.set(T0 + timedelta(days=31))
    world.runtime.sweep.run()
    ledger = world.runtime.ledger
    sealed, deleted = ledger.entries_for_subject(f"recording:{record.id}")
    forged = deleted.model_copy(deep=True)
    forged.details["manifest_sha256"] = hashlib.sha256(b"another manifest").hexdigest()
    forged.details["deleted"] = [b for b in forged.details["deleted"] if not str(b["blob"]).endswith("audio.flac")]  # type: ignore[union-attr, index]
    findings, _ = check_certificate(sealed, forged)
    assert [f.code for f in findings] == ["certificate.mismatch", "certificate.mismatch"]
    assert "manifest hash" in findings[0].message and "audio.flac" in findings[1].message
    assert check_certificate(sealed, deleted)[0] == []


def test_a_hold_placed_before_the_sweep_saves_the_recording(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    world.assign_class(SALES[0], "cftc-oral")
    held = world.seal(user=TRADER)
    other = world.seal(user=SALES)
    world.clock.set(T0 + timedelta(days=10))
    world.transport.requests.clear()
    placed = world.runtime.holds.create(
        HoldRequest(matter_id="M-2025-001", description="FX probe", custodians=[TRADER[1]]), OFFICER
    )
    assert placed.application is not None and placed.application.newly_held == [held.id]

    # The blob legal hold Azure would enforce, on every object of the held recording.
    holds = world.worm_requests(held.id)
    assert len(holds) == 3 and all("comp=legalhold" in r.url for r in holds)
    assert {r.headers["x-ms-legal-hold"] for r in holds} == {"true"}
    assert world.worm_requests(other.id) == []

    world.clock.set(T0 + timedelta(days=40))
    report = world.runtime.sweep.run()
    assert report.deleted == [other.id] and report.held == 1
    assert world.record(held.id).status == "sealed" and len(world.blobs_of(held.id)) == 3
    assert world.record(other.id).status == "deleted"


def test_an_active_hold_not_yet_applied_still_saves_a_recording(world: RetentionWorld) -> None:
    """A hold whose application has not reached a recording (e.g. it was sealed while the hold was placed)
    is found by the deleter's own last check, not only through the recording record."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    hold = world.runtime.holds.create(
        HoldRequest(matter_id="M-2", description="late seal", custodians=[TRADER[0]]), OFFICER
    ).hold
    # Undo the application on the record only, as if the recording had been sealed after the hold was applied.
    found = world.runtime.recordings.read(record.id)
    assert found is not None and found.record.seal is not None
    seal = found.record.seal.model_copy(update={"legal_holds": []})
    assert world.runtime.recordings.replace(found.record.model_copy(update={"seal": seal}), found.etag)

    world.clock.set(T0 + timedelta(days=40))
    report = world.runtime.sweep.run(max_deletions=10)
    assert report.deleted == [] and world.record(record.id).status == "sealed"
    # The sweep's repair step applied the hold again.
    assert world.record(record.id).seal.legal_holds == [hold.id]  # type: ignore[union-attr]


def test_a_hold_on_listed_recordings_keeps_exactly_them_from_the_sweep(world: RetentionWorld) -> None:
    """Three recordings of one trader past their retention date; a hold names one by id (and no people): that one
    gets the blob legal hold and survives the sweep, the others are deleted."""
    world.assign_class(TRADER[0], "cftc-oral")
    kept, gone, also_gone = world.seal(), world.seal(), world.seal()
    world.clock.set(T0 + timedelta(days=10))
    world.transport.requests.clear()

    placed = world.runtime.holds.create(
        HoldRequest.model_validate({"matterId": "M-ids", "description": "one call", "recordingIds": [kept.id]}),
        OFFICER,
    )

    assert placed.hold.recording_ids == [kept.id] and placed.hold.custodians == []
    assert placed.application is not None and placed.application.newly_held == [kept.id]
    assert {r.headers["x-ms-legal-hold"] for r in world.worm_requests(kept.id)} == {"true"}
    assert world.worm_requests(gone.id) == [] and world.worm_requests(also_gone.id) == []
    assert [r.recording_id for r in world.runtime.holds.recordings(placed.hold.id)] == [kept.id]

    world.clock.set(T0 + timedelta(days=40))
    report = world.runtime.sweep.run()
    assert sorted(report.deleted) == sorted([gone.id, also_gone.id]) and report.held == 1
    assert world.record(kept.id).status == "sealed" and len(world.blobs_of(kept.id)) == 3


def test_a_hold_by_id_not_yet_applied_still_saves_its_recording(world: RetentionWorld) -> None:
    """The deleter's own last check counts holds by id too, not only the recording record's list."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    hold = world.runtime.holds.create(
        HoldRequest.model_validate({"matterId": "M-id2", "description": "d", "recordingIds": [record.id]}), OFFICER
    ).hold
    found = world.runtime.recordings.read(record.id)
    assert found is not None and found.record.seal is not None
    seal = found.record.seal.model_copy(update={"legal_holds": []})
    assert world.runtime.recordings.replace(found.record.model_copy(update={"seal": seal}), found.etag)

    world.clock.set(T0 + timedelta(days=40))
    report = world.runtime.sweep.run(max_deletions=10)
    assert report.deleted == [] and world.record(record.id).status == "sealed"
    assert world.record(record.id).seal.legal_holds == [hold.id]  # type: ignore[union-attr]


def test_two_sweeps_never_run_at_once(world: RetentionWorld) -> None:
    leases = world.runtime.sweep._leases
    held = leases.acquire(SWEEP_LEASE, "other-run", "other-run", world.clock())
    assert held is not None
    busy = world.runtime.sweep.run()
    assert busy.outcome == "busy" and busy.evaluated == 0


def test_a_crashed_run_is_continued_and_its_half_done_deletion_finished(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    first, second, third = (world.seal(started_at=T0 + timedelta(hours=i)) for i in range(3))
    world.clock.set(T0 + timedelta(days=31))

    class Crash(BaseException):
        pass

    # The process dies while deleting the second recording, after one of its objects is gone.
    blobs: RecordingBlobs = world.runtime.blobs
    real_delete = blobs.delete
    calls: list[int] = []

    def dying_delete(objects):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            real_delete(list(objects)[:1])
            raise Crash
        return real_delete(objects)

    blobs.delete = dying_delete  # type: ignore[method-assign]
    with pytest.raises(Crash):
        world.runtime.sweep.run()
    blobs.delete = real_delete  # type: ignore[method-assign]
    assert world.record(first.id).status == "deleted"
    assert world.record(second.id).status == "deleting" and len(world.blobs_of(second.id)) == 2
    assert world.record(third.id).status == "sealed"
    # A hard crash would not hand the lease back: make it look like that (held by the dead run, with its cursor).
    store = world.runtime.sweep._leases._store
    state, etag = store.read(SWEEP_LEASE)  # type: ignore[misc]
    cursor = state.cursor
    assert cursor is not None and cursor.startswith("2025-04-02T09:00")  # the first recording's retention date
    store.replace(SWEEP_LEASE, LeaseState("dead-run", world.clock() + timedelta(minutes=5), "dead-run", cursor), etag)

    assert world.runtime.sweep.run().outcome == "busy"  # the dead run's lease has not expired
    world.clock.advance(minutes=11)  # past the lease and the staleness of its claim
    report = world.runtime.sweep.run()
    assert report.outcome == "completed" and report.resumed_from == cursor
    assert sorted(report.deleted) == sorted([second.id, third.id])
    for recording in (first, second, third):
        assert world.record(recording.id).status == "deleted" and world.blobs_of(recording.id) == []
    ledger = world.runtime.ledger
    certificates = [e for e in ledger.entries_for_subject(f"recording:{second.id}") if e.kind == "deleted"]
    assert len(certificates) == 1
    # The certificate names every sealed object, including the one deleted before the crash.
    assert len(DeletionCertificate.model_validate(certificates[0].details).deleted) == 3


def test_the_sweep_works_in_bounded_batches_and_stops_at_its_bound(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    recordings = [world.seal(started_at=T0 + timedelta(minutes=i)) for i in range(4)]
    world.clock.set(T0 + timedelta(days=31))
    first = world.runtime.sweep.run(max_deletions=2)
    assert first.outcome == "partial" and len(first.deleted) == 2
    second = world.runtime.sweep.run()
    assert second.outcome == "completed" and second.resumed_from is not None
    assert sorted(first.deleted + second.deleted) == sorted(r.id for r in recordings)
