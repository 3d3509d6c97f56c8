"""Video and screen share through the real pieces: the Teams/Graph simulator streams H.264 (libx264) cameras and a
screen share of a meeting over its media transport, the recorder subscribes its video sockets and its VBSS socket
to the sources the roster's `mediaStreams` name, and keeps every access unit it received, hashed in blocks, with its
timestamp (docs/video.md).

The meeting: Tom (recorded under the strict policy) has his camera on throughout, Cora turns hers on for a while,
Una turns hers on and shares her screen from 3 s to 7 s. The recorder has two video sockets: three cameras do not
fit, so the policy user comes first and a camera is chosen by who spoke last.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pytest
from azure.storage.blob import BlobServiceClient

from devstack.demo import CORA, TOM, UNA
from devstack.simulator.video import read_timecode
from devstack.testkit.probe import ffprobe
from devstack.testkit.teams_platform import wait_until
from tests.conftest import Azurite
from tests.ledger.logkit import memory_log
from tests.recorder.simstack import SimulatorStack, simulator_stack
from verbatim.contracts.evidence import RecordingManifest
from verbatim.contracts.recorder import CaptureManifest, CaptureVideoTrack, RecordingStarted, RecordingStopped
from verbatim.evidence.h264 import stamped_units, strip_timestamps
from verbatim.evidence.verify import verify_recording
from verbatim.evidence.video import ticks_of
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.blobs import AzureBlobStore

SHARE = (3.0, 7.0)


VideoStack = SimulatorStack


def video_stack(azurite: Azurite, root: Path, **settings: str) -> AbstractContextManager[VideoStack]:
    """The simulator and a recorder with two video sockets and the VBSS socket (and `settings` besides)."""
    video = {"RECORDER_VIDEO_SOCKETS": "2", "RECORDER_SCREEN_SHARE": "true", **settings}
    return simulator_stack(azurite, root, f"recorder-events-{root.name.lower()[:20]}", **video)


@pytest.fixture(scope="module")
def stack(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoStack]:
    with video_stack(azurite_service, tmp_path_factory.mktemp("videostack")) as running:
        yield running


def _ticks(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(when.timestamp() * 10_000_000)


def _decode(stream: bytes) -> list[Any]:
    codec = av.CodecContext.create("h264", "r")
    frames: list[Any] = []
    for packet in codec.parse(stream):
        frames.extend(codec.decode(packet))
    return frames


@pytest.fixture(scope="module")
def meeting(stack: VideoStack) -> dict[str, Any]:
    call = stack.sim(
        "POST",
        "/sim/calls",
        {
            "type": "meeting",
            "subject": "Video test",
            "durationSeconds": 9,
            "participants": [
                {"key": "tom", "user": TOM, "camera": [{"at": 0}]},
                {"key": "cora", "user": CORA, "camera": [{"at": 1, "until": 8}]},
                {
                    "key": "una",
                    "user": UNA,
                    "camera": [{"at": 2}],
                    "screenShare": [{"at": SHARE[0], "until": SHARE[1]}],
                },
            ],
            "dialog": [{"speaker": "cora", "text": "Good morning everyone, let us look at the numbers."}],
        },
    )
    state: dict[str, Any] = {}

    def ended() -> bool:
        state.update(stack.sim("GET", f"/sim/calls/{call['id']}"))
        return state["state"] == "ended"

    wait_until(ended, timeout=90)
    recorder = stack.recorder
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=60)
    stopped = next(e for e in recorder.events() if isinstance(e, RecordingStopped))
    container = recorder.container_client()
    manifest = CaptureManifest.model_validate_json(container.download_blob(stopped.manifest_blob_name).readall())
    events = recorder.events()
    return {"state": state, "stopped": stopped, "manifest": manifest, "container": container, "events": events}


def _party(state: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in state["conversations"][0]["participants"] if p["key"] == key)


def _track(manifest: CaptureManifest, name: str) -> CaptureVideoTrack:
    return next(t for t in manifest.video_tracks if t.track == name)


def test_the_recorder_answers_with_video_and_subscribes_within_its_sockets(meeting: dict[str, Any]) -> None:
    state, manifest = meeting["state"], meeting["manifest"]
    (leg,) = state["recorders"]
    assert leg["state"] in ("terminated", "established") and leg["answerLatencyMs"] < 5000
    tom, una = _party(state, "tom"), _party(state, "una")
    names = {t.track for t in manifest.video_tracks}
    # The policy user's camera always, the screen share always; never more cameras at once than sockets.
    assert f"video-{20_000 + tom['sourceId']}" in names
    assert f"screen-{30_000 + una['sourceId']}" in names
    assert {t.kind for t in manifest.video_tracks} == {"camera", "screenShare"}
    started = next(e for e in meeting["events"] if isinstance(e, RecordingStarted))
    assert started.modalities == ["audio", "video", "videoBasedScreenSharing"]
    assert started.capture == started.modalities  # no capture policy names the strict policy: all it receives
    stopped = meeting["stopped"]
    assert {v.track for v in stopped.video} == names


def test_each_stream_is_kept_as_received_hashed_and_stamped(meeting: dict[str, Any]) -> None:
    manifest, container = meeting["manifest"], meeting["container"]
    start = _ticks(meeting["state"]["conversations"][0]["establishedAt"])
    for track in manifest.video_tracks:
        data = container.download_blob(track.blob_name).readall()
        assert len(data) == track.bytes and track.blocks
        assert hashlib.sha256(data).hexdigest() == track.sha256
        for block in track.blocks:
            assert hashlib.sha256(data[block.byte_offset : block.byte_offset + block.size]).hexdigest() == block.sha256
        units = stamped_units(data)
        assert len(units) == track.units
        assert units[0].key, "a subscription starts at a key frame"
        assert [u.ticks for u in units] == sorted(u.ticks for u in units)
        frames = _decode(strip_timestamps(data))
        assert len(frames) >= len(units) - 1  # the decoder may hold the last frame back
        # The picture shows the moment its timestamp says (the simulator burns its timeline position in).
        for index in (0, len(frames) // 2, len(frames) - 1):
            shown = read_timecode(frames[index].to_ndarray(format="gray"))
            stamped_at = (units[index].ticks - start) / 10_000_000
            assert abs(shown - stamped_at) < 0.02, (track.track, index, shown, stamped_at)


def test_the_screen_share_covers_exactly_the_sharing_interval(meeting: dict[str, Any]) -> None:
    manifest, container = meeting["manifest"], meeting["container"]
    start = _ticks(meeting["state"]["conversations"][0]["establishedAt"])
    screen = next(t for t in manifest.video_tracks if t.kind == "screenShare")
    units = stamped_units(container.download_blob(screen.blob_name).readall())
    first, last = (units[0].ticks - start) / 1e7, (units[-1].ticks - start) / 1e7
    assert abs(first - SHARE[0]) <= 1.0 and abs(last - SHARE[1]) <= 1.0, (first, last)
    assert screen.width == 1280 and screen.height == 720


def test_the_simulators_dominant_speaker_changes_are_kept_on_the_audio_timeline(meeting: dict[str, Any]) -> None:
    """Only Cora speaks: the simulator's `dominantSpeakerChanged` (what `AudioSocket.DominantSpeakerChanged` raises:
    https://microsoftgraph.github.io/microsoft-graph-comms-samples/docs/bot_media/Microsoft.Skype.Bots.Media.AudioSocket.html
    ) names her audio source, and the capture keeps it, timed on the audio frames' timeline within the recording."""
    manifest, cora = meeting["manifest"], _party(meeting["state"], "cora")
    changes = manifest.dominant_speakers
    assert [change.source_id for change in changes] == [cora["sourceId"]], changes
    assert manifest.started_at is not None and manifest.ended_at is not None
    assert _ticks(manifest.started_at.isoformat()) <= changes[0].ticks <= _ticks(manifest.ended_at.isoformat())


