"""The background work of the Durable extension: polling the control and work-item queues.

Both loops poll with a short back-off (50 ms up to 1 s when idle) and are woken at once when this process
queues something itself, or when a durable timer it scheduled falls due. Timers that were pending before a
restart surface on their own (they are invisible queue messages) and are picked up by the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial

from devstack.funchost.durable.activities import WORK_ITEM_LEASE, ActivityDispatcher
from devstack.funchost.durable.client import TaskHubClient
from devstack.funchost.durable.engine import EpisodeRunner
from devstack.funchost.durable.functions import FunctionCatalog, Invoke, run_orchestrator
from devstack.funchost.durable.orchestrations import CONTROL_LEASE, OrchestrationDispatcher
from devstack.funchost.durable.taskhub import TaskHub

log = logging.getLogger("devstack.funchost.durable")

_MIN_POLL = 0.05
_MAX_POLL = 1.0


class DurableRuntime:
    """Dispatchers, client and polling loops of one task hub, for the lifetime of the host."""

    def __init__(self, hub: TaskHub, catalog: FunctionCatalog, invoke: Invoke) -> None:
        self.hub = hub
        self._control_ready = asyncio.Event()
        self._work_ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._timers: set[asyncio.TimerHandle] = set()
        runner = EpisodeRunner(partial(run_orchestrator, invoke, catalog))
        self.orchestrations = OrchestrationDispatcher(hub, runner, self.wake_control_after, self._work_ready.set)
        self.activities = ActivityDispatcher(
            hub, catalog, invoke, hub.options.max_concurrent_activities, self._control_ready.set
        )
        self.client = TaskHubClient(hub, catalog, self._control_ready.set)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.hub.create_if_missing()
        self._tasks = [
            asyncio.create_task(self._poll("control", self._control_ready, self._control_once), name="durable control"),
            asyncio.create_task(self._poll("work items", self._work_ready, self._work_once), name="durable work items"),
        ]

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.orchestrations.release_in_flight()
        await self.activities.stop()
        await self.hub.close()

    def wake_control_after(self, delay: timedelta) -> None:
        """Poll the control queue when `delay` has passed (a durable timer falls due then)."""
        seconds = delay.total_seconds()
        if seconds <= 0:
            self._control_ready.set()
            return
        handle = self._loop.call_later(seconds + 0.05, self._control_ready.set)
        self._timers.add(handle)
        self._loop.call_later(seconds + 0.1, self._timers.discard, handle)

    async def _poll(self, name: str, ready: asyncio.Event, once: Callable[[], Awaitable[bool]]) -> None:
        idle = _MIN_POLL
        while True:
            ready.clear()
            try:
                busy = await once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("durable %s loop: polling failed; retrying", name)
                busy = False
                idle = _MAX_POLL
            if busy:
                idle = _MIN_POLL
                continue
            try:
                await asyncio.wait_for(ready.wait(), idle)
                idle = _MIN_POLL  # woken: something was queued or a timer is due
            except TimeoutError:
                idle = min(idle * 2, _MAX_POLL)

    async def _control_once(self) -> bool:
        batch = await self.hub.control.receive(32, CONTROL_LEASE)
        if batch:
            await self.orchestrations.process_batch(batch)
        return bool(batch)

    async def _work_once(self) -> bool:
        await self.activities.wait_for_slot()
        batch = await self.hub.work_items.receive(self.activities.free_slots, WORK_ITEM_LEASE)
        self.activities.dispatch(batch)
        return bool(batch)
