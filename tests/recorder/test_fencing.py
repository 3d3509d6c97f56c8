"""Issue 14: the lifecycle salvages a capture while its recorder is alive after all (a stalled heartbeat, a
partition). Salvage fences the generation first (a marker, then the recorder's leases broken), so from then on
the recorder cannot change what is being sealed; it goes on in the next generation, says so
(`recording.continued`), and everything it captured is in one generation or the other, bit-exact."""

from __future__ import annotations

import hashlib
import io

import av
import numpy as np

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory
from verbatim.contracts.recorder import CaptureManifest, RecordingContinued, RecordingStarted, RecordingStopped
from verbatim.evidence import names
from verbatim.evidence.flac import parse_header
from verbatim.evidence.salvage import salvage_capture
from verbatim.lifecycle.records import check_event_paths
from verbatim.platform.blobs import AzureBlobStore


def samples_of(flac: bytes) -> int:
    with av.open(io.BytesIO(flac), format="flac") as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def test_a_live_recorder_salvaged_mid_call_goes_on_in_a_continuation_and_loses_nothing(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    line = speech("The desk confirms the trade, reference delta nine, settlement in two days.")
    source = with_silence(line, 0.4, line, 0.4, line)
    script = CallScript(audio=source, realtime=True)
    call = platform.submit(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    record = platform.calls[script.call_id]
    wait_until(lambda: record.frames_sent >= 250, timeout=30)  # 5 s streamed, a few blocks staged

    # The lifecycle, believing the recorder gone, salvages generation 0 (fence first, then commit).
    started = next(e for e in recorder.events() if isinstance(e, RecordingStarted))
    recording_id = started.recording_id
    captures = AzureBlobStore(recorder.container_client())
    salvaged = salvage_capture(
        captures, recording_id=recording_id, call_id=started.call_id, recorder_instance=started.recorder_instance
    )
    assert salvaged.leases_broken >= 1 and salvaged.mixed.blocks
    g0 = names.capture_track_name(recording_id, 0)
    fenced_bytes = captures.read(g0)

    call.result(timeout=120)
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=60)
    events = recorder.events()
    (continued,) = [e for e in events if isinstance(e, RecordingContinued)]
    stopped = next(e for e in events if isinstance(e, RecordingStopped))
    for event in events:
        check_event_paths(event)  # every name the recorder sends is its own (what the lifecycle checks)

    # Nothing the recorder did after the fence changed generation 0.
    assert captures.read(g0) == fenced_bytes
    assert hashlib.sha256(fenced_bytes).hexdigest() == salvaged.mixed.sha256
    kept = len(salvaged.mixed.blocks)
    assert (continued.generation, continued.first_block, continued.kept_blocks) == (1, kept, kept)
    assert stopped.generation == 1 and stopped.blob_name == names.capture_track_name(recording_id, 1)

    # Generation 1 holds the rest, from the block after the last one salvage kept, described by its manifest.
    g1 = CaptureManifest.model_validate_json(captures.read(names.capture_manifest_name(recording_id, 1)))
    assert g1.generation == 1 and g1.complete
    track = g1.track()
    assert [b.index for b in track.blocks] == list(range(kept, kept + len(track.blocks)))
    continuation = captures.read(names.capture_track_name(recording_id, 1))
    assert hashlib.sha256(continuation).hexdigest() == track.sha256 and len(continuation) == track.bytes
    assert track.blocks[0].start_sample == salvaged.mixed.samples == continued.first_sample

    # Together they are every sample the recorder captured, bit-exact: the continuation decodes after the FLAC
    # stream header of generation 0.
    header = fenced_bytes[: parse_header(fenced_bytes).header_length]
    first, rest = decode(fenced_bytes), decode(header + continuation)
    audio = np.concatenate([first, rest])
    assert len(rest) == samples_of(header + continuation) == sum(b.samples for b in track.blocks)
    assert len(source) - len(audio) < 16000 * 0.6  # the whole call (the platform's last frames may be cut)
    assert np.array_equal(audio, source[: len(audio)])
