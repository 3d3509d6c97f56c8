"""A recording with video continued after a salvage (issue 14's fence, docs/video.md): the lifecycle, believing the
recorder gone, salvages and seals generation 0 in the middle of a screen share; the recorder was alive and goes on in
generation 1, cameras and share included. The continuation's MP4 access copy covers the whole recording, as its Opus
copy does: one track per stream across both parts, each frame at its own moment, and the recording verifies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pytest

from devstack.demo import CORA, TOM, UNA
from devstack.simulator.video import read_timecode
from devstack.testkit.probe import ffprobe
from devstack.testkit.teams_platform import wait_until
from tests.conftest import Azurite
from tests.recorder.test_video_capture import VideoStack, lifecycle_deps, run_to_seal, video_stack
from verbatim.contracts.evidence import RecordingManifest
from verbatim.contracts.recorder import RecordingContinued, RecordingStarted, RecordingStopped
from verbatim.evidence.verify import verify_recording
from verbatim.evidence.video import ticks_of
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.records import record_event

SHARE = (3.0, 12.0)
SALVAGE_AT = 7.0  # seconds into the call: in the middle of the share


@pytest.fixture(scope="module")
def stack(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoStack]:
    with video_stack(azurite_service, tmp_path_factory.mktemp("videocontinued")) as running:
        yield running


@pytest.fixture(scope="module")
def continued(stack: VideoStack, azurite_service: Azurite) -> dict[str, Any]:
    call = stack.sim(
        "POST",
        "/sim/calls",
        {
            "type": "meeting",
            "subject": "Continued video",
            "durationSeconds": 15,
            "participants": [
                {"key": "tom", "user": TOM, "camera": [{"at": 0}]},
                {"key": "cora", "user": CORA},
                {"key": "una", "user": UNA, "screenShare": [{"at": SHARE[0], "until": SHARE[1]}]},
            ],
            "dialog": [{"speaker": "una", "text": "Let me walk you through the figures on my screen."}],
        },
    )
    recorder = stack.recorder
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=30)
    began = time.monotonic()
    started = next(e for e in recorder.events() if isinstance(e, RecordingStarted))
    deps = lifecycle_deps(azurite_service, recorder.container_client())
    time.sleep(max(0.0, SALVAGE_AT - (time.monotonic() - began)))
    # The lifecycle salvages generation 0 (fence first) and seals it as part 0, while the call goes on.
    for event in recorder.events():
        record_event(deps.store, event)
    activities.salvage(deps, started.recording_id, reason="test: judged silent")
    run_to_seal(deps, started.recording_id)
    state: dict[str, Any] = {}

    def ended() -> bool:
        state.update(stack.sim("GET", f"/sim/calls/{call['id']}"))
        return state["state"] == "ended"

    wait_until(ended, timeout=90)
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=60)
    events = recorder.events()
    for event in events:
        record_event(deps.store, event)
    assert any(isinstance(e, RecordingContinued) for e in events)
    assert activities.check_recording(deps, started.recording_id, part=1).state == "ended"
    summary, record, problems = run_to_seal(deps, started.recording_id, part=1)
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(summary.seal.parts[-1].manifest_blob))
    part0 = RecordingManifest.model_validate_json(deps.recordings.read(summary.seal.parts[0].manifest_blob))
    return {
        "deps": deps,
        "record": record,
        "manifest": manifest,
        "part0": part0,
        "state": state,
        "problems": problems,
        "recording_id": started.recording_id,
    }


def test_both_parts_hold_video_and_the_continuation_copy_covers_the_whole_recording(
    continued: dict[str, Any], tmp_path: Path
) -> None:
    deps, record, manifest, part0 = continued["deps"], continued["record"], continued["manifest"], continued["part0"]
    assert [p.part for p in record.seal.parts] == [0, 1] and record.seal.parts[0].interrupted
    assert part0.video and manifest.video, "the share and the camera were captured in both generations"
    copy = manifest.video_access_copy
    assert copy is not None and record.seal.video_access_copy_blob == copy.blob_name
    assert copy.blob_name != part0.video_access_copy.blob_name  # type: ignore[union-attr]
    # One track per stream, across both parts; made from every part's sealed streams.
    tracks = sorted({v.track for v in (*part0.video, *manifest.video)}, key=lambda t: not t.startswith("screen"))
    assert copy.video_tracks == tracks
    assert set(copy.source_sha256) >= {v.sha256 for v in (*part0.video, *manifest.video)}
    path = tmp_path / "continued.mp4"
    path.write_bytes(deps.recordings.read(copy.blob_name))
    probe = ffprobe(path)["streams"]
    assert [s["codec_name"] for s in probe] == ["opus"] + ["h264"] * len(tracks)
    assert abs(float(probe[0]["duration"]) - record.seal.duration_seconds) <= 0.2
    # The screen share runs from part 0 into part 1 without a break, on the call's timeline.
    established = continued["state"]["conversations"][0]["establishedAt"]
    call_start = datetime.fromisoformat(established.replace("Z", "+00:00"))
    offset = (ticks_of(manifest.started_at) - ticks_of(call_start)) / 1e7 if manifest.started_at else 0.0
    screen = probe[1]
    start, end = float(screen["start_time"]), float(screen["start_time"]) + float(screen["duration"])
    assert abs(start + offset - SHARE[0]) <= 1.0 and abs(end + offset - SHARE[1]) <= 1.0, (start, end, offset)
    # Frames on both sides of the salvage show the moment they are placed at.
    checked = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time is None:
                continue
            for moment in (SALVAGE_AT - 2.5, SALVAGE_AT + 2.5):
                if moment not in checked and frame.time + offset >= moment:
                    shown = read_timecode(frame.to_ndarray(format="gray"))
                    assert abs(shown - (frame.time + offset)) < 0.05, (shown, frame.time, offset)
                    checked.append(moment)
    assert len(checked) == 2, checked
    # The share's own MP4 (the player's camera switch) runs through both parts as well, and so on the same timeline.
    share = copy.stream(tracks[0])
    assert share is not None and set(share.source_sha256) >= {
        v.sha256 for v in (*part0.video, *manifest.video) if v.track == tracks[0]
    }
    own = tmp_path / "share.mp4"
    own.write_bytes(deps.recordings.read(share.blob_name))
    with av.open(str(own)) as container:
        (video,) = container.streams.video
        times = [frame.time for frame in container.decode(video) if frame.time is not None]
    assert abs(times[0] - start) < 0.05 and abs(times[-1] - (start + float(screen["duration"]))) < 1.0
    assert any(t + offset < SALVAGE_AT - 1.0 for t in times) and any(t + offset > SALVAGE_AT + 1.0 for t in times)


def test_the_continued_recording_verifies(continued: dict[str, Any]) -> None:
    deps = continued["deps"]
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(continued["recording_id"], deps.recordings, ledger)
    assert result.ok, [f.message for f in result.findings]
    combined = [note for note in result.notes if note.startswith("video access copy ") and " of " not in note[:22]]
    assert len(combined) == 2  # each part's copy as sealed
    part0, manifest = continued["part0"], continued["manifest"]
    copies = [m.video_access_copy for m in (part0, manifest)]
    assert all(c is not None and [s.track for s in c.streams] == c.video_tracks for c in copies)
    own = sum(len(c.streams) for c in copies if c is not None)
    assert sum(note.startswith("video access copy of ") for note in result.notes) == own  # each stream's own copy
