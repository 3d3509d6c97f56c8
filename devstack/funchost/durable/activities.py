"""The activity dispatcher: runs work items and reports each result to its orchestration.

A work item stays invisible while its activity runs (its lease is renewed), and is deleted only after the
result is on the control queue. A crash in between runs the activity again — activities are at-least-once,
as with the real extension — and the second result is dropped by the orchestration (same message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from devstack.funchost.durable import messages
from devstack.funchost.durable.functions import ActivityFailure, FunctionCatalog, Invoke, run_activity
from devstack.funchost.durable.history import HistoryEventType
from devstack.funchost.durable.messages import ControlMessage, WorkItem
from devstack.funchost.durable.queues import Received
from devstack.funchost.durable.taskhub import TaskHub

log = logging.getLogger("devstack.funchost.durable")

WORK_ITEM_LEASE = timedelta(seconds=30)


class _Lease:
    """The latest receipt of a work item whose lease is being renewed."""

    def __init__(self, received: Received) -> None:
        self.current: Received | None = received


class ActivityDispatcher:
    """Runs activities from the work-item queue, at most `concurrency` at a time."""

    def __init__(
        self,
        hub: TaskHub,
        catalog: FunctionCatalog,
        invoke: Invoke,
        concurrency: int,
        wake_orchestrations: Callable[[], None],
    ) -> None:
        self._hub = hub
        self._catalog = catalog
        self._invoke = invoke
        self._concurrency = concurrency
        self._wake = wake_orchestrations
        self._running: dict[asyncio.Task[None], _Lease] = {}

    @property
    def free_slots(self) -> int:
        return self._concurrency - len(self._running)

    def dispatch(self, batch: list[Received]) -> None:
        for received in batch:
            lease = _Lease(received)
            task = asyncio.create_task(self._run(lease), name=f"activity {received.body.get('id')}")
            self._running[task] = lease
            task.add_done_callback(self._running.pop)

    async def wait_for_slot(self) -> None:
        if self._running and self.free_slots <= 0:
            await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)

    async def stop(self) -> None:
        """Cancel what runs and hand its work items back to the queue at once."""
        running = dict(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for lease in running.values():
            if lease.current is not None:
                with contextlib.suppress(Exception):
                    await self._hub.work_items.release(lease.current)

    async def _run(self, lease: _Lease) -> None:
        assert lease.current is not None
        work = WorkItem.from_body(lease.current.body)
        finished = asyncio.Event()
        renewal = asyncio.create_task(self._keep_leased(lease, finished))
        try:
            if await self._still_wanted(work):
                event = await self._execute(work)
                await self._hub.control.send(
                    ControlMessage(messages.result_id(work), work.instance_id, work.execution_id, event).to_body()
                )
                self._wake()
        except Exception:
            # Left leased: the work item surfaces again when the lease runs out, and is retried.
            log.exception("activity work item %s could not be completed; it will be retried", work.id)
            return
        finally:
            # Let a renewal in flight finish, so the receipt used to delete the work item is the latest one.
            finished.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(renewal)
        if lease.current is not None:
            await self._hub.work_items.delete(lease.current)
            lease.current = None

    async def _still_wanted(self, work: WorkItem) -> bool:
        """Skip activities of executions that are over (completed, failed, terminated or replaced)."""
        row = await self._hub.store.get_instance(work.instance_id)
        return row is not None and row.execution_id == work.execution_id and not row.is_terminal

    async def _execute(self, work: WorkItem) -> dict[str, object]:
        try:
            result = await run_activity(self._invoke, self._catalog, work.name, work.input)
        except ActivityFailure as failure:
            log.info("activity %s of %s failed: %s", work.name, work.instance_id, failure.reason)
            return {
                "EventType": int(HistoryEventType.TASK_FAILED),
                "TaskScheduledId": work.task_id,
                "Reason": failure.reason,
                "Details": failure.details,
            }
        return {"EventType": int(HistoryEventType.TASK_COMPLETED), "TaskScheduledId": work.task_id, "Result": result}

    async def _keep_leased(self, lease: _Lease, finished: asyncio.Event) -> None:
        """Renew the work item's lease while its activity runs."""
        while lease.current is not None:
            try:
                await asyncio.wait_for(finished.wait(), WORK_ITEM_LEASE.total_seconds() / 3)
                return
            except TimeoutError:
                lease.current = await self._hub.work_items.release(lease.current, WORK_ITEM_LEASE)
