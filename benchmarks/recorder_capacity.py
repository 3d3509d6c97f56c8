"""Recorder capacity: how many concurrent calls one core captures with no dropped frame and a media
callback p99 under 1 ms, with real FLAC encoding and block uploads to Azurite; CPU per call; bytes per
recorded hour; answer latency with 50 simultaneous invitations.

    .venv/bin/python benchmarks/recorder_capacity.py [--calls 50 100 200] [--seconds 20]

Capture: a private Azurite; N `CallCapture`s (the recorder's real pipeline: bounded queue, worker thread,
FLAC encoder, blocks staged every 1.5 s, commit and manifest at the end); one "media platform" thread
delivers a 20 ms frame of real speech (espeak-ng) to every call every 20 ms, timing each callback. CPU is
the process's CPU time minus a baseline run whose callbacks discard the frames (the platform's own cost),
so it is the capture pipeline alone. Answering: a real recorder process and the test-side Teams platform
(signed JWTs, Graph over TLS), 50 invitations posted at once, latency from the POST to the answer arriving.
"""

from __future__ import annotations

import argparse
import asyncio
import platform as host
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.emulators import AzuritePorts, azurite  # noqa: E402
from devstack.processes import ManagedProcess, free_port, http_ready  # noqa: E402
from devstack.testkit.audio import speech, with_silence  # noqa: E402
from devstack.testkit.teams_platform import FakePlatform  # noqa: E402
from recorder_vm import launch_argv  # noqa: E402
from recorder_vm.capture.pipeline import CallCapture  # noqa: E402
from recorder_vm.capture.spill import SpillBuffer  # noqa: E402
from recorder_vm.capture.storage import AzureRecordingStore, StorageHealth  # noqa: E402
from recorder_vm.media.base import AudioFrame  # noqa: E402
from verbatim.evidence.capture import capture_prefix  # noqa: E402
from verbatim.platform.clients import blob_service  # noqa: E402
from verbatim.platform.settings import StorageConnection  # noqa: E402

FRAME = 0.02
SCRIPT = (
    "Good morning, this is the trading desk. We would like to buy two thousand shares at forty two, "
    "and sell the remainder of the position before the close. Please confirm the order and the price."
)


@dataclass
class Run:
    calls: int
    seconds: float
    frames: int
    dropped: int
    p50_us: float
    p99_us: float
    max_us: float
    cpu_seconds: float
    late_ticks: int
    audio_seconds: float = 0.0
    evidence_bytes: int = 0


