"""Timer triggers: fire functions on their schedules, with the real host's schedule monitor.

With `useMonitor` (the default for schedules at most once a minute) the listener keeps
Last/Next/LastUpdated in the runtime storage account, in the blob the real host uses
(`azure-webjobs-hosts/timers/<host id>/<timer>/status`). On start it compares the recorded Next with
now: if a due time passed while the host was down, it fires once at once with `past_due=True`. A
`runOnStartup` timer fires once at start. Invocations of one timer never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from devstack.funchost.indexing import HostedFunction
from devstack.funchost.ncrontab import IntervalSchedule, TimerSchedule

logger = logging.getLogger("devstack.funchost.timers")

HOSTS_CONTAINER = "azure-webjobs-hosts"
# .NET's DateTime.MinValue: what the real host records as Last before a timer ever fired.
NEVER = datetime(1, 1, 1, tzinfo=UTC)

Invoke = Callable[[str, Any], Awaitable[Any]]


def _is_never(moment: datetime | None) -> bool:
    return moment is None or moment.year < 1900


def _iso(moment: datetime | None) -> str:
    return (moment or NEVER).isoformat()


def _parse(text: str | None) -> datetime:
    if not text:
        return NEVER
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class ScheduleStatus:
    """When a timer last fired, when it is due next, and when that was computed."""

    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> dict[str, str]:
        return {"Last": _iso(self.last), "Next": _iso(self.next), "LastUpdated": _iso(self.last_updated)}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ScheduleStatus:
        return cls(_parse(document.get("Last")), _parse(document.get("Next")), _parse(document.get("LastUpdated")))


class BlobScheduleMonitor:
    """Schedule status blobs in the runtime storage account (Azurite locally)."""

    def __init__(self, blobs: BlobServiceClient, host_id: str) -> None:
        self.container = blobs.get_container_client(HOSTS_CONTAINER)
        self.host_id = host_id
        self._container_ready = False

    def _blob_name(self, timer_name: str) -> str:
        return f"timers/{self.host_id}/{timer_name}/status"

    def _read(self, timer_name: str) -> ScheduleStatus | None:
        try:
            data = self.container.download_blob(self._blob_name(timer_name)).readall()
        except ResourceNotFoundError:
            return None
        return ScheduleStatus.from_json(json.loads(data))

    def _write(self, timer_name: str, status: ScheduleStatus) -> None:
        if not self._container_ready:
            with contextlib.suppress(ResourceExistsError):
                self.container.create_container()
            self._container_ready = True
        body = json.dumps(status.to_json())
        self.container.upload_blob(self._blob_name(timer_name), body, overwrite=True)

    async def get_status(self, timer_name: str) -> ScheduleStatus | None:
        return await asyncio.to_thread(self._read, timer_name)

    async def update_status(self, timer_name: str, status: ScheduleStatus) -> None:
        await asyncio.to_thread(self._write, timer_name, status)


async def check_past_due(
    monitor: BlobScheduleMonitor, timer_name: str, now: datetime, schedule: TimerSchedule, last: ScheduleStatus | None
) -> tuple[timedelta, ScheduleStatus]:
    """How long the timer has been past due (zero if not), and the status to go on with.

    The real host's rules: a first start records Next from now; a recorded Next that no longer follows
    from Last (the schedule changed) is recomputed, from now if it would lie in the past.
    """
    if last is None:
        status = ScheduleStatus(last=NEVER, next=schedule.next_after(now), last_updated=now)
        await monitor.update_status(timer_name, status)
    else:
        status = last
        if not _is_never(last.last):
            expected, basis = schedule.next_after(last.last), last.last
        elif not _is_never(last.last_updated):
            expected, basis = schedule.next_after(last.last_updated), last.last_updated
        else:
            expected, basis = schedule.next_after(now), now
        if last.next != expected:
            if now > expected:
                expected, basis = schedule.next_after(now), now
            status = ScheduleStatus(last=NEVER, next=expected, last_updated=basis)
            await monitor.update_status(timer_name, status)
    return (now - status.next if now > status.next else timedelta(0)), status


def monitor_by_default(schedule: TimerSchedule, now: datetime) -> bool:
    """The real default of useMonitor: on for schedules that fire at most once a minute."""
    if isinstance(schedule, IntervalSchedule):
        return schedule.interval >= timedelta(minutes=1)
    first = schedule.next_after(now)
    return schedule.next_after(first) - first >= timedelta(minutes=1)


class TimerListener:
    """Runs one timer function on its schedule until stopped."""

    def __init__(
        self,
        function: HostedFunction,
        schedule: TimerSchedule,
        invoke: Invoke,
        monitor: BlobScheduleMonitor | None,
        run_on_startup: bool = False,
    ) -> None:
        self.function = function
        self.schedule = schedule
        self.invoke = invoke
        self.monitor = monitor
        self.run_on_startup = run_on_startup
        self.timer_name = f"Host.Functions.{function.name}"
        self.status: ScheduleStatus | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer:{self.function.name}")

    async def stop(self, grace: float) -> None:
        """Stop scheduling; let a running invocation finish for up to `grace` seconds."""
        self._stopping.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._task.cancel()

    async def _run(self) -> None:
        now = datetime.now(UTC)
        past_due = False
        if self.monitor is not None:
            try:
                last = await self.monitor.get_status(self.timer_name)
                overdue, self.status = await check_past_due(self.monitor, self.timer_name, now, self.schedule, last)
                past_due = overdue > timedelta(0)
            except Exception:
                logger.exception("schedule monitor unavailable for %s; past-due runs are not detected", self.timer_name)
        if self.status is None:
            self.status = ScheduleStatus(last=NEVER, next=self.schedule.next_after(now), last_updated=NEVER)
        logger.info(
            "timer %s scheduled, next run %s", self.function.name, self.status.next.isoformat(),
            extra={"function": self.function.name, "past_due": past_due},
        )  # fmt: skip
        if past_due:
            await self._fire(datetime.now(UTC), past_due=True)
        elif self.run_on_startup:
            await self._fire(datetime.now(UTC), run_on_startup=True)
        while not self._stopping.is_set():
            delay = (self.status.next - datetime.now(UTC)).total_seconds()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return
                except TimeoutError:
                    pass
            await self._fire(datetime.now(UTC))

    async def _fire(self, invoked_at: datetime, past_due: bool = False, run_on_startup: bool = False) -> None:
        assert self.status is not None
        request = TimerRequest(
            past_due=past_due,
            schedule_status=self.status.to_json() if self.monitor is not None else None,
            schedule={"AdjustForDST": True},
        )
        # The invoker logged any failure; it must not stop the schedule.
        with contextlib.suppress(Exception):
            await self.invoke(self.function.name, request)
        # A timer woken a little early still counts as its scheduled occurrence, so Next moves on.
        basis = invoked_at
        if not past_due and not run_on_startup and self.status.next > invoked_at:
            basis = self.status.next
        self.status = ScheduleStatus(last=basis, next=self.schedule.next_after(basis), last_updated=basis)
        if self.monitor is not None:
            try:
                await self.monitor.update_status(self.timer_name, self.status)
            except Exception:
                logger.exception("could not record the schedule status of %s", self.timer_name)
