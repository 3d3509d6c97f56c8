"""The capture pipeline with many calls in one process, against real Azurite: every frame of every call reaches
its evidence bit-exact and in order, in hashed blocks of at most two seconds; storage can go away and come back;
a killed process loses only what was not yet staged; media from before the recording reply is never kept."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from azure.storage.blob import ContainerClient

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import wait_until
from recorder_vm.capture.pipeline import CallCapture, CaptureResult
from recorder_vm.media.base import FRAME_SAMPLES, AudioFrame
from tests.conftest import Azurite
from tests.recorder.capture_crash_child import ROLL
from tests.recorder.capture_rig import SAMPLE_RATE, CaptureRig, Feeder, frames_of, now_ticks
from tests.recorder.conftest import PrivateAzurite
from verbatim.evidence.blocks import decode_block_id
from verbatim.evidence.capture import read_manifest
from verbatim.evidence.salvage import salvage_capture
from verbatim.platform.blobs import AzureBlobStore

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_BLOCK_SAMPLES = 2 * SAMPLE_RATE  # "staged blocks of at most 2 s"


@pytest.fixture(scope="module")
def line() -> np.ndarray:
    said = speech("Sell four hundred at market and confirm the fill before the close, please.")
    return with_silence(said, 0.3, said)


@pytest.fixture
def rig(azurite_service: Azurite, tmp_path: Path) -> Iterator[CaptureRig]:
    rig = CaptureRig(azurite_service.connection_string, f"cap-{uuid.uuid4().hex[:10]}", tmp_path / "spill")
    yield rig
    rig.close()


def _sources(line: np.ndarray, calls: int, seconds: float) -> list[np.ndarray]:
    """Different audio for each call (the line shifted by a call-specific offset), whole frames long."""
    samples = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    repeated = np.tile(line, samples // len(line) + 2)
    return [np.roll(repeated, call * ROLL)[:samples] for call in range(calls)]


def _stop_all(captures: list[CallCapture], drain_seconds: float = 30.0) -> list[CaptureResult]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda capture: capture.stop(drain_seconds=drain_seconds), captures))


def _assert_recorded(
    container: ContainerClient, capture: CallCapture, result: CaptureResult, source: np.ndarray, frames: int
) -> None:
    """The capture committed all of `source`, bit-exact, as hashed blocks of at most 2 s listed in order."""
    assert result.ok, result.failure
    manifest = read_manifest(container, capture.manifest_blob_name)
    assert manifest is not None and manifest.complete
    assert manifest.frames_received == frames and manifest.frames_dropped == 0
    mixed = manifest.track()
    blob = container.get_blob_client(mixed.blob_name)
    evidence = blob.download_blob().readall()
    assert np.array_equal(decode(evidence), source)  # every frame, in order, lossless
    assert len(evidence) == mixed.bytes and hashlib.sha256(evidence).hexdigest() == mixed.sha256
    committed = [block.id for block in blob.get_block_list("committed")[0]]
    assert committed == [block.block_id for block in mixed.blocks]
    offset = 0
    for index, block in enumerate(mixed.blocks):
        data = evidence[block.byte_offset : block.byte_offset + block.size]
        described = decode_block_id(block.block_id)
        assert described is not None and described.sequence == index == block.index
        assert described.sha256.hex() == block.sha256 == hashlib.sha256(data).hexdigest()
        assert block.byte_offset == offset and 0 < block.samples <= MAX_BLOCK_SAMPLES, block
        offset += block.size
    assert sum(block.samples for block in mixed.blocks) == len(source) == mixed.samples


def _started_together(
    rig: CaptureRig, line: np.ndarray, calls: int
) -> tuple[list[np.ndarray], list[list[AudioFrame]], list[CallCapture]]:
    """`calls` captures of 6-s sources, started in one tick: their sources, frames and captures."""
    sources = _sources(line, calls, 6.0)
    start = now_ticks()
    frames = [frames_of(source, start) for source in sources]
    captures = [rig.capture() for _ in range(calls)]
    for capture in captures:
        capture.start(allowed_from_ticks=start)
    return sources, frames, captures


def test_many_calls_at_once_are_each_recorded_bit_exact_in_order_with_no_frame_lost(
    rig: CaptureRig, line: np.ndarray
) -> None:
    calls = 24
    sources, frames, captures = _started_together(rig, line, calls)

    Feeder(captures, frames, threads=2, burst=5, pause=0.01).send(len(frames[0]))
    results = _stop_all(captures)

    container = rig.container()
    for capture, result, source, delivered in zip(captures, results, sources, frames, strict=True):
        _assert_recorded(container, capture, result, source, len(delivered))
    assert rig.failures == []


def test_calls_that_start_together_do_not_fill_their_blocks_at_the_same_moment(
    rig: CaptureRig, line: np.ndarray
) -> None:
    """Calls started in one tick, fed in step: each track's first block is shorter by a phase of its own, so their
    worker does not encode and stage every call's block in the same pass, block after block (issue 22: at 400 calls
    such a pass held the worker for over half a second every 1.44 s). Only the cut moves: each call is still
    recorded bit-exact (`_assert_recorded`)."""
    calls = 12
    sources, frames, captures = _started_together(rig, line, calls)

    Feeder(captures, frames, threads=1, burst=5, pause=0.01).send(len(frames[0]))
    results = _stop_all(captures)

    container = rig.container()
    first_blocks = set()
    for capture, result, source, delivered in zip(captures, results, sources, frames, strict=True):
        _assert_recorded(container, capture, result, source, len(delivered))
        manifest = read_manifest(container, capture.manifest_blob_name)
        assert manifest is not None
        first_blocks.add(manifest.track().blocks[0].samples)
    assert len(first_blocks) >= calls // 2, first_blocks


def test_blocks_stay_within_two_seconds_when_frames_arrive_in_a_burst(rig: CaptureRig, line: np.ndarray) -> None:
    """A backlog (the platform delivering late, a stalled worker) must not make one long block: a crash would
    then lose more than one block's worth, and the manifest promises blocks of at most 2 s."""
    (source,) = _sources(line, 1, 12.0)
    start = now_ticks()
    frames = frames_of(source, start)
    capture = rig.capture()
    capture.start(allowed_from_ticks=start)
    for frame in frames:  # 12 s of audio at once
        capture.on_audio(frame)
    (result,) = _stop_all([capture])
    _assert_recorded(rig.container(), capture, result, source, len(frames))


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(np.int32) + b.astype(np.int32), -32768, 32767).astype("<i2")


