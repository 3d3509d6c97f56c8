"""The engine's view of one execution of an orchestration, rebuilt from its persisted history.

Besides the events themselves it knows which task ids are scheduled (and what they are: activity, timer,
sub-orchestration, retry timer), which are already resolved, the next task id, how many of the SDK's
actions have been acted on, and which inbound messages were already applied (for idempotency).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from devstack.funchost.durable.actions import RetryPolicy
from devstack.funchost.durable.history import HistoryEventType, HistoryRecord, parse_timestamp


class TaskKind(StrEnum):
    ACTIVITY = "activity"
    SUB_ORCHESTRATION = "subOrchestration"
    TIMER = "timer"
    RETRY_TIMER = "retryTimer"


@dataclass(frozen=True)
class ScheduledTask:
    """A task id the orchestrator is (or was) waiting on.

    For -WithRetry calls, every attempt and every retry timer gets its own task id (as in DTFx); `chain` is
    the id of the first attempt and `attempt` the 1-based attempt number the task belongs to.
    """

    task_id: int
    kind: TaskKind
    name: str | None = None
    input: str | None = None
    instance_id: str | None = None
    version: str | None = None
    fire_at: datetime | None = None
    retry: RetryPolicy | None = None
    chain: int | None = None
    attempt: int = 1

    def to_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"kind": self.kind.value, "attempt": self.attempt}
        if self.retry is not None:
            meta["retry"] = self.retry.to_json()
        if self.chain is not None:
            meta["chain"] = self.chain
        return meta

    @classmethod
    def from_record(cls, record: HistoryRecord) -> ScheduledTask:
        task = record.meta["task"]
        data = record.event
        fire_at = data.get("FireAt")
        return cls(
            task_id=int(data["EventId"]),
            kind=TaskKind(task["kind"]),
            name=data.get("Name"),
            input=data.get("Input"),
            instance_id=data.get("InstanceId"),
            version=data.get("Version") or None,
            fire_at=parse_timestamp(fire_at) if fire_at else None,
            retry=RetryPolicy.from_json(task["retry"]) if task.get("retry") else None,
            chain=task.get("chain"),
            attempt=int(task.get("attempt", 1)),
        )


@dataclass
class ExecutionState:
    """One execution's history and what follows from it."""

    instance_id: str
    execution_id: str
    records: list[HistoryRecord] = field(default_factory=list)
    scheduled: dict[int, ScheduledTask] = field(default_factory=dict)
    resolved: set[int] = field(default_factory=set)
    applied_messages: set[str] = field(default_factory=set)
    next_task_id: int = 0
    action_cursor: int = 0

    @classmethod
    def rebuild(cls, instance_id: str, execution_id: str, records: Iterable[HistoryRecord]) -> ExecutionState:
        state = cls(instance_id, execution_id)
        for record in records:
            state.append(record)
        return state

    @property
    def started(self) -> bool:
        return bool(self.records)

    @property
    def execution_started(self) -> Mapping[str, Any]:
        for record in self.records:
            if record.event_type == HistoryEventType.EXECUTION_STARTED:
                return record.event
        raise LookupError(f"instance {self.instance_id} has no ExecutionStarted event")

    def append(self, record: HistoryRecord) -> None:
        """Add one event and update what follows from it."""
        self.records.append(record)
        message_id = record.meta.get("message")
        if message_id:
            self.applied_messages.add(str(message_id))
        if "task" in record.meta:
            task = ScheduledTask.from_record(record)
            self.scheduled[task.task_id] = task
        completed = record.completed_task_id()
        if completed is not None:
            self.resolved.add(completed)
        if "nextTaskId" in record.meta:
            self.next_task_id = int(record.meta["nextTaskId"])
        if "actionCursor" in record.meta:
            self.action_cursor = int(record.meta["actionCursor"])

    def is_pending(self, task_id: int) -> bool:
        return task_id in self.scheduled and task_id not in self.resolved

    def attempts_in_chain(self, chain: int) -> int:
        """How many attempts of a retried call were scheduled so far."""
        return sum(
            1 for task in self.scheduled.values() if task.chain == chain and task.kind is not TaskKind.RETRY_TIMER
        )
