"""Recorder capacity: how many concurrent calls one core captures with no dropped frame and a media
callback p99 under 1 ms, with real FLAC encoding and block uploads to Azurite; CPU per call and how flat it
stays from 50 to 400 calls; bytes per recorded hour; answer latency with 50 simultaneous invitations.

    .venv/bin/python benchmarks/recorder_capacity.py [--calls 50 100 200 400] [--seconds 20] [--runs 3]

Capture: a private Azurite; N `CallCapture`s on the recorder's real `CaptureEngine` (bounded queue per call
filled by the media callback, a fixed pool of workers draining every call's queue each 100 ms, one FLAC
encoder call per 1.44 s block, blocks staged concurrently on the workers' event loops, commit and manifest
at the end); one "media platform" thread delivers a 20 ms frame of real speech (espeak-ng) to every call
every 20 ms, timing each callback. The first `--warmup` seconds, and longer until every call has set up its
encoder (a cost printed on its own), are fed but not measured. CPU is the process's CPU time (all its
threads, from the kernel) from the end of the warm-up until every capture has committed, minus a baseline
run in the same process whose callbacks discard the frames (the platform's own cost), so it is the capture
pipeline alone; Azurite's CPU is not counted. Each concurrency runs `--runs` times (baseline, then capture);
the median and the spread are printed with the load average, because on a shared machine the wall-clock
figures (callback tail, feeder lateness) move with the neighbours while CPU time mostly does not.
Answering: a real recorder process and the test-side Teams platform (signed JWTs, Graph over TLS), 50
invitations posted at once, latency from the POST to the answer arriving.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform as host
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.emulators import AzuritePorts, azurite  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.testkit.audio import speech, with_silence  # noqa: E402
from devstack.testkit.teams_platform import recorder_on_fake_platform  # noqa: E402
from recorder_vm.capture.encoder import FlacStreamEncoder  # noqa: E402
from recorder_vm.capture.engine import CaptureEngine, default_workers  # noqa: E402
from recorder_vm.capture.pipeline import CallCapture  # noqa: E402
from recorder_vm.capture.spill import SpillBuffer  # noqa: E402
from recorder_vm.capture.storage import (  # noqa: E402
    AzureAsyncRecordingStore,
    AzureRecordingStore,
    async_blob_service,
)
from recorder_vm.collector import freeze_startup_objects  # noqa: E402
from recorder_vm.media.base import AudioFrame  # noqa: E402
from verbatim.evidence.capture import capture_prefix  # noqa: E402
from verbatim.platform.clients import blob_service  # noqa: E402
from verbatim.platform.settings import StorageConnection  # noqa: E402

FRAME = 0.02
CONTAINER = "bench-recordings"
SCRIPT = (
    "Good morning, this is the trading desk. We would like to buy two thousand shares at forty two, "
    "and sell the remainder of the position before the close. Please confirm the order and the price."
)
GOAL_CALLS_PER_CORE = 400
GOAL_FLATNESS = 0.10  # CPU per call at the largest concurrency within 10 % of the smallest's
GOAL_CALLBACK_P99_US = 1000.0


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
    late_ticks: int  # 20 ms ticks the feeder started more than one frame late
    max_late_ms: float
    rss_per_call: float = 0.0  # resident memory a call adds once it captures (bytes)
    storage_failures: int = 0  # staging requests that failed (timed out: Azurite starved); their blocks spilled
    storage_outages: int = 0  # times failures of several blobs put every capture into the back-off (all spilled)
    failed: int = 0
    audio_seconds: float = 0.0
    evidence_bytes: int = 0
    cpu_fed_seconds: float = 0.0  # of cpu_seconds, while frames were being fed (the rest: ending the calls)
    lateness: Lateness | None = None


def _clip() -> np.ndarray:
    audio = with_silence(speech(SCRIPT), 1.0)  # speech with the pauses of a conversation
    return audio[: len(audio) // 320 * 320]


def _cpu() -> float:
    """CPU time of the whole process (every thread), user + system, from the kernel."""
    times = os.times()
    return times.user + times.system


@dataclass
class Timeline:
    """What ran while the feeder was measured, on the monotonic clock: the garbage collector's collections (from
    `gc.callbacks`), the capture workers' passes (`CaptureEngine.pass_observer`), and the feeder's late ticks."""

    collections: list[tuple[float, float, int]]  # (start, end, generation)
    passes: list[tuple[float, float, float]]  # (start, end, seconds servicing calls)
    late: list[tuple[float, float]]  # (when the tick before the late one was due, when the late one started)
    _gc_start: float = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
        else:
            self.collections.append((self._gc_start, time.monotonic(), info["generation"]))

    def on_pass(self, _worker: int, start: float, end: float, busy: float) -> None:
        self.passes.append((start, end, busy))

    def lateness(self, start: float, end: float) -> Lateness:
        """Each late tick put down to what overlapped the stretch from the tick before it to its start: a collection
        of the garbage collector (the interpreter held throughout), else a worker pass that serviced calls for over
        one frame (20 ms; the interpreter held but for its switch interval), else neither (the OS's scheduling,
        the interpreter's hand-overs between threads)."""
        collections = [c for c in self.collections if c[1] >= start and c[0] <= end]
        passes = [p for p in self.passes if p[1] >= start and p[0] <= end]
        by_cause = {"collector": 0, "long pass": 0, "neither": 0}
        for window_start, window_end in self.late:

            def overlap(a: float, b: float) -> float:
                return max(0.0, min(b, window_end) - max(a, window_start))  # noqa: B023

            gc_overlap = max((overlap(c[0], c[1]) for c in collections), default=0.0)
            pass_overlap = max((overlap(p[0], p[1]) for p in passes if p[2] > FRAME), default=0.0)
            if gc_overlap >= FRAME / 2 and gc_overlap >= pass_overlap / 2:
                by_cause["collector"] += 1
            elif pass_overlap > 0:
                by_cause["long pass"] += 1
            else:
                by_cause["neither"] += 1
        full = [c[1] - c[0] for c in collections if c[2] == 2]
        busy = [p[2] for p in passes]
        return Lateness(
            by_cause=by_cause,
            full_collections=len(full),
            longest_collection_ms=1000 * max((c[1] - c[0] for c in collections), default=0.0),
            collections_ms=1000 * sum(c[1] - c[0] for c in collections),
            long_passes=sum(1 for b in busy if b > FRAME),
            longest_pass_ms=1000 * max(busy, default=0.0),
        )


@dataclass
class Lateness:
    by_cause: dict[str, int]  # late ticks put down to each cause
    full_collections: int
    longest_collection_ms: float
    collections_ms: float  # all generations, while measured
    long_passes: int  # worker passes that serviced calls for longer than a frame
    longest_pass_ms: float


@dataclass
class Feed:
    durations: np.ndarray  # of each measured callback, ns
    frames: int  # measured frames per call
    late: int
    max_late_ms: float
    cpu0: float  # process CPU when the measured part began
    rss0: int  # resident bytes when the measured part began
    measured_from: float  # monotonic clock, when the measured part began


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _feed(
    deliver: list[Callable[[AudioFrame], None]],
    clip: np.ndarray,
    seconds: float,
    warmup: float,
    ready: Callable[[], bool],
    late_ticks: list[tuple[float, float]],
) -> Feed:
    """Deliver one frame per call every 20 ms from one thread, timing each callback. The first `warmup` seconds,
    and after them as long as `ready()` is false (calls still setting up their encoders), are delivered but not
    measured."""
    warm = int(warmup / FRAME)
    frames = warm + int(seconds / FRAME)
    chunks = [clip[i : i + 320].tobytes() for i in range(0, len(clip), 320)]
    durations = np.zeros(int(seconds / FRAME) * len(deliver), dtype=np.int64)
    start_ticks = time.time_ns() // 100
    index = late = 0
    max_late = 0.0
    cpu0, rss0 = _cpu(), _rss()
    measured_from = time.monotonic()
    began = time.perf_counter()
    n = 0
    while n < frames:
        due = began + n * FRAME
        wait = due - time.perf_counter()
        if n == warm and not ready():
            warm += 1
            frames += 1
        if n == warm:
            cpu0, rss0, measured_from = _cpu(), _rss(), time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif n >= warm:
            max_late = max(max_late, -wait)
            if wait < -FRAME:
                late += 1
                now = time.monotonic()
                late_ticks.append((now + wait - FRAME, now))
        ticks = start_ticks + n * 200_000
        if n < warm:
            for call, callback in enumerate(deliver):
                callback(AudioFrame(0, ticks, chunks[(n + call * 7) % len(chunks)]))
            n += 1
            continue
        for call, callback in enumerate(deliver):
            frame = AudioFrame(0, ticks, chunks[(n + call * 7) % len(chunks)])
            t0 = time.perf_counter_ns()
            callback(frame)
            durations[index] = time.perf_counter_ns() - t0
            index += 1
        n += 1
    return Feed(durations[:index], frames - warm, late, max_late * 1000, cpu0, rss0, measured_from)


def run_capture(
    calls: int,
    seconds: float,
    clip: np.ndarray,
    connection: StorageConnection,
    *,
    baseline: bool,
    workers: int,
    warmup: float = 2.0,
) -> Run:
    freeze_startup_objects()  # as a recorder does once it has started, before its calls
    with tempfile.TemporaryDirectory() as spill_dir:
        spill = SpillBuffer(Path(spill_dir), 1024**3)
        engine = CaptureEngine(
            store_factory=lambda: AzureAsyncRecordingStore(async_blob_service(connection), CONTAINER),
            spill=spill,
            block_seconds=1.5,
            workers=workers,
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
        deliver: list[Callable[[AudioFrame], None]]
        if baseline:
            deliver = [lambda frame: None for _ in captures]
        else:
            engine.start()
            allowed_from = time.time_ns() // 100  # as if the recording status had just been accepted
            for capture in captures:
                capture.start(allowed_from_ticks=allowed_from)
            deliver = [capture.on_audio for capture in captures]
        timeline = Timeline([], [], [])
        engine.pass_observer = timeline.on_pass
        gc.callbacks.append(timeline.on_gc)
        rss_before = _rss()
        try:
            feed = _feed(
                deliver,
                clip,
                seconds,
                warmup,
                lambda: baseline or all(c.mixed is not None for c in captures),
                timeline.late,
            )
        finally:
            gc.callbacks.remove(timeline.on_gc)
        fed_until, cpu_fed = time.monotonic(), _cpu() - feed.cpu0
        if not baseline:
            # Calls end over a few seconds in real life, not at one instant: stop them 16 at a time.
            with ThreadPoolExecutor(max_workers=16) as pool:
                results = list(pool.map(lambda capture: capture.stop(drain_seconds=60), captures))
        cpu = _cpu() - feed.cpu0
        engine.stop()
        storage_failures, storage_outages = engine.health.failures, engine.health.outages
    durations = feed.durations
    run = Run(
        calls=calls,
        seconds=seconds,
        frames=feed.frames * calls,
        dropped=sum(c.frames_dropped for c in captures) if not baseline else 0,
        p50_us=float(np.percentile(durations, 50)) / 1000,
        p99_us=float(np.percentile(durations, 99)) / 1000,
        max_us=float(durations.max()) / 1000,
        cpu_seconds=cpu,
        late_ticks=feed.late,
        max_late_ms=feed.max_late_ms,
        rss_per_call=(feed.rss0 - rss_before) / calls,
        storage_failures=storage_failures,
        storage_outages=storage_outages,
        cpu_fed_seconds=cpu_fed,
        lateness=timeline.lateness(feed.measured_from, fed_until),
    )
    if not baseline:
        run.failed = sum(1 for r in results if not r.ok)
        if run.failed:
            print(f"{run.failed} captures did not commit: {results[0].failure}", file=sys.stderr)
        tracks = [r.manifest.track() for r in results if r.manifest is not None]
        run.audio_seconds = sum(t.duration_seconds for t in tracks)
        run.evidence_bytes = sum(t.bytes for t in tracks)
    return run


@dataclass
class Level:
    """One concurrency's runs: (baseline, capture) pairs."""

    calls: int
    seconds: float
    pairs: list[tuple[Run, Run]]

    def per_call(self) -> list[float]:
        """CPU of the capture pipeline per call, % of one core, per run."""
        return [
            100 * max(0.0, run.cpu_seconds - base.cpu_seconds) / self.seconds / self.calls for base, run in self.pairs
        ]

    def runs(self) -> list[Run]:
        return [run for _, run in self.pairs]

    def per_call_fed(self) -> list[float]:
        """Of `per_call`, what was spent while frames were fed (the rest: ending the calls, committing)."""
        return [
            100 * max(0.0, run.cpu_fed_seconds - base.cpu_fed_seconds) / self.seconds / self.calls
            for base, run in self.pairs
        ]

    def where_late(self) -> str:
        """The feeder's late ticks put down to their causes, and what the collector and the workers did."""
        lateness = [run.lateness for run in self.runs() if run.lateness is not None]
        causes = {cause: sum(item.by_cause[cause] for item in lateness) for cause in lateness[0].by_cause}
        said = ", ".join(f"{cause} {count}" for cause, count in causes.items())
        return (
            f"late ticks ({len(lateness)} runs): {said}; per run, full collections "
            f"{_spread([float(item.full_collections) for item in lateness], '.0f')}, collector "
            f"{_spread([item.collections_ms for item in lateness], '.0f')} ms in all, longest collection "
            f"{_spread([item.longest_collection_ms for item in lateness], '.0f')} ms; worker passes over a frame "
            f"{_spread([float(item.long_passes) for item in lateness], '.0f')}, longest "
            f"{_spread([item.longest_pass_ms for item in lateness], '.0f')} ms"
        )


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)} to {format(max(values), fmt)})"