def _interleaved(a: list[AudioFrame], b: list[AudioFrame]) -> list[AudioFrame]:
    """Two speakers' frames as the platform delivers them: each 20 ms slot's frames together."""
    return [frame for pair in zip(a, b, strict=True) for frame in pair]


def test_unmixed_calls_at_once_keep_each_speaker_and_the_mix(rig: CaptureRig, line: np.ndarray) -> None:
    calls = 4
    alice = _sources(line, calls, 4.0)
    bob = [np.roll(a, 5 * ROLL) // 2 for a in alice]
    mixes = [_mix(a, b) for a, b in zip(alice, bob, strict=True)]
    start = now_ticks()
    frames = [
        _interleaved(frames_of(a, start, source_id=1), frames_of(b, start, source_id=2))
        for a, b in zip(alice, bob, strict=True)
    ]
    captures = [rig.capture(unmixed=True) for _ in range(calls)]
    for capture in captures:
        capture.start(allowed_from_ticks=start)

    Feeder(captures, frames, threads=2, burst=10, pause=0.01).send(len(frames[0]))
    results = _stop_all(captures)

    container = rig.container()
    for result, a, b, mix in zip(results, alice, bob, mixes, strict=True):
        assert result.ok and result.manifest is not None, result.failure
        by_name = {track.track: track for track in result.manifest.tracks}
        assert sorted(by_name) == ["mixed", "source-1", "source-2"]
        for name, expected in (("mixed", mix), ("source-1", a), ("source-2", b)):
            audio = decode(container.download_blob(by_name[name].blob_name).readall())
            assert np.array_equal(audio, expected), name
            assert all(block.samples <= MAX_BLOCK_SAMPLES for block in by_name[name].blocks)


def test_frames_stamped_before_the_recording_reply_are_not_kept_whatever_order_they_arrive_in(
    rig: CaptureRig, line: np.ndarray
) -> None:
    (source,) = _sources(line, 1, 3.0)
    start = now_ticks()
    frames = frames_of(source, start)
    allowed = 50  # the success reply arrived at frame 50's timestamp
    capture = rig.capture()
    for frame in frames[:20]:  # before start(): recording not yet allowed
        capture.on_audio(frame)
    capture.start(allowed_from_ticks=frames[allowed].timestamp_ticks)
    for frame in frames[20:]:  # frames 20..49 arrive after start() but are stamped before the reply
        capture.on_audio(frame)
    (result,) = _stop_all([capture])
    _assert_recorded(rig.container(), capture, result, source[allowed * FRAME_SAMPLES :], len(frames) - allowed)
    assert capture.frames_before_recording == allowed


def test_storage_outage_with_many_calls_spills_and_every_frame_is_committed_once_it_returns(
    private_azurite: PrivateAzurite, tmp_path: Path, line: np.ndarray
) -> None:
    rig = CaptureRig(private_azurite.ports.connection_string, "outage", tmp_path / "spill")
    calls = 12
    sources = _sources(line, calls, 9.0)
    start = now_ticks()
    frames = [frames_of(source, start) for source in sources]
    captures = [rig.capture() for _ in range(calls)]
    for capture in captures:
        capture.start(allowed_from_ticks=start)
    feeder = Feeder(captures, frames, threads=2, burst=5, pause=0.1)  # 50 frames/s per call: real time

    feeder.send(150)  # 3 s with storage up
    private_azurite.stop()
    feeder.send(350)  # 4 s with storage down: a few blocks of every call go to the disk buffer
    wait_until(lambda: all(c.state == "spilling" for c in captures), timeout=30)
    assert any(rig.spill_dir.rglob("*.blk"))
    private_azurite.start()
    feeder.send(len(frames[0]))
    results = _stop_all(captures, drain_seconds=60)

    container = rig.container()
    for capture, result, source, delivered in zip(captures, results, sources, frames, strict=True):
        _assert_recorded(container, capture, result, source, len(delivered))
    assert not any(rig.spill_dir.rglob("*.blk"))
    assert rig.failures == []
    rig.close()


def test_a_killed_capture_process_loses_only_the_unstaged_tail_of_each_call(
    azurite_service: Azurite, tmp_path: Path
) -> None:
    calls, container_name = 16, f"crash-{uuid.uuid4().hex[:10]}"
    state = tmp_path / "child"
    state.mkdir()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.recorder.capture_crash_child",
            azurite_service.connection_string,
            container_name,
            str(state),
            str(calls),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        start_new_session=True,
    )
    try:
        status = state / "status.json"
        wait_until(lambda: status.exists() and json.loads(status.read_text())["sent"] >= 300, timeout=60)
        time.sleep(0.37)  # somewhere between two block cuts
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)

    reported = json.loads(status.read_text())
    sent_seconds = (reported["sent"] + 1) * 0.02  # the child may have sent one more frame after writing
    source = np.load(state / "source.npy")
    container = ContainerClient.from_connection_string(azurite_service.connection_string, container_name)
    described = json.loads((state / "calls.json").read_text())
    assert len(described) == calls
    for call, (names, staged) in enumerate(zip(described, reported["staged_samples"], strict=True)):
        assert read_manifest(container, names["manifest_blob_name"]) is None  # the child never committed
        result = salvage_capture(
            AzureBlobStore(container),
            recording_id=names["recording_id"],
            call_id=names["call_id"],
            recorder_instance="capture-rig",
        )
        audio = decode(container.download_blob(names["blob_name"]).readall())
        expected = np.roll(source, call * ROLL)
        assert np.array_equal(audio, expected[: len(audio)]), call  # a bit-exact prefix of what was said
        assert len(audio) >= staged  # everything known to be staged came back
        assert sent_seconds - len(audio) / SAMPLE_RATE <= 2.0, (call, sent_seconds, len(audio) / SAMPLE_RATE)
        mixed = result.mixed
        assert [b.index for b in mixed.blocks] == list(range(len(mixed.blocks)))
        assert all(b.samples <= MAX_BLOCK_SAMPLES for b in mixed.blocks)
        assert result.tracks[0].dropped_invalid == 0


