"""Orchestration history: DTFx-shaped events as the SDK's replay engine reads them, plus engine bookkeeping.

Every event is a plain dict with the field names the Durable extension sends to out-of-process workers
(`EventType`, `EventId`, `Timestamp`, `TaskScheduledId`, `Result`, ...). `IsPlayed` is added only when the
history is handed to the SDK. What the engine itself needs to remember (message ids, retry chains, how far
into the action list it has read) rides alongside each event as `meta` and is never shown to the SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history import HistoryEventType

__all__ = [
    "HistoryEventType",
    "HistoryRecord",
    "event",
    "for_replay",
    "format_timestamp",
    "friendly_history",
    "parse_timestamp",
    "utc_now",
]

# Events that complete a task the orchestrator is waiting on, and the field naming that task.
COMPLETION_ID_FIELD: Mapping[HistoryEventType, str] = {
    HistoryEventType.TASK_COMPLETED: "TaskScheduledId",
    HistoryEventType.TASK_FAILED: "TaskScheduledId",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED: "TaskScheduledId",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED: "TaskScheduledId",
    HistoryEventType.TIMER_FIRED: "TimerId",
}
FAILURE_EVENTS = frozenset({HistoryEventType.TASK_FAILED, HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED})


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """The timestamp format of the SDK (`DATETIME_STRING_FORMAT`), always in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (with `Z` or an offset, or naive meaning UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event(event_type: HistoryEventType, timestamp: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """One history event in the shape the SDK's `HistoryEvent` is constructed from."""
    return {
        "EventType": int(event_type),
        "EventId": event_id,
        "Timestamp": format_timestamp(timestamp),
        **fields,
    }


@dataclass(frozen=True)
class HistoryRecord:
    """A history event and the engine's bookkeeping about it."""

    event: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> HistoryEventType:
        return HistoryEventType(int(self.event["EventType"]))

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(str(self.event["Timestamp"]))

    def completed_task_id(self) -> int | None:
        """The id of the task this event completes, if it is a completion event."""
        key = COMPLETION_ID_FIELD.get(self.event_type)
        return int(self.event[key]) if key is not None else None


def for_replay(played: Iterable[HistoryRecord], new: Iterable[HistoryRecord]) -> list[dict[str, Any]]:
    """The history list of an orchestration context: earlier episodes played, this episode's events not."""
    return [{**record.event, "IsPlayed": True} for record in played] + [
        {**record.event, "IsPlayed": False} for record in new
    ]


_SCHEDULING_EVENTS = {
    HistoryEventType.TASK_SCHEDULED,
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
    HistoryEventType.TIMER_CREATED,
}
_HIDDEN_EVENTS = {HistoryEventType.ORCHESTRATOR_STARTED, HistoryEventType.ORCHESTRATOR_COMPLETED}
_OUTPUT_FIELDS = ("Input", "Result")


def friendly_history(records: Sequence[HistoryRecord], *, show_output: bool) -> list[dict[str, Any]]:
    """History as the status API shows it (`showHistory=true`).

    Like the real extension: episode markers are dropped, a task's completion is merged with its scheduling
    event (function name and scheduled time), event types are names, and inputs/results only appear with
    `showHistoryOutput=true`.
    """
    scheduled = {int(record.event["EventId"]): record for record in records if record.event_type in _SCHEDULING_EVENTS}
    merged: set[int] = set()
    shown: list[dict[str, Any]] = []
    for record in records:
        kind = record.event_type
        if kind in _HIDDEN_EVENTS:
            continue
        item: dict[str, Any] = {"EventType": kind.name.title().replace("_", ""), "Timestamp": record.event["Timestamp"]}
        for key, value in record.event.items():
            if key in {"EventType", "EventId", "Timestamp", "OrchestrationInstance", "ParentInstance"}:
                continue
            if key in _OUTPUT_FIELDS and not show_output:
                continue
            item[key] = value
        task_id = record.completed_task_id()
        if task_id is not None and task_id in scheduled:
            origin = scheduled[task_id]
            merged.add(task_id)
            item["ScheduledTime"] = origin.event["Timestamp"]
            if "Name" in origin.event:
                item["FunctionName"] = origin.event["Name"]
        if kind == HistoryEventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
        shown.append(item)
    return [
        item
        for item, record in zip(shown, (r for r in records if r.event_type not in _HIDDEN_EVENTS), strict=True)
        if not (record.event_type in _SCHEDULING_EVENTS and int(record.event["EventId"]) in merged)
    ]
