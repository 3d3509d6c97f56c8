"""Storage goes away in the middle of a call: frames spill to the local buffer and reach the blob when it
comes back; if the buffer would overflow, the recorder reports `failed` instead of losing audio silently."""

from __future__ import annotations

import time

import httpx
import numpy as np

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import PrivateAzurite, RecorderFactory, RecorderProcess
from verbatim.contracts.recorder import RecordingFailed, RecordingStarted, RecordingStopped
from verbatim.evidence.blocks import decode_block_id
from verbatim.evidence.capture import read_manifest


def _health(recorder: RecorderProcess) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{recorder.url}/health", timeout=5).json()
    return body


def test_audio_captured_while_storage_is_down_is_spilled_and_committed_when_it_returns(
    platform: FakePlatform, start_recorder: RecorderFactory, private_azurite: PrivateAzurite
) -> None:
    recorder = start_recorder(connection_string=private_azurite.ports.connection_string)
    line = speech("Storage is down but every word must still reach the evidence.")
    source = with_silence(line, 0.3, line, 0.3, line)
    script = CallScript(audio=source, realtime=True)
    call = platform.submit(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    record = platform.calls[script.call_id]
    wait_until(lambda: record.frames_sent >= 100, timeout=15)

    private_azurite.stop()
    down_at = record.frames_sent
    wait_until(lambda: record.frames_sent >= down_at + 175, timeout=15)  # 3.5 s while storage is down
    assert _health(recorder)["checks"]["storage"] == "down"  # type: ignore[index]
    assert recorder.health().status_code == 503
    assert any((recorder.state_dir / "spill").rglob("*.blk"))
    private_azurite.start()

    call.result(timeout=60)
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=60)
    stopped = next(e for e in recorder.events() if isinstance(e, RecordingStopped))
    audio = decode(recorder.container_client().download_blob(stopped.blob_name).readall())
    assert abs(len(audio) - len(source)) <= 1600
    assert np.array_equal(audio[: len(source)], source[: len(audio)])
    assert not any((recorder.state_dir / "spill").rglob("*.blk"))
    assert _health(recorder)["checks"]["storage"] == "up"  # type: ignore[index]


def test_a_spill_that_would_overflow_reports_failed_and_keeps_what_was_staged(
    platform: FakePlatform, start_recorder: RecorderFactory, private_azurite: PrivateAzurite
) -> None:
    recorder = start_recorder(
        connection_string=private_azurite.ports.connection_string, RECORDER_SPILL_MAX_BYTES="20000"
    )
    line = speech("This buffer is far too small for a long outage.")
    source = with_silence(line, 0.3, line, 0.3, line)
    script = CallScript(audio=source, realtime=True)
    call = platform.submit(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    record = platform.calls[script.call_id]
    wait_until(lambda: record.frames_sent >= 100, timeout=15)

    private_azurite.stop()
    wait_until(lambda: "failed" in record.statuses, timeout=30)
    assert record.statuses == ["recording", "failed"]
    assert not record.deleted  # the recorder stays in the call: it never drops the user itself
    private_azurite.start()
    call.result(timeout=60)

    wait_until(lambda: any(isinstance(e, RecordingFailed) for e in recorder.events()), timeout=60)
    failed = next(e for e in recorder.events() if isinstance(e, RecordingFailed))
    assert failed.stage == "storage" and "buffer" in failed.reason
    time.sleep(1)
    assert not any(isinstance(e, RecordingStopped) for e in recorder.events())


def test_a_failed_capture_s_manifest_names_every_block_it_had_spilled_once_storage_returns(
    platform: FakePlatform, start_recorder: RecorderFactory, private_azurite: PrivateAzurite
) -> None:
    """Chaos defect 4 (docs/reliability.md): the disk buffer overflows during a storage outage, the capture fails
    openly; it used to commit and describe only the blocks staged before the outage, then stage the blocks it had
    spilled a heartbeat later, past its manifest, so audio that reached storage was left out of the evidence."""
    recorder = start_recorder(
        connection_string=private_azurite.ports.connection_string,
        RECORDER_SPILL_MAX_BYTES="12000",
        RECORDER_BLOCK_SECONDS="0.5",
        # Long enough for storage to come back (and the storage back-off, at most 10 s, to let it be tried) before
        # the stop gives up: this test is about the manifest written once storage answers.
        RECORDER_STOP_DRAIN_SECONDS="90",
    )
    line = speech("A small buffer holds a few blocks of this call before it overflows.")
    source = with_silence(line, 0.3, line, 0.3, line)
    script = CallScript(audio=source, realtime=True)
    call = platform.submit(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    record = platform.calls[script.call_id]
    wait_until(lambda: record.frames_sent >= 100, timeout=15)

    spill = recorder.state_dir / "spill"
    private_azurite.stop()
    wait_until(lambda: "failed" in record.statuses, timeout=30)
    spilled = sorted(path.name for path in spill.rglob("*.blk"))
    assert spilled, "the outage filled the buffer without spilling a block first: nothing to check"
    private_azurite.start()
    call.result(timeout=60)

    wait_until(lambda: any(isinstance(e, RecordingFailed) for e in recorder.events()), timeout=60)
    failed = next(e for e in recorder.events() if isinstance(e, RecordingFailed))
    assert failed.stage == "storage" and "buffer" in failed.reason
    wait_until(lambda: not any(spill.rglob("*.blk")), timeout=30)  # nothing is left on disk to stage later
    time.sleep(2)  # two heartbeats: the recovery of spilled blocks would have run by now

    container = recorder.container_client()
    assert failed.committed and failed.manifest_blob_name and failed.blob_name, failed
    manifest = read_manifest(container, failed.manifest_blob_name)
    assert manifest is not None and not manifest.complete
    described = [block.block_id for block in manifest.track().blocks]
    committed, uncommitted = container.get_blob_client(failed.blob_name).get_block_list("all")
    on_blob = {}
    for block in [*committed, *uncommitted]:
        parsed = decode_block_id(block.id)
        assert parsed is not None
        on_blob[parsed.sequence] = block.id
    assert [block.id for block in committed] == described
    beyond = sorted(sequence for sequence in on_blob if sequence >= len(described))
    assert not beyond, f"blocks {beyond} reached storage after the failure's manifest, which does not name them"
    assert len(described) >= int(spilled[-1].removesuffix(".blk")) + 1  # every spilled block is in the evidence
    audio = decode(container.download_blob(failed.blob_name).readall())
    assert np.array_equal(audio, source[: len(audio)]), (len(audio), manifest.frames_dropped, manifest.track().gaps)