# --- sealed: the lifecycle's activities over the recorder's real capture (Azurite), then verify ---------------


def lifecycle_deps(azurite: Azurite, captures: Any) -> LifecycleDeps:
    """The lifecycle's dependencies over a recorder's captures container, with fresh containers on Azurite."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    suffix = uuid.uuid4().hex[:8]
    containers = {}
    for role in ("recordings", "scratch"):
        client = service.get_container_client(f"video-{role}-{suffix}")
        client.create_container()
        containers[role] = AzureBlobStore(client)
    deps = LifecycleDeps(
        recordings=containers["recordings"],
        captures=AzureBlobStore(captures),
        scratch=containers["scratch"],
        store=InMemoryRecordingStore(),
        ledger=memory_log(),
        retention=FixedRetention("mifid2", 1827),
        worm=InMemoryWorm(),
        chunk_seconds=4,
    )
    return deps


def run_to_seal(deps: LifecycleDeps, recording_id: str, part: int = 0) -> tuple[Any, Any, list[str]]:
    """What the orchestration does once a part's recorder stopped (or was salvaged): (summary, record, problems)."""
    finalised = activities.finalise_recording(deps, recording_id, part)
    tasks = activities.plan_access_copy(deps, finalised)
    chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
    access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks, part)
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access, part)
    return summary, activities.index_recording(deps, summary, finalised.problems), finalised.problems


