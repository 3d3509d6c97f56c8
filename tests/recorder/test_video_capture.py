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
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import av
import httpx
import pytest

from devstack.demo import CORA, TOM, UNA
from devstack.processes import ManagedProcess, http_ready
from devstack.simulator import launch_argv as simulator_argv
from devstack.simulator.video import read_timecode
from devstack.stack import StackConfig, StackPorts, recorder_environment, simulator_tenant
from devstack.testkit.teams_platform import wait_until
from recorder_vm import launch_argv as recorder_argv
from tests.conftest import Azurite
from tests.recorder.conftest import REPO_ROOT, RecorderProcess
from verbatim.contracts.recorder import CaptureManifest, CaptureVideoTrack, RecordingStopped
from verbatim.evidence.h264 import stamped_units, strip_timestamps

SHARE = (3.0, 7.0)


@dataclass
class VideoStack:
    config: StackConfig
    recorder: RecorderProcess

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.config.simulator_url}{path}", json=body, timeout=30)
        assert response.status_code < 400, response.text
        return response.json()


@pytest.fixture(scope="module")
def stack(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoStack]:
    root = tmp_path_factory.mktemp("videostack")
    config = StackConfig(state_dir=root / "state", ports=replace(StackPorts.free(), azurite=azurite_service.ports))
    ports = config.ports
    simulator = ManagedProcess(
        name="simulator",
        argv=simulator_argv(
            host="127.0.0.1",
            port=ports.simulator,
            tenant_path=simulator_tenant(config),
            clock="realtime",
            https_port=ports.simulator_https,
            state_dir=config.state_dir / "simulator",
        ),
        ready=http_ready(f"{config.simulator_url}/sim/health", ok=lambda status: status == 200),
        cwd=REPO_ROOT,
        log_path=root / "simulator.log",
        ports=(ports.simulator, ports.simulator_https),
    )
    container, queue = "captures", "recorder-events-video"
    env = {
        **recorder_environment(config),
        "RECORDER_EVENTS_QUEUE": queue,
        "CAPTURES_CONTAINER": container,
        "RECORDER_VIDEO_SOCKETS": "2",
        "RECORDER_SCREEN_SHARE": "true",
    }
    process = ManagedProcess(
        name="recorder",
        argv=recorder_argv(port=ports.recorder, media_port=ports.recorder_media, state_dir=root / "recorder"),
        ready=http_ready(f"{config.recorder_url}/health", ok=lambda status: status == 200),
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        log_path=root / "recorder.log",
        ports=(ports.recorder, ports.recorder_media),
    )
    with simulator, process:
        recorder = RecorderProcess(
            process, ports.recorder, ports.recorder_media, root / "recorder", "sim", azurite_service.connection_string,
            queue, container, env,
        )  # fmt: skip
        yield VideoStack(config, recorder)


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
    return {"state": state, "stopped": stopped, "manifest": manifest, "container": container}


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
