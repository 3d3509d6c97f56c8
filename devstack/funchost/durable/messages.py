"""The two kinds of queue message of a task hub, and the deterministic ids that make redelivery harmless.

A control message carries one history event for one instance (optionally pinned to one execution); a work
item asks for one activity run. Ids are derived from what the message is about (instance, execution, task id),
so a message sent twice — by a retried episode or a re-run activity — is recognised and applied once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.funchost.durable.history import HistoryEventType


@dataclass(frozen=True)
class ControlMessage:
    id: str
    instance_id: str
    execution_id: str | None
    event: Mapping[str, Any]  # EventType plus the event's fields

    @property
    def event_type(self) -> HistoryEventType:
        return HistoryEventType(int(self.event["EventType"]))

    def to_body(self) -> dict[str, Any]:
        return {"id": self.id, "instance": self.instance_id, "execution": self.execution_id, "event": dict(self.event)}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ControlMessage:
        return cls(str(body["id"]), str(body["instance"]), body.get("execution"), dict(body["event"]))


@dataclass(frozen=True)
class WorkItem:
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None

    @property
    def id(self) -> str:
        return f"{self.instance_id}|{self.execution_id}|{self.task_id}"

    def to_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self.instance_id,
            "execution": self.execution_id,
            "taskId": self.task_id,
            "name": self.name,
            "input": self.input,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkItem:
        return cls(str(body["instance"]), str(body["execution"]), int(body["taskId"]), str(body["name"]), body["input"])


def started_id(instance_id: str, execution_id: str) -> str:
    return f"{instance_id}|{execution_id}|start"


def timer_id(instance_id: str, execution_id: str, timer: int) -> str:
    return f"{instance_id}|{execution_id}|timer|{timer}"


def result_id(work_item: WorkItem) -> str:
    return f"{work_item.id}|result"


def sub_orchestration_result_id(child_instance_id: str, child_execution_id: str) -> str:
    return f"{child_instance_id}|{child_execution_id}|done"
