"""The simulator's clock: every platform deadline (answer window, keepAlive, retries, call-record delay,
subscription expiry, 30-day retention) is a timer on it, so tests jump hours ahead instead of sleeping.

Two modes. ``simulated``: time stands still until ``advance()`` moves it; timers fire in time order
during the advance, and the advance waits for the work they start. ``realtime``: time follows the wall
clock (plus whatever ``advance()`` added) and timers fire by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

ClockMode = Literal["simulated", "realtime"]
TimerCallback = Callable[[], Awaitable[None] | None]

log = logging.getLogger("simulator.clock")


@dataclass(order=True)
class _Timer:
    when: datetime
    seq: int
    callback: TimerCallback = field(compare=False)
    label: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)


class TimerHandle:
    """Returned by :meth:`Clock.call_at`; cancel() stops a timer that has not fired yet."""

    def __init__(self, timer: _Timer) -> None:
        self._timer = timer

    @property
    def when(self) -> datetime:
        return self._timer.when

    def cancel(self) -> None:
        self._timer.cancelled = True


class Clock:
    """Simulated or real-time UTC clock with timers and tracked background work."""

    def __init__(self, mode: ClockMode, start: datetime | None = None) -> None:
        self.mode: ClockMode = mode
        wall = datetime.now(UTC)
        self._sim_now = (start or wall).astimezone(UTC)
        self._offset = timedelta(0)
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self._advance_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.fired = 0

    # -- time -----------------------------------------------------------------------------------------
    def now(self) -> datetime:
        if self.mode == "simulated":
            return self._sim_now
        return datetime.now(UTC) + self._offset

    def pending(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)

    def next_due(self) -> datetime | None:
        live = [t.when for t in self._heap if not t.cancelled]
        return min(live) if live else None

    # -- timers ---------------------------------------------------------------------------------------
    def call_at(self, when: datetime, callback: TimerCallback, label: str = "") -> TimerHandle:
        timer = _Timer(when.astimezone(UTC), next(self._seq), callback, label)
        heapq.heappush(self._heap, timer)
        if when <= self.now():
            self.spawn(self._run_due())
        self._wake.set()
        return TimerHandle(timer)

    def call_later(self, seconds: float, callback: TimerCallback, label: str = "") -> TimerHandle:
        return self.call_at(self.now() + timedelta(seconds=seconds), callback, label)

    def cancel_all(self) -> None:
        """Forget every pending timer (used by the simulator's reset)."""
        for timer in self._heap:
            timer.cancelled = True
        self._heap.clear()

    # -- background work ------------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work started by a timer or a request; advance() waits for it before moving on."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def settle(self, limit: float = 60.0) -> None:
        """Wait until background work (and anything it starts) has finished, at most ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            current = [t for t in self._background if t is not asyncio.current_task()]
            remaining = deadline - loop.time()
            if not current or remaining <= 0:
                return
            await asyncio.wait(current, timeout=remaining)

    async def _run_due(self) -> None:
        async with self._run_lock:
            while self._heap and self._heap[0].when <= self.now():
                timer = heapq.heappop(self._heap)
                if timer.cancelled:
                    continue
                await self._fire(timer)

    async def _fire(self, timer: _Timer) -> None:
        self.fired += 1
        try:
            result = timer.callback()
            if result is not None:
                await result
        except Exception:
            log.exception("timer %s failed", timer.label)

    # -- moving time ----------------------------------------------------------------------------------
    async def advance(self, delta: timedelta) -> int:
        """Move time forward, firing due timers in order (each sees now() == its due time)."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        async with self._advance_lock:
            fired_before = self.fired
            await self.settle()  # work already started belongs to the present, not the future
            target = self.now() + delta
            while True:
                async with self._run_lock:
                    while self._heap and self._heap[0].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap or self._heap[0].when > target:
                        break
                    timer = heapq.heappop(self._heap)
                    self._move_to(max(self.now(), timer.when))
                    await self._fire(timer)
                await self.settle()
            self._move_to(target)
            await self._run_due()
            await self.settle()
            return self.fired - fired_before

    def _move_to(self, when: datetime) -> None:
        if self.mode == "simulated":
            self._sim_now = max(self._sim_now, when)
        else:
            gap = when - self.now()
            if gap > timedelta(0):
                self._offset += gap

    # -- realtime ticker ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "realtime" and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)

    async def _tick_forever(self) -> None:
        while True:
            self._wake.clear()
            due = self.next_due()
            timeout = None if due is None else max(0.0, (due - self.now()).total_seconds())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(timeout or 3600.0, 3600.0))
                continue
            await self._run_due()
