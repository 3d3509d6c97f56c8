"""Video capture cost: what keeping H.264 as received (cameras and a screen share) adds to a call's capture, per
stream, on the recorder's real capture engine with block uploads to Azurite; evidence bytes per recorded hour per
stream kind; and that audio keeps every frame while video flows.

    .venv/bin/python benchmarks/video_capture.py [--calls 20 50 100] [--seconds 20] [--runs 3] [--cameras 4]
        [--invitations 50]

Each run captures `--calls` calls on one `CaptureEngine` (the recorder's defaults: one worker, 1.5 s blocks, a
private Azurite) twice, in the same process: once audio only, once audio plus one screen share and `--cameras`
camera streams per call. One "media platform" thread delivers, every 20 ms, each call's audio frame and the video
access units due (real H.264 from libx264: cameras 320x180 at 15 fps, the screen share 1280x720 at 1.875 fps,
the simulator's test patterns). CPU is the process's CPU time (every thread) from the end of the warm-up until
every capture has committed; the video run minus the audio run, divided by the streams and the seconds, is the
cost of one video stream in % of a core. Calls per core: at each `--calls` level, one core divided by the CPU
of a call with its screen share and cameras (everything the process spends: audio and video capture, uploads and
the feeder itself, so a conservative figure), with the frames and units dropped at that level. Answer latency: a
real recorder process behind the test-side Teams platform (`recorder_capacity.answer_latency`), `--invitations`
at once, with no video sockets and then with 4 video sockets and the VBSS socket (the media session creates
them before the answer), in the same run. Median and spread over `--runs`, with the load average: on a shared
machine the figures move with the neighbours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.emulators import AzuritePorts, azurite  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.simulator.video import CAMERA, SCREEN, encode  # noqa: E402
from recorder_vm.capture.engine import CaptureEngine  # noqa: E402
from recorder_vm.capture.pipeline import CallCapture  # noqa: E402
from recorder_vm.capture.spill import SpillBuffer  # noqa: E402
from recorder_vm.capture.storage import AzureAsyncRecordingStore, AzureRecordingStore, async_blob_service  # noqa: E402
from recorder_vm.media.base import AudioFrame, VideoFrame  # noqa: E402
from verbatim.evidence.capture import capture_prefix  # noqa: E402
from verbatim.platform.clients import blob_service  # noqa: E402
from verbatim.platform.settings import StorageConnection  # noqa: E402

FRAME = 0.02
CONTAINER = "bench-video"
GOAL_PERCENT_PER_STREAM = 0.5


@dataclass
class Run:
    cpu_seconds: float
    seconds: float
    audio_dropped: int
    video_dropped: int
    failed: int
    bytes_by_kind: dict[str, int]
    seconds_by_kind: dict[str, float]


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _clips(seconds: float) -> dict[str, list[tuple[int, bytes]]]:
    """(20 ms slot, access unit) of a camera and of a screen share, `seconds` long."""
    clips = {}
    for kind, profile, screen in (("camera", CAMERA, False), ("screenShare", SCREEN, True)):
        frames = encode(profile, kind, 0.0, seconds, screen=screen)
        clips[kind] = [(int(f.seconds / FRAME), f.data) for f in frames]
    return clips


def run(
    calls: int,
    seconds: float,
    cameras: int,
    clips: dict[str, list[tuple[int, bytes]]],
    connection: StorageConnection,
    *,
    video: bool,
    warmup: float = 2.0,
) -> Run:
    with tempfile.TemporaryDirectory() as spill_dir:
        engine = CaptureEngine(
            store_factory=lambda: AzureAsyncRecordingStore(async_blob_service(connection), CONTAINER),
            spill=SpillBuffer(Path(spill_dir), 1024**3),
            block_seconds=1.5,
        )
        captures = [
            CallCapture(
                recording_id=str(uuid.uuid4()),
                call_id=str(uuid.uuid4()),
                call_chain_id=None,
                recorder_instance="bench",
                prefix=capture_prefix(str(uuid.uuid4())),
                engine=engine,
                queue_frames=3000,
                unmixed=False,
                on_failure=lambda stage, reason: print(f"capture failed: {stage}: {reason}", file=sys.stderr),
            )
            for _ in range(calls)
        ]
        engine.start()
        allowed_from = time.time_ns() // 100
        for capture in captures:
            capture.start(allowed_from_ticks=allowed_from)
        pcm = bytes(640)  # audio's own cost is recorder_capacity.py's subject; here it is the baseline
        warm = int(warmup / FRAME)
        slots = warm + int(seconds / FRAME)
        clip_slots = int(seconds / FRAME)
        streams = [("vbss", 0, 30_000, clips["screenShare"])] + [
            ("video", index, 20_000 + index, clips["camera"]) for index in range(cameras)
        ]
        # For each slot of the clip, the units due in it: (socket, socket id, source, data)
        due: list[list[tuple[str, int, int, bytes]]] = [[] for _ in range(clip_slots + 1)]
        if video:
            for socket, socket_id, source, clip in streams:
                for slot, data in clip:
                    if slot <= clip_slots:
                        due[slot].append((socket, socket_id, source, data))
        start_ticks = time.time_ns() // 100
        began = time.perf_counter()
        cpu0 = _cpu()
        for n in range(slots):
            wait = began + n * FRAME - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if n == warm:
                cpu0 = _cpu()
            ticks = start_ticks + n * 200_000
            units = due[n % clip_slots] if video else []
            for capture in captures:
                capture.on_audio(AudioFrame(0, ticks, pcm))
                for socket, socket_id, source, data in units:
                    capture.on_video(VideoFrame(socket, socket_id, source, ticks, data))  # type: ignore[arg-type]
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda capture: capture.stop(drain_seconds=60), captures))
        cpu = _cpu() - cpu0
        engine.stop()
    bytes_by_kind: dict[str, int] = {}
    for result in results:
        for track in result.manifest.video_tracks if result.manifest else []:
            bytes_by_kind[track.kind] = bytes_by_kind.get(track.kind, 0) + track.bytes
        if result.manifest:
            bytes_by_kind["audio"] = bytes_by_kind.get("audio", 0) + result.manifest.track().bytes
    total = (slots * FRAME) * calls
    return Run(
        cpu_seconds=cpu,
        seconds=seconds,
        audio_dropped=sum(c.frames_dropped for c in captures),
        video_dropped=sum(c.video_units_dropped for c in captures),
        failed=sum(1 for r in results if not r.ok),
        bytes_by_kind=bytes_by_kind,
        seconds_by_kind={"audio": total, "camera": total * cameras, "screenShare": total},
    )


def _spread(values: list[float], fmt: str) -> str:
    return f"median {format(statistics.median(values), fmt)} (min {format(min(values), fmt)}, max {format(max(values), fmt)})"  # noqa: E501


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[20])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--invitations", type=int, default=0, help="answer latency with/without video; 0: skip")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    clips = _clips(args.seconds)
    per_stream: list[float] = []
    per_core: dict[int, list[float]] = {calls: [] for calls in args.calls}
    dropped: dict[int, list[int]] = {calls: [] for calls in args.calls}
    last: Run | None = None
    with tempfile.TemporaryDirectory() as directory:
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        connection = StorageConnection(name="RECORDINGS_STORAGE", connection_string=ports.connection_string)
        with azurite(ports, Path(directory) / "azurite"):
            AzureRecordingStore(blob_service(connection), CONTAINER).ensure_container()
            for index in range(args.runs):
                for calls in args.calls:
                    audio = run(calls, args.seconds, args.cameras, clips, connection, video=False)
                    video = run(calls, args.seconds, args.cameras, clips, connection, video=True)
                    streams = calls * (1 + args.cameras)
                    percent = (video.cpu_seconds - audio.cpu_seconds) / (streams * args.seconds) * 100
                    if calls == args.calls[0]:
                        per_stream.append(percent)
                    call_share = video.cpu_seconds / (calls * args.seconds)  # of one core, per call with video
                    per_core[calls].append(1 / call_share if call_share > 0 else float("inf"))
                    dropped[calls].append(video.audio_dropped + video.video_dropped + video.failed)
                    print(
                        f"run {index + 1}: {calls} calls x {args.seconds:.0f} s; CPU audio only {audio.cpu_seconds:.2f} s, "  # noqa: E501
                        f"with 1 share + {args.cameras} cameras per call {video.cpu_seconds:.2f} s -> {percent:.3f} % of a core "  # noqa: E501
                        f"per video stream, {100 * call_share:.2f} % per call; dropped audio {audio.audio_dropped}/"
                        f"{video.audio_dropped}, video {video.video_dropped}; failed {audio.failed + video.failed}; "
                        f"load {os.getloadavg()[0]:.1f}"
                    )
                    last = video
    print(
        f"CPU per video stream ({args.calls[0]} calls): {_spread(per_stream, '.3f')} % of a core "
        f"(goal < {GOAL_PERCENT_PER_STREAM} %)"
    )
    for calls in args.calls:
        print(
            f"calls per core with 1 screen share + {args.cameras} cameras each, at {calls} calls: "
            f"{_spread(per_core[calls], '.0f')}; dropped or failed: {max(dropped[calls])} at most"
        )
    if last is not None:
        for kind in ("camera", "screenShare"):  # audio's figure (real speech) is recorder_capacity.py's
            hours = last.seconds_by_kind[kind] / 3600
            if hours and last.bytes_by_kind.get(kind):
                print(f"evidence {kind}: {last.bytes_by_kind[kind] / hours / 1e6:.1f} MB per recorded hour per stream")
    if args.invitations:
        from recorder_capacity import answer_latency  # benchmarks/ is on the path when run as a script

        without, with_video = [], []
        for _ in range(args.runs):
            without.append(_p99(answer_latency(args.invitations)) * 1000)
            video_settings = {"RECORDER_VIDEO_SOCKETS": "4", "RECORDER_SCREEN_SHARE": "true"}
            with_video.append(_p99(answer_latency(args.invitations, video_settings)) * 1000)
            pair = f"audio only {without[-1]:.0f} ms, video {with_video[-1]:.0f} ms"
            print(f"answer p99, {args.invitations} at once: {pair}")
        print(f"answer p99 without video sockets: {_spread(without, '.0f')} ms")
        print(f"answer p99 with 4 video sockets and VBSS: {_spread(with_video, '.0f')} ms")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