def _codec_contexts() -> int:
    """libavcodec contexts alive in this process, collectable garbage included (what `gc.get_objects` lists)."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, av.AudioCodecContext))


def test_a_stopped_capture_frees_its_encoder_at_once_not_when_the_garbage_collector_gets_to_it(
    rig: CaptureRig, line: np.ndarray
) -> None:
    """The soak's recorder RSS growth (docs/reliability.md): a capture's objects refer to one another (the stager's
    callbacks, the session's), so an ended call is freed only by a full collection of the garbage collector, which
    counts Python objects, not the ~7 MiB of native memory each FLAC encoder context holds; calls ended and their
    encoders stayed allocated until one ran (`benchmarks/recorder_memory.py`: 10 of 12 ended calls' encoders alive,
    RSS +6 MiB per call). Stopping a capture now frees its encoder itself."""
    gc.collect()
    gc.disable()  # what happens without a collection: the recorder cannot count on one after each call
    try:
        before = _codec_contexts()
        for _ in range(3):
            start = now_ticks()
            capture = rig.capture()
            capture.start(allowed_from_ticks=start)
            for frame in frames_of(line[: 2 * SAMPLE_RATE], start):
                capture.on_audio(frame)
            result = capture.stop(drain_seconds=30)
            assert result.ok, result.failure
            del capture, result
        left = _codec_contexts()
    finally:
        gc.enable()
    assert left == before, f"{left - before} encoders of stopped captures still allocated"


def test_dominant_speaker_changes_are_kept_on_the_audio_timeline_repeats_collapsed_and_bounded(
    rig: CaptureRig, line: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mixed audio says nothing about who spoke; the platform's `AudioSocket.DominantSpeakerChanged` does
    (`DominantSpeakerChangedEventArgs.CurrentDominantSpeaker`: the audio source id, 0xFFFFFFFF for none, no time):
    https://microsoftgraph.github.io/microsoft-graph-comms-samples/docs/bot_media/Microsoft.Skype.Bots.Media.DominantSpeakerChangedEventArgs.html
    The capture keeps each change at the timestamp of the last audio frame before it, collapses repeats, keeps at
    most its bound (counting the rest), and finalise seals them as spans of the mixed track."""
    import recorder_vm.capture.pipeline as pipeline
    from verbatim.evidence.finalise import finalise

    monkeypatch.setattr(pipeline, "MAX_DOMINANT_SPEAKER_CHANGES", 4)
    (source,) = _sources(line, 1, 6.0)
    start = now_ticks()
    frames = frames_of(source, start)
    capture = rig.capture()
    capture.start(allowed_from_ticks=start)
    script = {50: 7001, 60: 7001, 150: 7002, 200: None, 250: 7001, 260: 7002, 270: 7001}  # frame index -> source
    for index, frame in enumerate(frames):
        capture.on_audio(frame)
        if index in script:
            capture.on_dominant_speaker(script[index])
    (result,) = _stop_all([capture])
    _assert_recorded(rig.container(), capture, result, source, len(frames))
    manifest = read_manifest(rig.container(), capture.manifest_blob_name)
    assert manifest is not None
    kept = [(change.ticks, change.source_id) for change in manifest.dominant_speakers]
    assert kept == [
        (frames[50].timestamp_ticks, 7001),  # the repeat at frame 60 is not a change
        (frames[150].timestamp_ticks, 7002),
        (frames[200].timestamp_ticks, None),
        (frames[250].timestamp_ticks, 7001),
    ]
    assert manifest.dominant_speakers_dropped == 2  # frames 260 and 270: past the bound, counted
    assert capture.dominant_speaker == 7001  # the current speaker is still followed (camera subscriptions)

    store = AzureBlobStore(rig.container())
    (mixed,) = finalise(store, store, manifest, recording_id=manifest.recording_id)
    assert mixed.problems == [], mixed.problems
    spans = [(s.source_id, s.basis, s.start_seconds, s.end_seconds) for s in mixed.speech]
    frame_seconds = FRAME_SAMPLES / SAMPLE_RATE
    assert spans == [
        (7001, "dominant-speaker", round(50 * frame_seconds, 3), round(150 * frame_seconds, 3)),
        (7002, "dominant-speaker", round(150 * frame_seconds, 3), round(200 * frame_seconds, 3)),
        (7001, "dominant-speaker", round(250 * frame_seconds, 3), round(mixed.duration_seconds, 3)),
    ]
