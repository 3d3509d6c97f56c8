"""A recorder killed mid-call leaves staged blocks; salvage commits them into a playable recording."""

from __future__ import annotations

import time

import numpy as np

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory
from verbatim.contracts.recorder import RecordingStarted
from verbatim.evidence.capture import read_manifest
from verbatim.evidence.progress import progress_table, read_progress
from verbatim.evidence.salvage import salvage_capture
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.clients import table_service
from verbatim.platform.settings import StorageConnection


def test_killing_the_recorder_mid_call_loses_at_most_two_seconds_after_salvage(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    line = speech("Confirm the order for two thousand shares of Contoso at forty two.")
    source = with_silence(line, 0.4, line, 0.4, line)
    script = CallScript(audio=source, realtime=True, stop_after_seconds=len(source) / 16000 - 0.5)
    call = platform.submit(platform.drive(recorder.url, script))

    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    record = platform.calls[script.call_id]
    wait_until(lambda: record.frames_sent >= 300, timeout=30)  # 6 s of audio streamed
    time.sleep(0.37)  # kill somewhere between two block cuts
    sent_seconds = record.frames_sent * 0.02
    recorder.kill()
    call.cancel()

    started = next(e for e in recorder.events() if isinstance(e, RecordingStarted))
    container = recorder.container_client()
    assert read_manifest(container, started.manifest_blob_name) is None  # nothing was committed by the recorder
    connection = StorageConnection(name="AzureWebJobsStorage", connection_string=recorder.connection_string)
    progress = read_progress(progress_table(table_service(connection)), started.recording_id)
    assert progress is not None and progress.state == "capturing" and progress.blocks_staged >= 2

    result = salvage_capture(
        AzureBlobStore(container),
        recording_id=started.recording_id,
        call_id=started.call_id,
        recorder_instance=started.recorder_instance,
        progress=progress,
    )

    audio = decode(container.download_blob(started.blob_name).readall())
    salvaged_seconds = len(audio) / 16000
    print(f"streamed {sent_seconds:.2f} s before the kill, salvaged {salvaged_seconds:.2f} s")
    assert sent_seconds - salvaged_seconds <= 2.0, (sent_seconds, salvaged_seconds)
    assert salvaged_seconds >= progress.seconds_staged - 0.001  # everything the heartbeat promised
    assert np.array_equal(audio, source[: len(audio)])  # a bit-exact prefix of what was said
    mixed = result.mixed
    assert mixed.duration_seconds == salvaged_seconds and result.tracks[0].dropped_invalid == 0
    assert [b.index for b in mixed.blocks] == list(range(len(mixed.blocks)))
    # The salvaged manifest is the lifecycle's (kept in its scratch), never written in the recorder's place.
    assert read_manifest(container, started.manifest_blob_name) is None
    assert result.manifest.salvaged and not result.manifest.complete

    again = salvage_capture(
        AzureBlobStore(container),
        recording_id=started.recording_id,
        call_id=started.call_id,
        recorder_instance=started.recorder_instance,
        progress=progress,
    )
    assert again.mixed.sha256 == mixed.sha256  # idempotent