def _clip() -> np.ndarray:
    audio = with_silence(speech(SCRIPT), 1.0)  # speech with the pauses of a conversation
    return audio[: len(audio) // 320 * 320]


def _feed(deliver: list[Callable[[AudioFrame], None]], clip: np.ndarray, seconds: float) -> tuple[np.ndarray, int, int]:
    """Deliver one frame per call every 20 ms from one thread; returns callback durations (ns)."""
    frames = int(seconds / FRAME)
    chunks = [clip[i : i + 320].tobytes() for i in range(0, len(clip), 320)]
    durations = np.zeros(frames * len(deliver), dtype=np.int64)
    start_ticks = time.time_ns() // 100
    index = late = 0
    began = time.perf_counter()
    for n in range(frames):
        due = began + n * FRAME
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif wait < -FRAME:
            late += 1
        ticks = start_ticks + n * 200_000
        for call, callback in enumerate(deliver):
            frame = AudioFrame(0, ticks, chunks[(n + call * 7) % len(chunks)])
            t0 = time.perf_counter_ns()
            callback(frame)
            durations[index] = time.perf_counter_ns() - t0
            index += 1
    return durations[:index], frames, late


def run_capture(calls: int, seconds: float, clip: np.ndarray, connection: StorageConnection, *, baseline: bool) -> Run:
    service = blob_service(connection)
    store = AzureRecordingStore(service, "bench-recordings")
    store.ensure_container()
    health = StorageHealth()
    with tempfile.TemporaryDirectory() as spill_dir:
        spill = SpillBuffer(Path(spill_dir), 1024**3)
        captures = [
            CallCapture(
                recording_id=str(uuid.uuid4()),
                call_id=str(uuid.uuid4()),
                call_chain_id=None,
                recorder_instance="bench",
                prefix=capture_prefix(str(uuid.uuid4()), datetime.now(UTC)),
                store=store,
                spill=spill,
                health=health,
                block_seconds=1.5,
                queue_frames=3000,
                unmixed=False,
                on_failure=lambda stage, reason: print(f"capture failed: {stage}: {reason}", file=sys.stderr),
            )
            for _ in range(calls)
        ]
        deliver: list[Callable[[AudioFrame], None]]
        if baseline:
            sink: list[AudioFrame] = []
            deliver = [lambda frame, keep=sink: None for _ in captures]
        else:
            allowed_from = time.time_ns() // 100  # as if the recording status had just been accepted
            for capture in captures:
                capture.start(allowed_from_ticks=allowed_from)
            deliver = [capture.on_audio for capture in captures]
        cpu0 = time.process_time()
        durations, frames, late = _feed(deliver, clip, seconds)
        if not baseline:
            # Calls end over a few seconds in real life, not at one instant: stop them 16 at a time.
            with ThreadPoolExecutor(max_workers=16) as pool:
                results = list(pool.map(lambda capture: capture.stop(drain_seconds=60), captures))
        cpu = time.process_time() - cpu0
    run = Run(
        calls=calls,
        seconds=seconds,
        frames=frames * calls,
        dropped=sum(c.frames_dropped for c in captures) if not baseline else 0,
        p50_us=float(np.percentile(durations, 50)) / 1000,
        p99_us=float(np.percentile(durations, 99)) / 1000,
        max_us=float(durations.max()) / 1000,
        cpu_seconds=cpu,
        late_ticks=late,
    )
    if not baseline:
        failed = [r for r in results if not r.ok]
        if failed:
            print(f"{len(failed)} captures did not commit: {failed[0].failure}", file=sys.stderr)
        tracks = [r.manifest.track() for r in results if r.manifest is not None]
        run.audio_seconds = sum(t.duration_seconds for t in tracks)
        run.evidence_bytes = sum(t.bytes for t in tracks)
    return run


def answer_latency(invitations: int) -> list[float]:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        fake = FakePlatform(root / "platform")
        fake.start()
        port = free_port()
        env = {
            **fake.recorder_env(),
            "AzureWebJobsStorage": ports.connection_string,
            "RECORDINGS_STORAGE": ports.connection_string,
            "PYTHONPATH": str(ROOT),
            "VERBATIM_LOG_LEVEL": "WARNING",
        }
        with azurite(ports, root / "azurite"):
            recorder = ManagedProcess(
                name="recorder",
                argv=launch_argv(port=port, media_port=free_port(), state_dir=root / "recorder"),
                ready=http_ready(f"http://127.0.0.1:{port}/health", ok=lambda status: status == 200),
                env=env,
                cwd=ROOT,
                log_path=root / "recorder.log",
            )
            with recorder:
                url = f"http://127.0.0.1:{port}"

                async def invite(count: int) -> list[float]:
                    records = await asyncio.gather(*(fake.invite(url, str(uuid.uuid4())) for _ in range(count)))
                    await asyncio.gather(*(asyncio.wait_for(r.answer_event.wait(), 30) for r in records))
                    return sorted(r.answer_seconds or float("inf") for r in records)

                fake.run(invite(5))  # warm-up: a Graph token and connections, as a running recorder has
                latencies = fake.run(invite(invitations))
        fake.stop()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--invitations", type=int, default=50)
    args = parser.parse_args()
    clip = _clip()
    print(f"machine: {host.machine()}, {__import__('os').cpu_count()} cores, Python {host.python_version()}")
    with tempfile.TemporaryDirectory() as directory:
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        connection = StorageConnection(name="RECORDINGS_STORAGE", connection_string=ports.connection_string)
        with azurite(ports, Path(directory) / "azurite"):
            print("| calls | frames | dropped | callback p50 | callback p99 | max | pipeline CPU | CPU per call |")
            print("|---|---|---|---|---|---|---|---|")
            per_call = []
            bytes_per_hour = []
            for calls in args.calls:
                base = run_capture(calls, args.seconds, clip, connection, baseline=True)
                run = run_capture(calls, args.seconds, clip, connection, baseline=False)
                pipeline = max(0.0, run.cpu_seconds - base.cpu_seconds)
                cpu_pct = 100 * pipeline / args.seconds
                per_call.append(cpu_pct / calls)
                bytes_per_hour.append(run.evidence_bytes / max(run.audio_seconds, 1e-9) * 3600)
                print(
                    f"| {calls} | {run.frames} | {run.dropped} | {run.p50_us:.1f} us | {run.p99_us:.1f} us "
                    f"| {run.max_us / 1000:.1f} ms | {cpu_pct:.1f} % of a core | {cpu_pct / calls:.3f} % |"
                    + (f" (feeder late {run.late_ticks}x)" if run.late_ticks else "")
                )
    best = min(per_call)
    print(f"capture pipeline: {best:.3f} % of a core per call -> {100 / best:.0f} calls per core (CPU-bound)")
    print(f"evidence size: {np.mean(bytes_per_hour) / 1e6:.1f} MB per recorded hour (raw PCM: 115.2 MB)")
    latencies = answer_latency(args.invitations)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * (len(latencies) - 1) + 0.5))]  # noqa: E731
    print(
        f"answer latency, {args.invitations} simultaneous invitations: p50 {p(0.5) * 1000:.0f} ms, "
        f"p99 {p(0.99) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
