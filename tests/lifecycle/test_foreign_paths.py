"""Issue 13, finding 2: blob paths in recorder events are not trusted. Every path is derived on the server from
the recording id and the layout; an event naming blobs outside its recording's own capture folder is rejected
(nothing written, a security event recorded), the container an event names is ignored, and retention acts only
on the recording's own folder whatever a record says.

The attack, as an attacker holding the recorder's identity would try it: a `recording.started` naming
`2025/evil.flac`, or another recording's sealed evidence, so that holds, immutability and deletion act there."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from pydantic import ValidationError

from devstack.testkit.captures import speech, stage_capture
from tests.lifecycle.events import T0, started, stopped
from verbatim.contracts.lifecycle import RecordingRecord, SealIndex
from verbatim.contracts.recorder import RecordingStarted, TrackInfo, parse_recorder_event
from verbatim.evidence import names
from verbatim.evidence.names import ForeignPath
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore, check_event_paths, record_event
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.retention.storage import RecordingBlobs, recording_folders


def hostile(recording_id: str, **names_: str | None) -> RecordingStarted:
    return started(recording_id).model_copy(update=names_)


@pytest.mark.parametrize(
    "field, value",
    [
        ("blob_name", "2025/evil.flac"),  # the example: the folder would become `2025/`
        ("blob_name", "victim-1/audio.flac"),  # another recording's sealed evidence
        ("blob_name", "rec-a/g0/../../victim-1/audio.flac"),
        ("blob_name", "rec-a/g1/audio.flac"),  # its own folder, but not the generation the event is about
        ("blob_name", "rec-a/g0/sub/audio.flac"),
        ("manifest_blob_name", "victim-1/manifest.json"),
        ("blob_name", "rec-a/g0/"),
    ],
)
def test_an_event_naming_a_blob_outside_its_capture_folder_is_rejected(field: str, value: str) -> None:
    with pytest.raises(ForeignPath):
        check_event_paths(hostile("rec-a", **{field: value}))


def test_a_stopped_event_naming_a_foreign_track_is_rejected() -> None:
    event = stopped("rec-a", "0" * 64, 3.0).model_copy(
        update={"tracks": [TrackInfo(track="source-1", kind="unmixed", blob_name="victim-1/source-1.flac")]}
    )
    with pytest.raises(ForeignPath):
        check_event_paths(event)


def test_the_container_an_event_names_is_ignored() -> None:
    event = hostile("rec-a", blob_container="recordings")  # the sealed evidence's container
    check_event_paths(event)  # the paths are its own: accepted ...
    record = record_event(InMemoryRecordingStore(), event)
    # ... and nothing of what it said about where things are is kept: paths are derived from the id.
    assert (record.blob_container, record.evidence_blob, record.capture_manifest_blob) == (None, None, None)


@pytest.mark.parametrize("recording_id", ["../victim", "2025/x", "a" * 65, "", "rec.1"])
def test_a_recording_id_that_could_name_a_folder_is_refused_by_the_contract(recording_id: str) -> None:
    body = started("rec-a").model_dump_json().replace('"rec-a"', f'"{recording_id}"')
    with pytest.raises(ValidationError):
        parse_recorder_event(body)


def test_a_rejected_event_writes_nothing_and_is_recorded_as_a_security_event(tmp_path: Path) -> None:
    deps = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        captures=InMemoryBlobStore("captures"),
        scratch=InMemoryBlobStore("scratch"),
        store=InMemoryRecordingStore(),
        ledger=Ledger(InMemoryLedgerStore(), "main", None),
        retention=FixedRetention("default", 30),
        worm=InMemoryWorm(),
        audit=InMemoryAuditLog(),
    )
    assert activities.receive_event(deps, hostile("rec-a", blob_name="2025/evil.flac")) is None
    assert deps.store.get("rec-a") is None
    assert isinstance(deps.audit, InMemoryAuditLog)
    (event,) = deps.audit.events
    assert (event.category, event.action, event.target) == ("security", "recorder.event.rejected", "recording:rec-a")
    assert "2025/evil.flac" in event.detail["reason"]


# --- retention acts on the recording's own folder, whatever the record says ------------------------------------


def record_naming(recording_id: str, manifest_blob: str, evidence_blob: str) -> RecordingRecord:
    """A record as an older, poisoned event could have left it: its seal names blobs that are not its own."""
    record = record_event(InMemoryRecordingStore(), started(recording_id))
    seal = SealIndex(
        manifest_blob=manifest_blob,
        manifest_sha256="0" * 64,
        ledger_seq=1,
        evidence_blob=evidence_blob,
        evidence_sha256="0" * 64,
        duration_seconds=1.0,
        interrupted=False,
        retention_class="default",
        retention_until=T0 + timedelta(days=1),
        worm="emulator-not-enforced",
        sealed_at=T0,
    )
    return record.model_copy(update={"seal": seal, "status": "sealed", "evidence_blob": evidence_blob})


def test_a_record_naming_foreign_blobs_never_turns_them_into_a_folder() -> None:
    assert recording_folders(record_naming("rec-b", "2025/evil.flac", "victim-1/audio.flac")) == ["rec-b/"]
    # A recording sealed before the captures container keeps its date folder, for its own id only.
    legacy = record_naming("rec-c", "2025/03/03/rec-c/manifest.json", "2025/03/03/rec-c/audio.flac")
    assert recording_folders(legacy) == ["rec-c/", "2025/03/03/rec-c/"]
    assert recording_folders(record_naming("rec-d", "2025/03/03/rec-c/manifest.json", "x")) == ["rec-d/"]


def test_holds_and_immutability_for_a_poisoned_record_touch_nothing_outside_its_folder(
    recordings: tuple[ContainerClient, object],
) -> None:
    container, _ = recordings
    victim = f"victim-{uuid.uuid4().hex[:6]}"
    for name in (f"{victim}/audio.flac", f"{victim}/manifest.json", "2025/other.flac"):
        container.upload_blob(name, b"sealed")
    blobs = RecordingBlobs(container, emulator=True)
    poisoned = record_naming(f"rec-{uuid.uuid4().hex[:6]}", "2025/evil.flac", f"{victim}/audio.flac")

    assert blobs.objects(poisoned) == []
    assert blobs.set_legal_hold(poisoned, True) == (None, 0)
    assert blobs.delete(blobs.objects(poisoned)) == 0
    assert sorted(b.name for b in container.list_blobs()) == sorted(
        [f"{victim}/audio.flac", f"{victim}/manifest.json", "2025/other.flac"]
    )


def test_a_sealed_recording_lives_under_its_own_folder_only(tmp_path: Path) -> None:
    deps = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        captures=InMemoryBlobStore("captures"),
        scratch=InMemoryBlobStore("scratch"),
        store=InMemoryRecordingStore(),
        ledger=Ledger(InMemoryLedgerStore(), "main", None),
        retention=FixedRetention("default", 30),
        worm=InMemoryWorm(),
    )
    staged = stage_capture(deps.staging, "rec-own", speech(3), started_at=T0)
    record_event(deps.store, started("rec-own"))
    record_event(deps.store, stopped("rec-own", staged.manifest.track().sha256, 3.0))
    finalised = activities.finalise_recording(deps, "rec-own")
    summary = activities.seal_recording(deps, "rec-own", finalised.finalised_blob, None)
    assert isinstance(deps.recordings, InMemoryBlobStore)
    assert deps.recordings.names("") == sorted(
        [
            names.sealed_capture_manifest_name("rec-own", 0),
            names.sealed_track_name("rec-own", 0),
            names.sealed_manifest_name("rec-own", 0),
        ]
    )
    assert summary.seal.evidence_blob == "rec-own/audio.flac"
