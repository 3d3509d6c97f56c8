"""The capture engine: a fixed pool of workers that capture every call of the process.

Each worker is one thread running one asyncio loop, with its own asyncio client of the recordings container.
A call's capture is attached to the least busy worker when recording starts and stays there, so everything
about one call (its frame queue, encoders, blocks, uploads) is touched by one thread and needs no lock. Every
`tick_seconds` a worker drains the frame queues of all its calls in one pass: each queue's frames go to their
tracks as one batch (gap check in NumPy, one joined buffer), a block is encoded in one encoder call once a
block's worth has arrived, and blocks are staged concurrently on the worker's loop (one in flight per blob,
in order; `uploads_in_flight` per worker). So the cost per call is its frames' bytes and one encoder call and
one request per block, not a thread and its wake-ups: a few hundred calls cost a few threads. A pass that runs
longer than `pass_slice_seconds` (hundreds of calls starting at once, each setting up its encoder) lets the loop
run between calls, so responses to requests under way are read in time and do not time out behind it.

Stream kinds: the engine and its stagers move bytes and know nothing of audio. A capture routes each
received unit to a stream writer by its kind and source; a writer turns batches into blocks (`BlobStager`
stages them in order, spilling to disk when storage is down) and describes them in the manifest.
`TrackWriter` is the audio kind (PCM in, FLAC blocks out). Video and screen sharing (H.264 kept as received) are
`VideoTrackWriter`s beside it (recorder_vm.capture.video): access units in, each behind a timestamp SEI NAL unit,
a block every `block_seconds`, hashed and named like audio's. The media adapter's video callback appends to a queue
of its own (audio's path is unchanged), `CallCapture` routes units to a writer per source, and the worker, stager,
spill and salvage paths are the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from recorder_vm.capture.spill import SpillBuffer
from recorder_vm.capture.staging import BlobStager
from recorder_vm.capture.storage import AsyncRecordingStore, StorageHealth

if TYPE_CHECKING:
    from recorder_vm.capture.pipeline import CallCapture

log = logging.getLogger(__name__)

T = TypeVar("T")
TICK_SECONDS = 0.1  # how often a worker drains its calls' frame queues
# Longest stretch a worker's pass over its calls runs before it lets its loop answer I/O: a pass over hundreds of
# calls that all start at once (a FLAC encoder context is 6 ms to set up, with the interpreter held) would otherwise
# keep the loop from reading responses for seconds, and requests under way time out although storage answered.
PASS_SLICE_SECONDS = 0.02
UPLOADS_IN_FLIGHT = 16  # staging requests under way at once, per worker (Azure: ~20 ms each; 400 calls need ~280/s)


def default_workers() -> int:
    """One worker. The work of a pass is Python but for the encoder's and the hashes' C calls, which release the
    interpreter, and taking it back waits for whichever thread holds it: two workers busy at once hand it to each
    other at every such call. Measured at 400 calls (one run each, the benchmark's set-up burst, 2026-12-07): with two
    workers a block's encoding took 1.8 ms of wall clock for 0.5 ms of CPU, an encoder's set-up 15 ms for 4.8 ms,
    passes over a worker's calls ran 5-11 s and the run's CPU per call was 0.315 % of a core; with one, 0.65 ms,
    3.3 ms (their CPU), passes under 1.5 s and 0.214 %. More workers pay only where the interpreter is not shared
    (several processes)."""
    return 1


class CaptureWorker:
    """One thread with one event loop, capturing the calls attached to it."""

    def __init__(self, engine: CaptureEngine, index: int) -> None:
        self.engine = engine
        self.index = index
        self.loop = asyncio.new_event_loop()
        self.store: AsyncRecordingStore | None = None
        self.in_flight: asyncio.Semaphore | None = None
        self._captures: list[CallCapture] = []
        self._arriving: deque[CallCapture] = deque()  # attached from other threads, picked up by the next tick
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-worker-{index}", daemon=True)
        self.attached = 0  # captures attached and not yet detached (read by other threads to pick a worker)
        self.passes_yielded = 0  # times a pass over the calls let the loop run before it was done

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def stop(self, timeout: float) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def attach(self, capture: CallCapture) -> None:
        """From any thread (under the engine's lock): the next tick starts draining the capture's queue."""
        self.attached += 1
        self._arriving.append(capture)

    def detach(self, capture: CallCapture) -> None:
        """On the loop: ticks stop draining the capture's queue."""
        with self.engine.lock:
            if capture in self._captures:
                self._captures.remove(capture)
                self.attached -= 1
            elif capture in self._arriving:
                self._arriving.remove(capture)
                self.attached -= 1

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this worker's loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stager(
        self,
        blob_name: str,
        on_staged: Callable[[int, bytes], None],
        on_failure: Callable[[str], None],
        store: AsyncRecordingStore | None = None,
    ) -> BlobStager:
        """A stager of `blob_name` through this worker's store, or through `store` (a call's own view of it:
        recorder_vm.capture.generations)."""
        assert self.store is not None and self.in_flight is not None, "the worker is not running"
        return BlobStager(
            blob_name,
            store=store or self.store,
            spill=self.engine.spill,
            health=self.engine.health,
            in_flight=self.in_flight,
            on_staged=on_staged,
            on_failure=on_failure,
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.in_flight = asyncio.Semaphore(self.engine.uploads_in_flight)
        self.store = self.engine.store_factory()
        self._ready.set()
        try:
            await self._ticks(self._stop)
        finally:
            await self.store.close()

    async def _ticks(self, stop: asyncio.Event) -> None:
        clock = self.engine.clock
        tick = self.engine.tick_seconds
        slice_seconds = self.engine.pass_slice_seconds
        next_tick = clock()
        while not stop.is_set():
            while self._arriving:
                self._captures.append(self._arriving.popleft())
            now = slice_start = clock()
            busy = 0.0  # seconds of this pass spent servicing calls, not in the loop's turns between its slices
            for capture in list(self._captures):
                capture.service(now)
                if clock() - slice_start >= slice_seconds:
                    # Let the loop read what arrived (responses, a stop) before the next call; a capture halted
                    # meanwhile is skipped by its own `service`.
                    self.passes_yielded += 1
                    busy += clock() - slice_start
                    await asyncio.sleep(0)
                    slice_start = clock()
            observer = self.engine.pass_observer
            if observer is not None:
                ended = clock()
                observer(self.index, now, ended, busy + ended - slice_start)
            next_tick = max(next_tick + tick, clock())
            await asyncio.sleep(max(0.0, next_tick - clock()))


class CaptureEngine:
    """The process's capture workers, and what they share: the disk buffer, the view of storage's health."""

    def __init__(
        self,
        *,
        store_factory: Callable[[], AsyncRecordingStore],
        spill: SpillBuffer,
        health: StorageHealth | None = None,
        block_seconds: float,
        workers: int | None = None,
        tick_seconds: float = TICK_SECONDS,
        pass_slice_seconds: float = PASS_SLICE_SECONDS,
        uploads_in_flight: int = UPLOADS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store_factory = store_factory
        self.spill = spill
        self.health = health or StorageHealth()
        self.block_seconds = block_seconds
        self.tick_seconds = tick_seconds
        self.pass_slice_seconds = pass_slice_seconds
        self.uploads_in_flight = uploads_in_flight
        self.clock = clock
        self.workers = [CaptureWorker(self, index) for index in range(workers or default_workers())]
        # Told of every pass of every worker: (worker index, when it began, when it ended, seconds of it spent
        # servicing calls), on the worker's thread. For measurements: benchmarks/recorder_capacity.py times the
        # platform thread's late ticks against the workers' passes.
        self.pass_observer: Callable[[int, float, float, float], None] | None = None
        self.lock = threading.Lock()
        self.started = False

    def start(self) -> None:
        if not self.started:
            for worker in self.workers:
                worker.start()
            self.started = True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers (after every capture has stopped: what is still attached is abandoned)."""
        if self.started:
            for worker in self.workers:
                worker.stop(timeout)
            self.started = False

    def attach(self, capture: CallCapture) -> CaptureWorker:
        """The worker that will capture this call: the one with the fewest calls."""
        if not self.started:
            raise RuntimeError("the capture engine is not running")
        with self.lock:
            worker = min(self.workers, key=lambda candidate: candidate.attached)
            worker.attach(capture)
        return worker