def encoder_setup(count: int) -> tuple[float, float]:
    """CPU (ms) and resident memory (MB) of one track's encoder, `count` of them alive at once as in a busy
    recorder."""
    cpu0, rss0 = _cpu(), _rss()
    encoders = [FlacStreamEncoder() for _ in range(count)]
    cpu, rss = _cpu() - cpu0, _rss() - rss0
    del encoders
    return 1000 * cpu / count, rss / count / 1e6


def ok(met: bool) -> str:
    return "met" if met else "NOT met"


def answer_latency(invitations: int, settings: dict[str, str] | None = None) -> list[float]:
    """Seconds from each of `invitations` simultaneous POSTs to its answer, sorted; `settings` are extra recorder
    settings (video sockets: benchmarks/video_capture.py)."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        with recorder_on_fake_platform(root, settings) as running:
            fake, url = running.platform, running.url

            async def invite(count: int) -> list[float]:
                records = await asyncio.gather(*(fake.invite(url, str(uuid.uuid4())) for _ in range(count)))
                await asyncio.gather(*(asyncio.wait_for(r.answer_event.wait(), 30) for r in records))
                return sorted(r.answer_seconds or float("inf") for r in records)

            fake.run(invite(5))  # warm-up: a Graph token and connections, as a running recorder has
            latencies = fake.run(invite(invitations))
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds fed before measuring (call set-up)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="capture workers (engine threads)")
    parser.add_argument("--invitations", type=int, default=50, help="0: skip the answer-latency figure")
    args = parser.parse_args()
    clip = _clip()
    load_start = os.getloadavg()
    print(
        f"machine: {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}; "
        f"{args.workers} capture workers; {args.runs} runs of {args.seconds:.0f} s per concurrency; "
        f"load average at the start {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f}"
    )
    levels: list[Level] = []
    with tempfile.TemporaryDirectory() as directory:
        ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
        connection = StorageConnection(name="RECORDINGS_STORAGE", connection_string=ports.connection_string)
        with azurite(ports, Path(directory) / "azurite"):
            AzureRecordingStore(blob_service(connection), CONTAINER).ensure_container()
            for calls in args.calls:
                pairs = []
                for _ in range(args.runs):
                    base = run_capture(
                        calls, args.seconds, clip, connection, baseline=True, workers=args.workers, warmup=args.warmup
                    )
                    run = run_capture(
                        calls, args.seconds, clip, connection, baseline=False, workers=args.workers, warmup=args.warmup
                    )
                    pairs.append((base, run))
                levels.append(Level(calls, args.seconds, pairs))
                print(f"  {calls} calls done; load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    load_end = os.getloadavg()
    print()
    print(
        "| calls | frames per run | dropped | failed | callback p50 | callback p99 | callback max "
        "| feeder late > 1 frame (ticks) | baseline feeder late (ticks) | feeder max lateness | storage failures "
        "| pipeline CPU per call (% of a core) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for level in levels:
        runs = level.runs()
        print(
            f"| {level.calls} | {runs[0].frames:,} | {sum(r.dropped for r in runs)} | {sum(r.failed for r in runs)} "
            f"| {_spread([r.p50_us for r in runs], '.1f')} µs | {_spread([r.p99_us for r in runs], '.1f')} µs "
            f"| {_spread([r.max_us / 1000 for r in runs], '.1f')} ms "
            f"| {_spread([float(r.late_ticks) for r in runs], '.0f')} "
            f"| {_spread([float(base.late_ticks) for base, _ in level.pairs], '.0f')} "
            f"| {_spread([r.max_late_ms for r in runs], '.1f')} ms "
            f"| {sum(r.storage_failures for r in runs)} | {_spread(level.per_call(), '.3f')} |"
        )
    print("(median of runs, lowest to highest in brackets)")
    for level in levels:
        print(
            f"- {level.calls} calls: CPU per call while fed {_spread(level.per_call_fed(), '.3f')} %, "
            f"storage outages (all captures backed off) {sum(r.storage_outages for r in level.runs())}; "
            f"{level.where_late()}"
        )
    print(f"load average at the end {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f}")
    print()
    first, last = levels[0], levels[-1]
    per_call_first, per_call_last = statistics.median(first.per_call()), statistics.median(last.per_call())
    calls_per_core = 100 / per_call_last if per_call_last else float("inf")
    flatness = per_call_last / per_call_first - 1 if per_call_first else 0.0
    dropped = sum(r.dropped for level in levels for r in level.runs())
    failed = sum(r.failed for level in levels for r in level.runs())
    p99 = max(statistics.median([r.p99_us for r in level.runs()]) for level in levels)
    late = max(statistics.median([float(r.late_ticks) for r in level.runs()]) for level in levels)
    print(f"goals (load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end):")
    print(
        f"- calls per core at {last.calls} calls: {calls_per_core:.0f} ({per_call_last:.3f} % of a core per call); "
        f"goal >= {GOAL_CALLS_PER_CORE}: {ok(calls_per_core >= GOAL_CALLS_PER_CORE)}"
    )
    print(
        f"- CPU per call at {last.calls} vs {first.calls} calls: {flatness:+.1%}; "
        f"goal within {GOAL_FLATNESS:.0%}: {ok(flatness <= GOAL_FLATNESS)}"
    )
    print(f"- dropped frames: {dropped}, captures not committed: {failed}; goal 0: {ok(dropped == 0 and failed == 0)}")
    print(f"- callback p99 (worst median): {p99:.1f} µs; goal < 1 ms: {ok(p99 < GOAL_CALLBACK_P99_US)}")
    print(
        f"- feeder late by more than one frame (worst median, ticks per run): {late:.0f}; goal 0: {ok(late == 0)} "
        "(wall-clock: compare the baseline column, the same feeder with no-op callbacks in the same run; on a loaded "
        "machine it waits for a CPU like everything else)"
    )
    setup_ms, setup_mb = encoder_setup(min(last.calls, 200))
    print(
        f"call set-up, not in the figures above: {setup_ms:.1f} ms of CPU and {setup_mb:.1f} MB resident per track "
        f"(FFmpeg's FLAC encoder context, zeroed on creation); over a 5-minute call that is "
        f"{100 * setup_ms / 1000 / 300:.4f} % of a core"
    )
    bytes_per_hour = [
        r.evidence_bytes / r.audio_seconds * 3600 for level in levels for r in level.runs() if r.audio_seconds
    ]
    print(f"evidence size: {statistics.median(bytes_per_hour) / 1e6:.1f} MB per recorded hour (raw PCM: 115.2 MB)")
    if args.invitations:
        latencies = answer_latency(args.invitations)

        def p(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * (len(latencies) - 1) + 0.5))]

        print(
            f"answer latency, {args.invitations} simultaneous invitations: p50 {p(0.5) * 1000:.0f} ms, "
            f"p99 {p(0.99) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
