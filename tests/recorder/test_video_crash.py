"""Killing the recorder in the middle of a screen share loses at most the last block of each stream: the lifecycle
salvages what was staged (audio and video alike), seals it, and the salvaged recording verifies (docs/video.md)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.demo import TOM, UNA
from devstack.testkit.teams_platform import wait_until
from tests.conftest import Azurite
from tests.ledger.logkit import memory_log
from tests.recorder.test_video_capture import VideoStack, stack  # noqa: F401 - a stack (and recorder) of its own
from verbatim.contracts.evidence import RecordingManifest
from verbatim.contracts.recorder import RecordingStarted
from verbatim.evidence.h264 import stamped_units
from verbatim.evidence.verify import verify_recording
from verbatim.evidence.video import ticks_of
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.blobs import AzureBlobStore

BLOCK_SECONDS = 1.5  # the recorder's default RECORDER_BLOCK_SECONDS
FRAME_INTERVAL = {"camera": 1 / 15, "screenShare": 8 / 15}  # the simulator's cameras and screen shares
SLACK = 1.0  # the capture tick (0.1 s), staging and the transport's latency on a shared, loaded machine


def _ticks(text: str) -> int:
    from datetime import datetime

    return ticks_of(datetime.fromisoformat(text.replace("Z", "+00:00")))


def test_a_recorder_killed_mid_share_loses_at_most_the_last_block_of_each_stream(
    stack: VideoStack,  # noqa: F811
    azurite_service: Azurite,
) -> None:
    call = stack.sim(
        "POST",
        "/sim/calls",
        {
            "type": "meeting",
            "subject": "Crash during a screen share",
            "durationSeconds": 30,
            "participants": [
                {"key": "tom", "user": TOM, "camera": [{"at": 0}]},
                {"key": "una", "user": UNA, "screenShare": [{"at": 1}]},
            ],
        },
    )
    recorder = stack.recorder
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=30)
    state: dict[str, Any] = {}

    def position() -> float:
        state.update(stack.sim("GET", f"/sim/calls/{call['id']}"))
        return float(state["conversations"][0]["mediaSeconds"] or 0.0)

    wait_until(lambda: position() >= 7.0, timeout=60)
    time.sleep(0.37)  # somewhere between two block cuts
    killed_at = position()
    recorder.kill()

    started = next(e for e in recorder.events() if isinstance(e, RecordingStarted))
    service = BlobServiceClient.from_connection_string(azurite_service.connection_string)
    suffix = uuid.uuid4().hex[:8]
    stores = []
    for role in ("recordings", "scratch"):
        client = service.get_container_client(f"crash-{role}-{suffix}")
        client.create_container()
        stores.append(AzureBlobStore(client))
    deps = LifecycleDeps(
        recordings=stores[0],
        captures=AzureBlobStore(recorder.container_client()),
        scratch=stores[1],
        store=InMemoryRecordingStore(),
        ledger=memory_log(),
        retention=FixedRetention("mifid2", 1827),
        worm=InMemoryWorm(),
        chunk_seconds=4,
    )
    for event in recorder.events():
        if event.recording_id == started.recording_id:
            record_event(deps.store, event)
    recording_id = started.recording_id

    activities.salvage(deps, recording_id, reason="the recorder was killed")
    finalised = activities.finalise_recording(deps, recording_id)
    tasks = activities.plan_access_copy(deps, finalised)
    chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
    access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks)
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access)
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(summary.seal.manifest_blob))

    assert manifest.salvaged and manifest.status == "interrupted"
    assert {v.kind for v in manifest.video} == {"camera", "screenShare"}
    established = _ticks(state["conversations"][0]["establishedAt"])
    assert manifest.started_at is not None
    offset = (ticks_of(manifest.started_at) - established) / 1e7  # the recording's sample 0 on the call's timeline
    # Every stream is on the audio's timeline: a video time is measured from the recording's sample 0 (its
    # `started_at`), also when the recorder died before its first heartbeat (no progress to salvage with).
    for video in manifest.video:
        first_unit = stamped_units(deps.recordings.read(video.blob_name))[0]
        assert video.first_seconds == pytest.approx((first_unit.ticks - ticks_of(manifest.started_at)) / 1e7, abs=1e-6)
    lost: dict[str, float] = {}
    allowed: dict[str, float] = {}
    for video in manifest.video:
        assert video.units and not video.problems and video.last_seconds is not None
        lost[video.track] = killed_at - (video.last_seconds + offset)
        allowed[video.track] = BLOCK_SECONDS + FRAME_INTERVAL[video.kind] + SLACK
    lost["audio"] = killed_at - (manifest.duration_seconds + offset)
    allowed["audio"] = BLOCK_SECONDS + SLACK
    print(f"killed at {killed_at:.2f} s of the call; lost per stream: {lost}")
    # A block is cut every 1.5 s and staged at once: a stream loses what arrived since its last staged block, i.e.
    # at most a block, plus the time to its last frame before that cut and the delivery's latency.
    assert all(lost[name] <= allowed[name] for name in lost), (lost, allowed)
    screen = next(v for v in manifest.video if v.kind == "screenShare")
    assert screen.first_seconds is not None and abs(screen.first_seconds + offset - 1.0) <= 1.0

    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.ok, [f.message for f in result.findings]