def seal_capture(azurite: Azurite, captures: Any, events: list[Any], recording_id: str) -> dict[str, Any]:
    """The lifecycle's activities over a recorder's real capture, into fresh containers on Azurite."""
    deps = lifecycle_deps(azurite, captures)
    for event in events:
        if event.recording_id == recording_id:
            record_event(deps.store, event)
    assert activities.check_recording(deps, recording_id).state == "ended"
    summary, record, problems = run_to_seal(deps, recording_id)
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(summary.seal.manifest_blob))
    return {
        "deps": deps,
        "recording_id": recording_id,
        "manifest": manifest,
        "problems": problems,
        "record": record,
    }


@pytest.fixture(scope="module")
def sealed(meeting: dict[str, Any], azurite_service: Azurite, stack: VideoStack) -> dict[str, Any]:
    stopped = meeting["stopped"]
    return seal_capture(azurite_service, meeting["container"], stack.recorder.events(), stopped.recording_id)


def test_video_streams_are_sealed_parts_of_the_recording_and_verify(sealed: dict[str, Any]) -> None:
    deps, manifest = sealed["deps"], sealed["manifest"]
    assert sealed["problems"] == []
    assert manifest.video and all(v.units and not v.problems for v in manifest.video)
    assert sealed["record"].seal.modalities == ["audio", "video", "videoBasedScreenSharing"]
    assert manifest.video[0].kind == "screenShare"  # screen shares first: the player's default picture
    worm = deps.worm
    assert isinstance(worm, InMemoryWorm)
    protected = {name for name, _ in worm.until}
    assert {v.blob_name for v in manifest.video} <= protected
    assert manifest.video_access_copy is not None and manifest.video_access_copy.blob_name in protected
    # Each stream's own MP4 (the player's camera switch) is sealed, WORM-protected and verified like the rest.
    streams = manifest.video_access_copy.streams
    assert [s.track for s in streams] == manifest.video_access_copy.video_tracks
    assert {s.blob_name for s in streams} <= protected
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(sealed["recording_id"], deps.recordings, ledger)
    assert result.ok, [f.message for f in result.findings]
    assert sum(note.startswith("video ") and "frames" in note for note in result.notes) == len(manifest.video)
    assert any(note.startswith("video access copy") for note in result.notes)
    for stream in streams:
        assert any(note.startswith(f"video access copy of {stream.track} ") for note in result.notes)


def test_who_spoke_is_sealed_from_the_dominant_speaker_on_the_mixed_track(
    meeting: dict[str, Any], sealed: dict[str, Any]
) -> None:
    """Mixed audio: the sealed manifest's mixed track says when the platform named Cora the dominant speaker, with
    her audio source (the roster maps it to her), until the end of the recording (nobody took over)."""
    manifest = sealed["manifest"]
    (mixed,) = [track for track in manifest.evidence if track.kind == "mixed"]
    (span,) = mixed.speech
    cora = _party(meeting["state"], "cora")
    assert (span.basis, span.source_id) == ("dominant-speaker", cora["sourceId"])
    assert 0 <= span.start_seconds < span.end_seconds == round(mixed.duration_seconds, 3)
    (who,) = [p for p in manifest.participants if span.source_id in p.source_ids]
    assert (who.participant_id, who.identity.id) == (cora["participantId"], cora["id"]), who


