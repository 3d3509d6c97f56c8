"""The orchestration dispatcher: takes control messages, runs episodes, commits, sends what they produced.

One batch of control messages is processed at a time; within it, each instance's messages are applied
together under one read of its state (episodes of an instance are therefore never concurrent). The commit
order follows the real Azure Storage provider, so a crash at any point loses nothing and duplicates nothing:

1. send the episode's outbound messages (activity work items, timers, sub-orchestration starts, results to
   a parent) — their ids are deterministic, so if the episode runs again they are recognised as duplicates;
2. write the new history rows, then the instance row with an etag check (the commit point);
3. delete the inbound messages (redelivered ones are recognised by their id in the history).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from devstack.funchost.durable import messages
from devstack.funchost.durable.engine import (
    Completed,
    ContinuedAsNew,
    EpisodeRunner,
    Failed,
    Inbound,
    Outcome,
    RunResult,
    ScheduleActivity,
    ScheduleTimer,
    StartSubOrchestration,
    Terminated,
)
from devstack.funchost.durable.history import HistoryEventType, parse_timestamp, utc_now
from devstack.funchost.durable.messages import ControlMessage, WorkItem
from devstack.funchost.durable.queues import Received
from devstack.funchost.durable.state import ExecutionState
from devstack.funchost.durable.store import ConcurrencyError, InstanceRow
from devstack.funchost.durable.taskhub import TaskHub
from devstack.funchost.durable.versions import matches

log = logging.getLogger("devstack.funchost.durable")

CONTROL_LEASE = timedelta(seconds=30)
# An instance this worker may not run (`versionFailureStrategy: Reject`) is handed back for a worker that can.
VERSION_REJECT_DELAY = timedelta(seconds=5)
# A completion for a task the history does not know yet (possible only after a crash between sending an
# activity and committing its scheduling), or an event for an instance that never started, is retried this
# often (every half second) before it is dropped.
_MAX_DEFERRALS = 60
_COMPLETION_EVENTS = frozenset(
    {
        HistoryEventType.TASK_COMPLETED,
        HistoryEventType.TASK_FAILED,
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
        HistoryEventType.TIMER_FIRED,
    }
)

Verdict = Literal["apply", "discard", "defer", "timer-not-due"]

_EXECUTION_NAMESPACE = uuid.UUID("6c1f4c8e-4a51-4d59-9f7e-2f8c3f3f7c11")


def derived_execution_id(*parts: object) -> str:
    """A deterministic execution id (a re-run episode creates the same child or next execution)."""
    return uuid.uuid5(_EXECUTION_NAMESPACE, "|".join(map(str, parts))).hex


class OrchestrationDispatcher:
    """Processes the control queue of one task hub."""

    def __init__(
        self,
        hub: TaskHub,
        runner: EpisodeRunner,
        wake_up: Callable[[timedelta], None],
        wake_activities: Callable[[], None],
    ) -> None:
        self._hub = hub
        self._runner = runner
        self._wake_up = wake_up
        self._wake_activities = wake_activities
        self._in_flight: list[Received] = []

    async def process_batch(self, batch: Sequence[Received]) -> None:
        by_instance: dict[str, list[Received]] = defaultdict(list)
        for received in batch:
            by_instance[str(received.body.get("instance"))].append(received)
        # Kept if the batch is cancelled (host shutdown), so `release_in_flight` can hand it back.
        self._in_flight = list(batch)
        await asyncio.gather(*(self._process_instance(i, items) for i, items in by_instance.items()))
        self._in_flight = []

    async def release_in_flight(self) -> None:
        """On shutdown: hand the messages being processed back to the queue at once."""
        in_flight, self._in_flight = self._in_flight, []
        for received in in_flight:
            with contextlib.suppress(Exception):
                await self._hub.control.release(received)

    async def _process_instance(self, instance_id: str, batch: list[Received]) -> None:
        try:
            await self._apply(instance_id, batch)
        except ConcurrencyError:
            log.info("instance %s changed while its messages were processed; they will be redelivered", instance_id)
            for received in batch:
                await self._hub.control.release(received, timedelta(milliseconds=200))
        except Exception:
            log.exception("processing control messages of instance %s failed; they will be redelivered", instance_id)
            for received in batch:
                await self._hub.control.release(received, timedelta(seconds=1))

    async def _apply(self, instance_id: str, batch: list[Received]) -> None:
        hub = self._hub
        row = await hub.store.get_instance(instance_id) or await self._row_from_start(instance_id, batch)
        if row is None:
            log.warning("dropping %d message(s) for unknown instance %s", len(batch), instance_id)
            await asyncio.gather(*(hub.control.delete(received) for received in batch))
            return
        state = ExecutionState.rebuild(instance_id, row.execution_id, await hub.store.load_history(row))
        if not row.is_terminal and not matches(row.version, hub.options.default_version, hub.options.version_match):
            await self._version_mismatch(row, state, batch)
            return
        apply, discard, defer = await self._classify(row, state, batch)

        result: RunResult | None = None
        terminate = next((item for item in apply if item[1].event_type == HistoryEventType.EXECUTION_TERMINATED), None)
        if terminate is not None:
            result = self._runner.terminate(state, Inbound(terminate[1].id, terminate[1].event))
        elif apply:
            result = await self._runner.run(state, [Inbound(message.id, message.event) for _, message in apply])

        if result is not None:
            await self._send_and_commit(row, state, result)
        await asyncio.gather(*(hub.control.delete(received) for received, _ in apply + discard))
        for received, _ in defer:
            await hub.control.release(received, timedelta(milliseconds=500))

    async def _version_mismatch(self, row: InstanceRow, state: ExecutionState, batch: list[Received]) -> None:
        """`versionFailureStrategy`: `Reject` leaves the instance untouched and hands its messages back (a worker
        with a newer `defaultVersion` runs them); `Fail` fails the instance, as the extension does."""
        options = self._hub.options
        found = f"version {row.version or '(none)'}"
        wanted = f"{options.version_match} of this worker's {options.default_version or '(none)'}"
        if options.version_failure == "Reject":
            log.warning("instance %s is at %s, not %s: left for another worker", row.instance_id, found, wanted)
            for received in batch:
                await self._hub.control.release(received, VERSION_REJECT_DELAY)
            return
        reason = f"The orchestration's {found} does not match {wanted} (versionFailureStrategy Fail)."
        log.warning("instance %s: %s", row.instance_id, reason)
        result = self._runner.fail(state, reason)
        await self._send_and_commit(row, state, result)
        await asyncio.gather(*(self._hub.control.delete(received) for received in batch))

    async def _row_from_start(self, instance_id: str, batch: list[Received]) -> InstanceRow | None:
        """The row of an instance whose start message came without one: a client sends the start before it writes
        the row (as DurableTask.AzureStorage does), and that write may fail or not have happened yet. Written
        from the message, as the row the client would have written; None when the batch starts nothing."""
        for received in batch:
            message = ControlMessage.from_body(received.body)
            if message.event_type != HistoryEventType.EXECUTION_STARTED or message.execution_id is None:
                continue
            event = message.event
            now = utc_now()
            row = InstanceRow(
                instance_id=instance_id,
                name=str(event.get("Name") or ""),
                execution_id=message.execution_id,
                runtime_status="Pending",
                created_time=now,
                last_updated_time=now,
                input=event.get("Input"),
                version=str(event.get("Version") or "") or None,
                parent=event.get("ParentInstance"),
            )
            try:
                return await self._hub.store.save_instance(row)
            except ConcurrencyError:  # the client's own write came first
                return await self._hub.store.get_instance(instance_id)
        return None

    async def _classify(
        self, row: InstanceRow, state: ExecutionState, batch: list[Received]
    ) -> tuple[list[tuple[Received, ControlMessage]], ...]:
        apply: list[tuple[Received, ControlMessage]] = []
        discard: list[tuple[Received, ControlMessage]] = []
        defer: list[tuple[Received, ControlMessage]] = []
        seen: set[str] = set()
        # ExecutionStarted first: other events of a brand-new instance may share its batch.
        ordered = sorted(batch, key=lambda r: int(r.body["event"]["EventType"]) != HistoryEventType.EXECUTION_STARTED)
        for received in ordered:
            message = ControlMessage.from_body(received.body)
            verdict = self._verdict(row, state, message, received.dequeue_count, seen)
            if verdict == "timer-not-due":
                await self._resend_early_timer(message)
                verdict = "discard"
            {"apply": apply, "discard": discard, "defer": defer}[verdict].append((received, message))
            if verdict == "apply":
                seen.add(message.id)
        return apply, discard, defer

    def _verdict(
        self, row: InstanceRow, state: ExecutionState, message: ControlMessage, dequeue_count: int, seen: set[str]
    ) -> Verdict:
        kind = message.event_type
        if message.execution_id is not None and message.execution_id != row.execution_id:
            return "discard"  # meant for an earlier (or replaced) execution
        if message.id in seen or message.id in state.applied_messages:
            return "discard"  # redelivered
        if kind == HistoryEventType.EXECUTION_STARTED:
            return "discard" if state.started or row.is_terminal else "apply"
        if row.is_terminal:
            return "discard"
        if kind == HistoryEventType.EXECUTION_TERMINATED:
            return "apply"
        if not state.started:
            # Events that reach a brand-new instance before its start are applied after it in the same batch.
            if messages.started_id(row.instance_id, row.execution_id) in seen:
                return "apply"
            return self._defer_or_give_up(message, dequeue_count)
        if kind == HistoryEventType.TIMER_FIRED:
            fire_at = message.event.get("FireAt")
            if fire_at and parse_timestamp(str(fire_at)) - utc_now() > timedelta(seconds=1):
                return "timer-not-due"
        if kind in _COMPLETION_EVENTS:
            task_id = int(message.event.get("TaskScheduledId", message.event.get("TimerId", -1)))
            if task_id in state.resolved:
                return "discard"
            if task_id not in state.scheduled:
                return self._defer_or_give_up(message, dequeue_count)
        return "apply"

    @staticmethod
    def _defer_or_give_up(message: ControlMessage, dequeue_count: int) -> Verdict:
        if dequeue_count <= _MAX_DEFERRALS:
            return "defer"
        log.warning("dropping %s for %s: it never became applicable", message.event_type.name, message.instance_id)
        return "discard"

    async def _resend_early_timer(self, message: ControlMessage) -> None:
        """A timer longer than a queue message can stay invisible surfaced early: send it on again."""
        fire_at = parse_timestamp(str(message.event["FireAt"]))
        await self._hub.control.send(message.to_body(), fire_at - utc_now())

    # --- commit ---

    async def _send_and_commit(self, row: InstanceRow, state: ExecutionState, result: RunResult) -> InstanceRow:
        hub = self._hub
        now = utc_now()
        parent = row.parent

        for item in result.outbound:
            await self._send_outbound(row, item)

        outcome = result.outcome
        status = "Running"
        output: str | None = row.output
        if isinstance(outcome, Completed):
            status, output = "Completed", outcome.output
        elif isinstance(outcome, Failed):
            status, output = "Failed", json.dumps(outcome.reason)
        elif isinstance(outcome, Terminated):
            status, output = "Terminated", json.dumps(outcome.reason)
        if outcome is not None and not isinstance(outcome, ContinuedAsNew) and parent:
            await self._notify_parent(row, parent, outcome)

        if isinstance(outcome, ContinuedAsNew):
            next_execution = derived_execution_id(row.execution_id, "continue-as-new")
            await hub.control.send(
                ControlMessage(
                    messages.started_id(row.instance_id, next_execution),
                    row.instance_id,
                    next_execution,
                    {
                        "EventType": int(HistoryEventType.EXECUTION_STARTED),
                        "Name": row.name,
                        "Version": row.version or "",
                        "Input": outcome.input,
                        "ParentInstance": parent,
                        "OrchestrationInstance": {"InstanceId": row.instance_id, "ExecutionId": next_execution},
                    },
                ).to_body()
            )
            self._wake_up(timedelta(0))
            committed = replace(
                row,
                execution_id=next_execution,
                runtime_status="ContinuedAsNew",
                input=outcome.input,
                output=None,
                custom_status=_json_or_none(result.custom_status),
                last_updated_time=now,
                history_count=0,
            )
            # The finished execution's history is dropped, as continue-as-new resets the history.
            saved = await hub.store.save_instance(committed)
            with contextlib.suppress(Exception):
                await hub.store.delete_other_executions(row.instance_id, next_execution)
            return saved

        await hub.store.write_history(row.instance_id, row.execution_id, row.history_count, result.new_records)
        committed = replace(
            row,
            runtime_status=status,
            output=output,
            custom_status=_json_or_none(result.custom_status) if result.ran_orchestrator else row.custom_status,
            last_updated_time=now,
            history_count=len(state.records),
        )
        return await hub.store.save_instance(committed)

    async def _send_outbound(
        self, row: InstanceRow, item: ScheduleActivity | ScheduleTimer | StartSubOrchestration
    ) -> None:
        hub = self._hub
        if isinstance(item, ScheduleActivity):
            work = WorkItem(row.instance_id, row.execution_id, item.task_id, item.name, item.input)
            await hub.work_items.send(work.to_body())
            self._wake_activities()
        elif isinstance(item, ScheduleTimer):
            delay = await hub.control.send(
                ControlMessage(
                    messages.timer_id(row.instance_id, row.execution_id, item.timer_id),
                    row.instance_id,
                    row.execution_id,
                    {
                        "EventType": int(HistoryEventType.TIMER_FIRED),
                        "TimerId": item.timer_id,
                        "FireAt": item.fire_at.isoformat(),
                    },
                ).to_body(),
                item.fire_at - utc_now(),
            )
            self._wake_up(delay)
        else:
            await self._start_sub_orchestration(row, item)

    async def _start_sub_orchestration(self, row: InstanceRow, item: StartSubOrchestration) -> None:
        hub = self._hub
        # A sub-orchestration started without a version gets this worker's defaultVersion, as a new instance does.
        item = replace(item, version=item.version or hub.options.default_version)
        child_execution = derived_execution_id(row.execution_id, item.task_id)
        child = await hub.store.get_instance(item.instance_id)
        parent_info = {
            "InstanceId": row.instance_id,
            "ExecutionId": row.execution_id,
            "TaskScheduledId": item.task_id,
            "Name": row.name,
        }
        if child is not None and child.execution_id != child_execution and not child.is_terminal:
            reason = f"An orchestration with instance ID '{item.instance_id}' is already running."
            await hub.control.send(
                ControlMessage(
                    f"{row.instance_id}|{row.execution_id}|{item.task_id}|conflict",
                    row.instance_id,
                    row.execution_id,
                    {
                        "EventType": int(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED),
                        "TaskScheduledId": item.task_id,
                        "Reason": reason,
                        "Details": reason,
                    },
                ).to_body()
            )
            self._wake_up(timedelta(0))
            return
        if child is None or child.execution_id != child_execution:
            now = utc_now()
            fresh = InstanceRow(
                instance_id=item.instance_id,
                name=item.name,
                execution_id=child_execution,
                runtime_status="Pending",
                created_time=now,
                last_updated_time=now,
                input=item.input,
                version=item.version,
                parent=parent_info,
                etag=child.etag if child is not None else None,
            )
            await hub.store.save_instance(fresh)
            if child is not None:
                with contextlib.suppress(Exception):
                    await hub.store.delete_other_executions(item.instance_id, child_execution)
        await hub.control.send(
            ControlMessage(
                messages.started_id(item.instance_id, child_execution),
                item.instance_id,
                child_execution,
                {
                    "EventType": int(HistoryEventType.EXECUTION_STARTED),
                    "Name": item.name,
                    "Version": item.version or "",
                    "Input": item.input,
                    "ParentInstance": parent_info,
                    "OrchestrationInstance": {"InstanceId": item.instance_id, "ExecutionId": child_execution},
                },
            ).to_body()
        )
        self._wake_up(timedelta(0))

    async def _notify_parent(self, row: InstanceRow, parent: Mapping[str, Any], outcome: Outcome) -> None:
        event: dict[str, Any] = {"TaskScheduledId": int(parent["TaskScheduledId"])}
        if isinstance(outcome, Completed):
            event.update(EventType=int(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED), Result=outcome.output)
        elif isinstance(outcome, Failed):
            event.update(
                EventType=int(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED),
                Reason=outcome.reason,
                Details=outcome.details,
            )
        else:
            reason = f"Sub-orchestration '{row.instance_id}' was terminated: {getattr(outcome, 'reason', '')}"
            event.update(
                EventType=int(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED), Reason=reason, Details=reason
            )
        await self._hub.control.send(
            ControlMessage(
                messages.sub_orchestration_result_id(row.instance_id, row.execution_id),
                str(parent["InstanceId"]),
                str(parent["ExecutionId"]),
                event,
            ).to_body()
        )
        self._wake_up(timedelta(0))


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
