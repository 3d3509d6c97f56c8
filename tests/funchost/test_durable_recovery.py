"""Idempotency of the task hub against real Azurite: redelivered messages and re-run episodes.

The dispatcher is stepped by hand (receive a batch, process it) so a test can duplicate a message or make an
episode fail between sending its work and committing its history, as a crash would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devstack.funchost.durable import messages
from devstack.funchost.durable.client import ClientError, TaskHubClient
from devstack.funchost.durable.engine import EpisodeRunner
from devstack.funchost.durable.history import HistoryEventType
from devstack.funchost.durable.messages import ControlMessage, WorkItem
from devstack.funchost.durable.orchestrations import OrchestrationDispatcher
from devstack.funchost.durable.store import InstanceRow
from devstack.funchost.durable.taskhub import DurableOptions, TaskHub
from tests.conftest import Azurite
from tests.funchost.test_durable_engine import InProcessApp

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def two_steps(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("echo", "one")
    second = yield context.call_activity("echo", "two")
    return [first, second]


@app.activity_trigger(input_name="value")
def echo(value: str) -> str:
    return value


LEASE = timedelta(seconds=30)
FUNCTIONS = InProcessApp(app)  # an app indexes its functions once


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Harness:
    def __init__(self, hub: TaskHub) -> None:
        self.hub = hub
        self.client = TaskHubClient(hub, FUNCTIONS.catalog, wake=lambda: None)
        self.dispatcher = OrchestrationDispatcher(
            hub, EpisodeRunner(FUNCTIONS.orchestrator), wake_up=lambda _delay: None, wake_activities=lambda: None
        )

    async def drain_control(self) -> None:
        while batch := await self.hub.control.receive(32, LEASE):
            await self.dispatcher.process_batch(batch)

    async def work_items(self) -> list[WorkItem]:
        received = await self.hub.work_items.receive(32, LEASE)
        for item in received:
            await self.hub.work_items.delete(item)
        return [WorkItem.from_body(item.body) for item in received]

    async def complete(self, work: WorkItem, times: int = 1) -> None:
        body = ControlMessage(
            messages.result_id(work),
            work.instance_id,
            work.execution_id,
            {
                "EventType": 5,
                "TaskScheduledId": work.task_id,
                "Result": f'"{work.input and work.input.strip(chr(34))}"',
            },
        ).to_body()
        for _ in range(times):
            await self.hub.control.send(body)

    async def row(self, instance_id: str) -> InstanceRow:
        row = await self.hub.store.get_instance(instance_id)
        assert row is not None
        return row

    async def event_types(self, instance_id: str) -> list[HistoryEventType]:
        return [record.event_type for record in await self.hub.store.load_history(await self.row(instance_id))]


@pytest.fixture
async def harness(azurite_service: Azurite) -> AsyncIterator[Harness]:
    options = DurableOptions(hub_name=f"r{uuid.uuid4().hex[:12]}")
    hub = TaskHub.connect(options, {"AzureWebJobsStorage": azurite_service.connection_string})
    await hub.create_if_missing()
    yield Harness(hub)
    await hub.close()


async def test_an_activity_result_delivered_three_times_is_applied_once(harness: Harness) -> None:
    instance_id = await harness.client.start_new("two_steps", None, None)
    await harness.drain_control()
    [first] = await harness.work_items()

    await harness.complete(first, times=2)  # twice in one batch
    await harness.drain_control()
    await harness.complete(first)  # and once more after it was applied
    await harness.drain_control()

    assert (await harness.event_types(instance_id)).count(HistoryEventType.TASK_COMPLETED) == 1
    [second] = await harness.work_items()
    assert (second.name, second.input, second.task_id) == ("echo", '"two"', 1)

    await harness.complete(second)
    await harness.drain_control()
    row = await harness.row(instance_id)
    assert (row.runtime_status, row.output) == ("Completed", '["one", "two"]')


async def test_an_episode_that_crashes_before_its_commit_runs_again_without_duplicating_work(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = await harness.client.start_new("two_steps", None, None)
    save = harness.hub.store.save_instance
    crashed: list[InstanceRow] = []

    async def crash_once(row: InstanceRow) -> InstanceRow:
        if not crashed:
            crashed.append(row)
            raise ConnectionError("the host died here")
        return await save(row)

    monkeypatch.setattr(harness.hub.store, "save_instance", crash_once)
    await harness.drain_control()  # runs the first episode: the work item is sent, the commit fails
    assert crashed
    assert (await harness.row(instance_id)).runtime_status == "Pending"

    await asyncio.sleep(1.2)  # the start message comes back
    await harness.drain_control()  # the episode runs again and commits
    work = await harness.work_items()
    assert [w.id for w in work] == [work[0].id, work[0].id]  # sent by both runs, with the same id

    for item in work:  # both copies run (activities are at-least-once) and report back
        await harness.complete(item)
    await harness.drain_control()
    [second] = await harness.work_items()
    await harness.complete(second)
    await harness.drain_control()

    row = await harness.row(instance_id)
    assert (row.runtime_status, row.output) == ("Completed", '["one", "two"]')
    history = await harness.event_types(instance_id)
    assert history.count(HistoryEventType.TASK_SCHEDULED) == 2
    assert history.count(HistoryEventType.TASK_COMPLETED) == 2
    assert history.count(HistoryEventType.EXECUTION_STARTED) == 1


async def test_an_instance_terminated_before_it_started_never_runs(harness: Harness) -> None:
    instance_id = await harness.client.start_new("two_steps", None, None)
    await harness.client.terminate(instance_id, "changed my mind")  # its start message is still queued

    await harness.drain_control()

    row = await harness.row(instance_id)
    assert (row.runtime_status, row.output) == ("Terminated", '"changed my mind"')
    assert await harness.work_items() == []
    assert await harness.event_types(instance_id) == [
        HistoryEventType.ORCHESTRATOR_STARTED,
        HistoryEventType.EXECUTION_TERMINATED,
        HistoryEventType.ORCHESTRATOR_COMPLETED,
    ]


async def _run_to_completion(harness: Harness, instance_id: str) -> InstanceRow:
    await harness.drain_control()
    for _ in range(2):
        for work in await harness.work_items():
            await harness.complete(work)
        await harness.drain_control()
    return await harness.row(instance_id)


async def test_a_start_whose_message_could_not_be_sent_leaves_no_pending_instance_and_a_retry_runs_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage times out on the start's control message (a chaos run, issue 23: Azurite paused while a recorder
    event started its recording's lifecycle). DurableTask.AzureStorage sends the start message before it writes
    the instance row (`CreateTaskOrchestrationAsync`: `SendTaskOrchestrationMessageInternalAsync`, then
    `trackingStore.SetNewExecutionAsync`), so a start that fails leaves nothing and the caller's retry starts the
    instance. Writing the row first left it `Pending` for good: every retry was refused as a duplicate start."""
    send = harness.hub.control.send
    failures = [TimeoutError("the storage emulator did not answer")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await send(*args, **kwargs)

    monkeypatch.setattr(harness.hub.control, "send", flaky)
    with pytest.raises(TimeoutError):
        await harness.client.start_new("two_steps", "lifecycle-1", None)
    assert await harness.hub.store.get_instance("lifecycle-1") is None

    assert await harness.client.start_new("two_steps", "lifecycle-1", None) == "lifecycle-1"  # the retry
    row = await _run_to_completion(harness, "lifecycle-1")
    assert (row.runtime_status, row.output) == ("Completed", '["one", "two"]')


async def test_a_start_whose_row_could_not_be_written_still_runs_and_a_retry_finds_it_started(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other half of that order: the start message was sent, then storage failed on the instance row. The
    instance runs from its message (the dispatcher writes the row), and a retried start is refused (409) as a
    duplicate of the running one, with no second execution."""
    save = harness.hub.store.save_instance
    failures = [TimeoutError("the storage emulator did not answer")]

    async def flaky(row: InstanceRow) -> InstanceRow:
        if failures and row.runtime_status == "Pending":
            raise failures.pop()
        return await save(row)

    monkeypatch.setattr(harness.hub.store, "save_instance", flaky)
    with pytest.raises(TimeoutError):
        await harness.client.start_new("two_steps", "lifecycle-2", None)

    await harness.drain_control()
    assert (await harness.row("lifecycle-2")).runtime_status == "Running"
    with pytest.raises(ClientError) as refused:
        await harness.client.start_new("two_steps", "lifecycle-2", None)
    assert refused.value.status == 409
    row = await _run_to_completion(harness, "lifecycle-2")
    assert (row.runtime_status, row.output) == ("Completed", '["one", "two"]')
    assert (await harness.event_types("lifecycle-2")).count(HistoryEventType.EXECUTION_STARTED) == 1