def test_a_changed_video_block_is_found_and_located_in_time(sealed: dict[str, Any]) -> None:
    deps, manifest = sealed["deps"], sealed["manifest"]
    camera = next(v for v in manifest.video if v.kind == "camera")
    body = bytearray(deps.recordings.read(camera.blob_name))
    block = camera.blocks[len(camera.blocks) // 2]
    body[block.byte_offset + block.size // 2] ^= 0xFF
    original = deps.recordings.read(camera.blob_name)
    deps.recordings.write(camera.blob_name, bytes(body))  # Azurite has no WORM: a tamperer's write succeeds here
    try:
        ledger = deps.ledger
        assert isinstance(ledger, TransparencyLog)
        result = verify_recording(sealed["recording_id"], deps.recordings, ledger)
        (finding,) = result.findings
        assert finding.code == "evidence.altered" and f"blocks {block.index} differ" in finding.message
    finally:
        deps.recordings.write(camera.blob_name, original)


def test_the_access_copy_plays_the_calls_audio_with_its_video_on_one_timeline(
    sealed: dict[str, Any], meeting: dict[str, Any], tmp_path: Path
) -> None:
    deps, manifest = sealed["deps"], sealed["manifest"]
    copy = manifest.video_access_copy
    assert copy is not None
    path = tmp_path / "access.mp4"
    path.write_bytes(deps.recordings.read(copy.blob_name))
    probe = ffprobe(path)
    streams = probe["streams"]
    assert [s["codec_name"] for s in streams] == ["opus"] + ["h264"] * len(manifest.video)
    audio_seconds = manifest.duration_seconds
    assert abs(float(streams[0]["duration"]) - audio_seconds) <= 0.2
    screen = streams[1]
    start = float(screen["start_time"])
    assert abs(start - (manifest.video[0].first_seconds or 0.0)) < 0.05
    # The share ran from 3 s to 7 s of the meeting; on the recording's timeline that is shifted by the moment
    # recording was allowed (media before the `recording` status is not kept).
    established = _ticks(meeting["state"]["conversations"][0]["establishedAt"])
    offset = (ticks_of(manifest.started_at) - established) / 1e7 if manifest.started_at else 0.0
    assert abs(start + offset - SHARE[0]) <= 1.0
    assert abs(start + float(screen["duration"]) + offset - SHARE[1]) <= 1.0
    # A frame sampled from the copy shows the moment of the call it is placed at.
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        for frame in container.decode(video):
            if frame.time is not None and frame.time > start + 1.0:
                shown = read_timecode(frame.to_ndarray(format="gray"))
                assert abs(shown - (frame.time + offset)) < 0.05, (shown, frame.time, offset)
                break
        else:
            pytest.fail("no frame after the first second of the share")


def test_each_stream_has_an_mp4_of_its_own_with_the_calls_audio_on_the_same_timeline(
    sealed: dict[str, Any], meeting: dict[str, Any], tmp_path: Path
) -> None:
    """Browsers play only an MP4's first video track: the player switches cameras by loading a stream's own copy."""
    deps, manifest = sealed["deps"], sealed["manifest"]
    copy = manifest.video_access_copy
    assert copy is not None and len(copy.streams) == len(manifest.video)
    established = _ticks(meeting["state"]["conversations"][0]["establishedAt"])
    offset = (ticks_of(manifest.started_at) - established) / 1e7 if manifest.started_at else 0.0
    for stream, video in zip(copy.streams, manifest.video, strict=True):
        assert (stream.track, stream.kind, stream.participant_id) == (video.track, video.kind, video.participant_id)
        path = tmp_path / f"{stream.track}.mp4"
        path.write_bytes(deps.recordings.read(stream.blob_name))
        probe = ffprobe(path)["streams"]
        assert [s["codec_name"] for s in probe] == ["opus", "h264"]
        assert abs(float(probe[0]["duration"]) - manifest.duration_seconds) <= 0.2
        assert (probe[1]["width"], probe[1]["height"]) == (video.width, video.height)
        assert abs(float(probe[1]["start_time"]) - (video.first_seconds or 0.0)) < 0.05
        with av.open(str(path)) as container:
            checked = 0
            for frame in container.decode(container.streams.video[0]):
                if frame.time is not None and checked < 5:
                    shown = read_timecode(frame.to_ndarray(format="gray"))
                    assert abs(shown - (frame.time + offset)) < 0.05, (stream.track, shown, frame.time, offset)
                    checked += 1
            assert checked == 5
