"""The capture engine's pass over its calls: a long pass lets the worker's loop run between calls, so responses to
requests under way are read while hundreds of calls set up at once (a unit test of the engine: stand-in captures
whose `service` takes time on a test clock; no wall-clock timing is asserted)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from recorder_vm.capture.engine import CaptureEngine
from recorder_vm.capture.spill import SpillBuffer

if TYPE_CHECKING:
    from recorder_vm.capture.pipeline import CallCapture
    from recorder_vm.capture.storage import AsyncRecordingStore


class StepClock:
    """Time that moves only when a stand-in capture works."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NullStore:
    async def close(self) -> None:
        return None


class SlowCapture:
    """Services take `seconds` of the test clock each; the first one asks the loop to run a callback soon."""

    def __init__(self, name: str, clock: StepClock, seconds: float, log: list[str], done: threading.Event) -> None:
        self.name, self.clock, self.seconds, self.log, self.done = name, clock, seconds, log, done

    def service(self, now: float) -> None:
        if self.done.is_set():
            return
        if self.name == "a":
            asyncio.get_running_loop().call_soon(self.log.append, "loop")
        self.log.append(self.name)
        self.clock.now += self.seconds
        if self.name == "d":
            self.done.set()


def _first_pass(tmp_path: Path, slice_seconds: float) -> tuple[list[str], int]:
    clock = StepClock()
    engine = CaptureEngine(
        store_factory=lambda: cast("AsyncRecordingStore", NullStore()),
        spill=SpillBuffer(tmp_path / f"spill-{slice_seconds}", 1024**2),
        block_seconds=1.5,
        workers=1,
        pass_slice_seconds=slice_seconds,
        clock=clock,
    )
    log: list[str] = []
    done = threading.Event()
    worker = engine.workers[0]
    captures: Sequence[SlowCapture] = [SlowCapture(name, clock, 0.012, log, done) for name in "abcd"]
    for capture in captures:  # all there before the first pass
        worker.attach(cast("CallCapture", capture))
    engine.start()
    try:
        assert done.wait(30)
    finally:
        engine.stop()
    return log[: log.index("d") + 1], worker.passes_yielded


def test_a_pass_longer_than_its_slice_lets_the_loop_run_between_calls(tmp_path: Path) -> None:
    # 12 ms per call against a 20 ms slice: the loop runs after the second call, then the pass goes on.
    order, yielded = _first_pass(tmp_path, 0.02)
    assert order == ["a", "b", "loop", "c", "d"]
    assert yielded >= 1


def test_a_pass_within_its_slice_runs_every_call_before_the_loop(tmp_path: Path) -> None:
    order, yielded = _first_pass(tmp_path, 1.0)
    assert order == ["a", "b", "c", "d"]
    assert yielded == 0
