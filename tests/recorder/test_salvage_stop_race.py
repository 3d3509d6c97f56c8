"""Issue 22's salvage/stop race with the real recorder: the lifecycle salvages a live recorder's capture at the
moment its stop commits generation 0 (tests/lifecycle/test_salvage_stop_race.py has the late commit the fence
did not stop). The recorder is built in this process (`recorder_vm.app.build`) so the salvage can be made to
land exactly there; everything else is real: Azurite, the Cosmos emulator, the test-side Teams platform, the
lifecycle's activities in the orchestration's order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devstack.testkit.audio import decode
from devstack.testkit.captures import speech
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from recorder_vm.capture.storage import AzureAsyncRecordingStore
from tests.conftest import Azurite
from tests.recorder.inprocess import events_of, on_platform, recorder_settings, running_recorder, url_of
from verbatim.contracts.evidence import RecordingManifest
from verbatim.contracts.recorder import RecordingContinued, RecordingStopped
from verbatim.evidence import names
from verbatim.evidence.verify import verify_recording
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import record_event
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for


@pytest.fixture
def deps(stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LifecycleDeps:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    built = container_for(reload_settings()).lifecycle
    built.chunk_seconds = 4
    return built


def run_part(deps: LifecycleDeps, recording_id: str, part: int) -> None:
    """One part's lifecycle after its capture ended (the orchestration's steps after `check`)."""
    check = activities.check_recording(deps, recording_id, part=part)
    assert check.state in ("ended", "silent"), check
    if check.state == "silent":
        activities.salvage(deps, recording_id, part, reason=check.reason)
    finalised = activities.finalise_recording(deps, recording_id, part)
    tasks = activities.plan_access_copy(deps, finalised)
    chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
    access = (
        activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks, part) if chunks else None
    )
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access, part)
    activities.index_recording(deps, summary, finalised.problems)
    activities.clean_up(deps, recording_id, part)


def test_a_salvage_landing_just_before_the_live_recorders_final_commit_loses_nothing_and_gets_a_verdict(
    deps: LifecycleDeps,
    azurite_service: Azurite,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real recorder (built in this process, its capture engine writing to Azurite) records a call; the
    lifecycle's salvage runs at the moment the recorder's stop sends its commit of generation 0 (every block
    staged, none committed): the fence refuses the recorder's commit, salvage has committed every block, the
    recorder goes on in generation 1 with nothing left to write. Both parts reach a verdict; the sealed audio
    is the whole call, bit-exact."""
    assert isinstance(deps.staging, AzureBlobStore)
    settings = recorder_settings(azurite_service, platform, tmp_path, CAPTURES_CONTAINER=deps.staging.container_name)
    salvaged: list[str] = []
    commit = AzureAsyncRecordingStore.commit_blocks

    async def salvage_first(self: AzureAsyncRecordingStore, blob_name: str, block_ids: Any, metadata: Any) -> None:
        recording_id = blob_name.split("/")[0]
        if not salvaged and blob_name == names.capture_track_name(recording_id, 0):
            for event in events_of(settings):
                record_event(deps.store, event)
            await asyncio.to_thread(activities.salvage, deps, recording_id, 0, reason="test: the stop raced it")
            salvaged.append(recording_id)
        await commit(self, blob_name, block_ids, metadata)

    monkeypatch.setattr(AzureAsyncRecordingStore, "commit_blocks", salvage_first)
    line = speech(4.0)
    script = CallScript(audio=np.concatenate([line, line]), realtime=True, speed=2.0)

    async def scenario() -> None:
        async with running_recorder(settings) as runtime:
            await on_platform(platform, platform.drive(url_of(settings), script))
            stopped = lambda: any(isinstance(e, RecordingStopped) for e in events_of(settings))  # noqa: E731
            await asyncio.to_thread(wait_until, stopped, timeout=60)
            assert runtime.recorder.publisher.flush(10.0)

    asyncio.run(scenario())
    (recording_id,) = salvaged
    events = [e for e in events_of(settings) if e.recording_id == recording_id]
    for event in events:
        record_event(deps.store, event)
    # The fence refused the recorder's commit; salvage had committed every block it staged, so generation 1
    # starts after the last of them and has nothing in it.
    (continued,) = [e for e in events if isinstance(e, RecordingContinued)]
    assert continued.generation == 1 and continued.kept_blocks == continued.first_block > 0
    record = deps.store.get(recording_id)
    assert record is not None and record.generation == 1

    run_part(deps, recording_id, 0)
    run_part(deps, recording_id, 1)

    record = deps.store.get(recording_id)
    assert record is not None and record.status == "sealed" and record.seal is not None
    assert [c.status for c in record.continuations] == ["sealed"]
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.ok, result.findings
    audio, tracks = [], []
    for part in sorted(record.seal.parts, key=lambda p: p.part):
        manifest = RecordingManifest.model_validate_json(deps.recordings.read(part.manifest_blob))
        [track] = manifest.evidence
        tracks.append(track)
        assert sum(b.samples for b in track.blocks) == track.samples
        data = deps.recordings.read(track.blob_name, version_id=track.version_id)
        audio.append(decode(data) if track.samples else np.zeros(0, dtype=np.int16))
    assert [len(t.blocks) for t in tracks] == [continued.kept_blocks, 0] and tracks[1].samples == 0
    captured = np.concatenate(audio)
    assert len(script.audio) - len(captured) < 16000 * 0.6  # the whole call (the platform's last frames may be cut)
    assert np.array_equal(captured, script.audio[: len(captured)])
