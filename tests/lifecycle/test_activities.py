"""The lifecycle's activities in the order the orchestration runs them, against Azurite and the Cosmos
emulator: a normal call is finalised, transcoded in chunks, sealed, indexed and verifies; a recorder that went
silent is salvaged and sealed as interrupted; a call that failed before any media is marked not recorded."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from devstack.testkit.captures import speech, stage_capture
from tests.lifecycle.events import T0, failed_before_media, joined, started, stopped
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.contracts.recorder import CaptureProgress
from verbatim.evidence.progress import TableProgress, write_progress
from verbatim.evidence.verify import verify_recording
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import record_event
from verbatim.platform.layout import RECONCILIATION_REQUESTS_QUEUE
from verbatim.platform.settings import Settings, reload_settings
from verbatim.reconciliation.service import parse_request
from verbatim.wiring import container_for


@pytest.fixture
def deps(stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LifecycleDeps:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    built = container_for(reload_settings()).lifecycle
    built.chunk_seconds = 4
    return built


def announced(deps: LifecycleDeps, recording_id: str) -> list[tuple[str | None, str | None, str | None]]:
    """The `recording.indexed` requests reconciliation received for this recording."""
    queue = container_for(reload_settings()).runtime_queues.get_queue_client(RECONCILIATION_REQUESTS_QUEUE)
    found = []
    # The queue is shared by the session's tests: read past everything others left (32 messages a call; each
    # read hides what it saw for a while, so the next call gets the next ones) until nothing is left to see.
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=10)):
        for message in batch:
            request = parse_request(message.content)
            if isinstance(request, RecordingIndexed) and request.recording_id == recording_id:
                found.append((request.status, request.call_chain_id, request.observed_user_id))
                queue.delete_message(message)
    return found


def heartbeat(recording_id: str, blob_name: str, at: datetime) -> CaptureProgress:
    return CaptureProgress(
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        recorder_instance="recorder-0",
        state="capturing",
        updated_at=at,
        started_at=T0,
        blob_container="recordings",
        blob_name=blob_name,
        heartbeat_interval_seconds=5.0,
    )


def run_to_seal(deps: LifecycleDeps, recording_id: str) -> None:
    """What recording_lifecycle does after the recorder stopped (or was salvaged)."""
    finalised = activities.finalise_recording(deps, recording_id)
    tasks = activities.plan_access_copy(deps, finalised)
    names = [activities.encode_access_chunk(deps, task) for task in reversed(tasks)]  # any completion order
    access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, names)
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access)
    activities.index_recording(deps, summary, finalised.problems)
    assert activities.clean_up(deps, recording_id) >= len(tasks) + 1


def test_a_stopped_recording_is_sealed_indexed_and_verifies(deps: LifecycleDeps) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    pcm = speech(10)
    staged = stage_capture(deps.staging, recording_id, pcm, started_at=T0)
    for event in (
        started(recording_id),
        joined(recording_id),
        stopped(recording_id, staged.manifest.tracks[0].sha256, 10.0),
    ):
        record_event(deps.store, event)

    check = activities.check_recording(deps, recording_id)
    assert check.state == "ended"
    run_to_seal(deps, recording_id)

    record = deps.store.get(recording_id)
    assert record is not None and record.status == "sealed" and record.seal is not None
    assert record.seal.interrupted is False
    assert record.seal.duration_seconds == 10.0
    assert record.seal.retention_until == T0 + timedelta(days=1827)
    assert sorted(p.participant_id for p in record.facts.participants) == ["p1", "p2", "p3"]
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.ok, result.findings


def test_a_recorder_that_went_silent_is_salvaged_and_sealed_as_interrupted(deps: LifecycleDeps) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    pcm = speech(7)
    # The recorder staged its blocks and died: nothing committed, no capture manifest.
    staged = stage_capture(deps.staging, recording_id, pcm, commit=False, started_at=T0)
    deps.staging.delete(staged.capture_blob)
    record_event(deps.store, started(recording_id, heartbeat=5.0))

    deps.clock = lambda: T0 + timedelta(seconds=10)
    assert activities.check_recording(deps, recording_id).state == "capturing"
    # Its heartbeat (the progress record) kept it alive until 12 s. Three 5-s intervals later it is suspect;
    # with no control route to ask, it is silent only after 2 intervals + the Table service's 30 s server
    # timeout (verbatim.lifecycle.liveness), at 52 s.
    assert isinstance(deps.progress, TableProgress)
    write_progress(deps.progress.table, heartbeat(recording_id, staged.evidence_blob, T0 + timedelta(seconds=12)))
    deps.clock = lambda: T0 + timedelta(seconds=26)
    check = activities.check_recording(deps, recording_id)
    assert (check.state, round(check.wait_seconds)) == ("capturing", 2)
    deps.clock = lambda: T0 + timedelta(seconds=27)
    check = activities.check_recording(deps, recording_id)
    assert check.state == "capturing" and check.evidence["recorder"]["answer"] == "not_asked"  # type: ignore[index]
    deps.clock = lambda: T0 + timedelta(seconds=52)
    assert activities.check_recording(deps, recording_id).state == "silent"

    activities.salvage(deps, recording_id)
    run_to_seal(deps, recording_id)

    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    assert record.seal.interrupted is True
    assert record.seal.duration_seconds == 7.0
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    kinds = [e.kind for e in ledger.entries_for_subject(f"recording:{recording_id}")]
    assert kinds == ["salvaged", "sealed"]


def test_a_call_that_failed_before_media_is_marked_not_recorded(deps: LifecycleDeps) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    record_event(deps.store, failed_before_media(recording_id))

    check = activities.check_recording(deps, recording_id)
    assert check.state == "no_media"
    activities.mark_not_recorded(deps, recording_id, check.reason)

    record = deps.store.get(recording_id)
    assert record is not None and record.status == "not_recorded"
    assert announced(deps, recording_id) == [("not_recorded", None, None)]
