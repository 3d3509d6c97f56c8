"""Runs orchestrator episodes: new events in, the SDK's replay engine runs the orchestrator, new work out.

The orchestrator itself is executed by the `azure-functions-durable` SDK (the registered orchestrator
function replays the whole history and returns the cumulative action list); this module plays the part of
the Durable extension and DTFx around it: it frames episodes (`OrchestratorStarted` ... `OrchestratorCompleted`),
hands out task ids in the order the SDK does, turns new actions into scheduling events and outbound work,
and runs the -WithRetry protocol the SDK expects (after every failed attempt a retry timer, then a new attempt
while attempts remain).

Task ids are unambiguous because an episode never contains more than one event that makes the engine hand
out retry ids, and it is the episode's last event: the SDK then assigns ids to the orchestrator's new actions
first and to the retry timer or new attempt after them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.durable_functions.models.actions import ActionType

from devstack.funchost.durable.actions import UNSUPPORTED, Action, OrchestratorResult
from devstack.funchost.durable.history import (
    FAILURE_EVENTS,
    HistoryEventType,
    HistoryRecord,
    event,
    for_replay,
    format_timestamp,
    utc_now,
)
from devstack.funchost.durable.state import ExecutionState, ScheduledTask, TaskKind

UPPER_SCHEMA_VERSION = 2

OrchestratorInvoker = Callable[[str, Mapping[str, Any]], Awaitable[OrchestratorResult]]
"""Runs the named orchestrator function with a context; returns what the SDK produced."""


@dataclass(frozen=True)
class Inbound:
    """An event delivered to an instance (from the control queue), identified for deduplication."""

    message_id: str
    event: Mapping[str, Any]  # EventType and the event's own fields; Timestamp and EventId are added on apply

    @property
    def event_type(self) -> HistoryEventType:
        return HistoryEventType(int(self.event["EventType"]))


# --- what an episode sends out ---


@dataclass(frozen=True)
class ScheduleActivity:
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class ScheduleTimer:
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class StartSubOrchestration:
    task_id: int
    name: str
    instance_id: str
    input: str | None
    version: str | None


Outbound = ScheduleActivity | ScheduleTimer | StartSubOrchestration


# --- how an execution ends ---


@dataclass(frozen=True)
class Completed:
    output: str  # JSON text


@dataclass(frozen=True)
class Failed:
    reason: str
    details: str


@dataclass(frozen=True)
class ContinuedAsNew:
    input: str | None  # JSON text of the new input


@dataclass(frozen=True)
class Terminated:
    reason: str | None


Outcome = Completed | Failed | ContinuedAsNew | Terminated


@dataclass
class RunResult:
    """Everything a batch of inbound events produced, to be committed together."""

    new_records: list[HistoryRecord] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)
    outcome: Outcome | None = None
    custom_status: Any = None
    ran_orchestrator: bool = False


@dataclass(frozen=True)
class _RetryTimer:
    """A failed attempt of a retried call: the engine starts the retry timer."""

    failed: ScheduledTask


@dataclass(frozen=True)
class _NextAttempt:
    """A retry timer fired and attempts remain: the engine schedules the next attempt."""

    timer: ScheduledTask


_RetryStep = _RetryTimer | _NextAttempt


def _retry_step(state: ExecutionState, inbound: Inbound) -> _RetryStep | None:
    kind = inbound.event_type
    if kind in FAILURE_EVENTS:
        task = state.scheduled.get(int(inbound.event["TaskScheduledId"]))
        if task is not None and task.retry is not None:
            return _RetryTimer(task)
    elif kind == HistoryEventType.TIMER_FIRED:
        timer = state.scheduled.get(int(inbound.event["TimerId"]))
        if (
            timer is not None
            and timer.kind is TaskKind.RETRY_TIMER
            and timer.retry is not None
            and timer.chain is not None
            and state.attempts_in_chain(timer.chain) < timer.retry.max_attempts
        ):
            return _NextAttempt(timer)
    return None


class EpisodeRunner:
    """Applies inbound events to one execution, one or more episodes at a time."""

    def __init__(self, invoke: OrchestratorInvoker, clock: Callable[[], datetime] = utc_now) -> None:
        self._invoke = invoke
        self._clock = clock

    async def run(self, state: ExecutionState, inbound: Sequence[Inbound]) -> RunResult:
        """Run episodes until the inbound events are applied or the execution ends. Mutates `state`."""
        result = RunResult()
        remaining = list(inbound)
        while remaining and result.outcome is None:
            batch: list[Inbound] = []
            step: _RetryStep | None = None
            while remaining:
                item = remaining.pop(0)
                batch.append(item)
                step = _retry_step(state, item)
                if step is not None:
                    break
            await self._episode(state, batch, step, result)
        return result

    def terminate(self, state: ExecutionState, inbound: Inbound) -> RunResult:
        """Apply an ExecutionTerminated event without running the orchestrator."""
        now = self._clock()
        reason = inbound.event.get("Input")
        records = [
            HistoryRecord(event(HistoryEventType.ORCHESTRATOR_STARTED, now)),
            HistoryRecord(
                event(HistoryEventType.EXECUTION_TERMINATED, now, Input=reason),
                {"message": inbound.message_id},
            ),
            HistoryRecord(event(HistoryEventType.ORCHESTRATOR_COMPLETED, now)),
        ]
        for record in records:
            state.append(record)
        return RunResult(new_records=records, outcome=Terminated(reason))

    def fail(self, state: ExecutionState, reason: str) -> RunResult:
        """Fail the instance without running the orchestrator (a version this worker may not run)."""
        now = self._clock()
        records = [
            HistoryRecord(event(HistoryEventType.ORCHESTRATOR_STARTED, now)),
            HistoryRecord(
                event(
                    HistoryEventType.EXECUTION_COMPLETED,
                    now,
                    OrchestrationStatus="Failed",
                    Result=reason,
                    Reason=reason,
                    Details=reason,
                )
            ),
            HistoryRecord(event(HistoryEventType.ORCHESTRATOR_COMPLETED, now)),
        ]
        for record in records:
            state.append(record)
        return RunResult(new_records=records, outcome=Failed(reason, reason))

    async def _episode(
        self, state: ExecutionState, batch: Sequence[Inbound], step: _RetryStep | None, result: RunResult
    ) -> None:
        now = self._clock()
        played = len(state.records)
        new_records = [HistoryRecord(event(HistoryEventType.ORCHESTRATOR_STARTED, now))]
        for inbound in batch:
            fields = {key: value for key, value in inbound.event.items() if key not in {"EventType", "Timestamp"}}
            fields.setdefault("EventId", -1)
            event_id = int(fields.pop("EventId"))
            new_records.append(
                HistoryRecord(event(inbound.event_type, now, event_id, **fields), {"message": inbound.message_id})
            )
        for record in new_records:
            state.append(record)

        started = state.execution_started
        parent = started.get("ParentInstance") or {}
        context = {
            "history": for_replay(state.records[:played], state.records[played:]),
            "instanceId": state.instance_id,
            "isReplaying": False,
            "parentInstanceId": parent.get("InstanceId"),
            "input": started.get("Input"),
            "upperSchemaVersion": UPPER_SCHEMA_VERSION,
        }
        name = str(started["Name"])
        sdk = await self._invoke(name, context)
        result.ran_orchestrator = True
        result.custom_status = sdk.custom_status

        emitted: list[HistoryRecord] = []
        outcome: Outcome | None = None
        if sdk.error is not None:
            outcome = Failed(f"Orchestrator function '{name}' failed: {sdk.error}", sdk.error)
        else:
            for action in sdk.actions[state.action_cursor :]:
                outcome = self._schedule(state, action, now, emitted, result)
                if outcome is not None:
                    break
            cursor = len(sdk.actions)
            if outcome is None and step is not None:
                self._retry(state, step, now, emitted, result)
            if outcome is None and sdk.is_done:
                outcome = Completed(json.dumps(sdk.output))
            state.action_cursor = cursor

        for record in emitted:
            state.append(record)
        if isinstance(outcome, Completed):
            state.append(
                HistoryRecord(
                    event(
                        HistoryEventType.EXECUTION_COMPLETED,
                        now,
                        OrchestrationStatus="Completed",
                        Result=outcome.output,
                    )
                )
            )
        elif isinstance(outcome, Failed):
            state.append(
                HistoryRecord(
                    event(
                        HistoryEventType.EXECUTION_COMPLETED,
                        now,
                        OrchestrationStatus="Failed",
                        Result=outcome.reason,
                        Reason=outcome.reason,
                        Details=outcome.details,
                    )
                )
            )
        elif isinstance(outcome, ContinuedAsNew):
            state.append(HistoryRecord(event(HistoryEventType.CONTINUE_AS_NEW, now, Input=outcome.input)))
        state.append(
            HistoryRecord(
                event(HistoryEventType.ORCHESTRATOR_COMPLETED, now),
                {"nextTaskId": state.next_task_id, "actionCursor": state.action_cursor},
            )
        )
        result.new_records.extend(state.records[played:])
        result.outcome = outcome

    def _take_task_id(self, state: ExecutionState) -> int:
        task_id = state.next_task_id
        state.next_task_id += 1
        return task_id

    def _schedule(
        self, state: ExecutionState, action: Action, now: datetime, emitted: list[HistoryRecord], result: RunResult
    ) -> Outcome | None:
        """Turn one new action into a scheduling event and outbound work; returns an outcome if it ends the run."""
        if action.type in UNSUPPORTED:
            message = UNSUPPORTED[action.type]
            name = state.execution_started.get("Name")
            return Failed(f"Orchestrator function '{name}' failed: {message}", message)
        if not action.consumes_task_id:
            return None
        task_id = self._take_task_id(state)
        if action.type in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY):
            retry = action.retry if action.type == ActionType.CALL_ACTIVITY_WITH_RETRY else None
            task = ScheduledTask(task_id, TaskKind.ACTIVITY, action.function_name, action.input, retry=retry)
            emitted.append(self._scheduled_record(task, now, chain=task_id if retry else None))
            result.outbound.append(ScheduleActivity(task_id, action.function_name, action.input))
        elif action.type in (ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            retry = action.retry if action.type == ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY else None
            child = action.instance_id or f"{state.instance_id}:{task_id}"
            task = ScheduledTask(
                task_id,
                TaskKind.SUB_ORCHESTRATION,
                action.function_name,
                action.input,
                instance_id=child,
                version=action.version,
                retry=retry,
            )
            emitted.append(self._scheduled_record(task, now, chain=task_id if retry else None))
            result.outbound.append(
                StartSubOrchestration(task_id, action.function_name, child, action.input, action.version)
            )
        elif action.type == ActionType.CREATE_TIMER:
            fire_at = action.fire_at
            emitted.append(
                self._scheduled_record(ScheduledTask(task_id, TaskKind.TIMER, fire_at=fire_at), now, chain=None)
            )
            result.outbound.append(ScheduleTimer(task_id, fire_at))
        elif action.type == ActionType.CONTINUE_AS_NEW:
            return ContinuedAsNew(action.input)
        return None

    def _retry(
        self, state: ExecutionState, step: _RetryStep, now: datetime, emitted: list[HistoryRecord], result: RunResult
    ) -> None:
        if isinstance(step, _RetryTimer):
            failed = step.failed
            assert failed.retry is not None
            timer_id = self._take_task_id(state)
            fire_at = now + failed.retry.delay_after(failed.attempt)
            timer = ScheduledTask(
                timer_id,
                TaskKind.RETRY_TIMER,
                fire_at=fire_at,
                retry=failed.retry,
                chain=failed.chain,
                attempt=failed.attempt,
            )
            emitted.append(self._scheduled_record(timer, now, chain=failed.chain))
            result.outbound.append(ScheduleTimer(timer_id, fire_at))
            return
        timer = step.timer
        assert timer.chain is not None
        first = state.scheduled[timer.chain]
        task_id = self._take_task_id(state)
        attempt = state.attempts_in_chain(timer.chain) + 1
        if first.kind is TaskKind.SUB_ORCHESTRATION:
            # Every attempt reuses the first attempt's instance id: the failed child is terminal, so it restarts.
            child = str(first.instance_id)
            task = ScheduledTask(
                task_id,
                TaskKind.SUB_ORCHESTRATION,
                first.name,
                first.input,
                instance_id=child,
                version=first.version,
                retry=first.retry,
                chain=first.task_id,
                attempt=attempt,
            )
            result.outbound.append(StartSubOrchestration(task_id, str(first.name), child, first.input, first.version))
        else:
            task = ScheduledTask(
                task_id,
                TaskKind.ACTIVITY,
                first.name,
                first.input,
                retry=first.retry,
                chain=first.task_id,
                attempt=attempt,
            )
            result.outbound.append(ScheduleActivity(task_id, str(first.name), first.input))
        emitted.append(self._scheduled_record(task, now, chain=first.task_id))

    @staticmethod
    def _scheduled_record(task: ScheduledTask, now: datetime, chain: int | None) -> HistoryRecord:
        meta_task = task.to_meta()
        if chain is not None:
            meta_task["chain"] = chain
        if task.kind in (TaskKind.TIMER, TaskKind.RETRY_TIMER):
            assert task.fire_at is not None
            fields: dict[str, Any] = {"FireAt": format_timestamp(task.fire_at)}
            kind = HistoryEventType.TIMER_CREATED
        elif task.kind is TaskKind.SUB_ORCHESTRATION:
            fields = {"Name": task.name, "InstanceId": task.instance_id, "Input": task.input, "Version": task.version}
            kind = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED
        else:
            fields = {"Name": task.name, "Input": task.input}
            kind = HistoryEventType.TASK_SCHEDULED
        return HistoryRecord(event(kind, now, task.task_id, **fields), {"task": meta_task})
