"""What an orchestrator episode asks for: the SDK's orchestrator state, parsed.

The SDK returns, after every episode, the *cumulative* list of actions the orchestrator has ever scheduled in
this execution (schema v2+: one list, fan-out/fan-in as compound WhenAll/WhenAny actions). The engine
flattens it depth-first — the order in which the SDK hands out task ids — and acts on the new tail only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions import ActionType

from devstack.funchost.durable.history import parse_timestamp

# Actions that take a task id from the SDK's sequence counter (the wait for an external event does not: it is
# keyed by its name; continue_as_new and signal_entity take one as fire-and-forget actions).
_CONSUMES_ID = frozenset(
    {
        ActionType.CALL_ACTIVITY,
        ActionType.CALL_ACTIVITY_WITH_RETRY,
        ActionType.CALL_SUB_ORCHESTRATOR,
        ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
        ActionType.CONTINUE_AS_NEW,
        ActionType.CREATE_TIMER,
        ActionType.CALL_ENTITY,
        ActionType.CALL_HTTP,
        ActionType.SIGNAL_ENTITY,
    }
)
_COMPOUND = frozenset({ActionType.WHEN_ALL, ActionType.WHEN_ANY})
UNSUPPORTED = {
    ActionType.CALL_ENTITY: "durable entities (call_entity) are not supported by the local Functions host",
    ActionType.SIGNAL_ENTITY: "durable entities (signal_entity) are not supported by the local Functions host",
    ActionType.CALL_HTTP: "durable HTTP (call_http) is not supported by the local Functions host",
}

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


@dataclass(frozen=True)
class RetryPolicy:
    """Retry options of a -WithRetry call (the Python SDK sends the first two; other SDKs may send more)."""

    first_interval: timedelta
    max_attempts: int
    backoff_coefficient: float = 1.0
    max_interval: timedelta | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetryPolicy:
        max_interval = data.get("maxRetryIntervalInMilliseconds")
        return cls(
            first_interval=timedelta(milliseconds=float(data["firstRetryIntervalInMilliseconds"])),
            max_attempts=int(data["maxNumberOfAttempts"]),
            backoff_coefficient=float(data.get("backoffCoefficient") or 1.0),
            max_interval=timedelta(milliseconds=float(max_interval)) if max_interval else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "firstRetryIntervalInMilliseconds": self.first_interval / timedelta(milliseconds=1),
            "maxNumberOfAttempts": self.max_attempts,
            "backoffCoefficient": self.backoff_coefficient,
        }
        if self.max_interval is not None:
            data["maxRetryIntervalInMilliseconds"] = self.max_interval / timedelta(milliseconds=1)
        return data

    def delay_after(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        delay = self.first_interval * (self.backoff_coefficient ** (attempt - 1))
        return min(delay, self.max_interval) if self.max_interval is not None else delay


@dataclass(frozen=True)
class Action:
    """One atomic action of the orchestrator, as the SDK serialised it."""

    type: ActionType
    data: Mapping[str, Any]

    @property
    def consumes_task_id(self) -> bool:
        return self.type in _CONSUMES_ID

    @property
    def function_name(self) -> str:
        return str(self.data["functionName"])

    @property
    def input(self) -> str | None:
        """The input as JSON text (the SDK already serialised it)."""
        value = self.data.get("input")
        return None if value is None else str(value)

    @property
    def instance_id(self) -> str | None:
        value = self.data.get("instanceId")
        return str(value) if value else None

    @property
    def version(self) -> str | None:
        value = self.data.get("version")
        return str(value) if value else None

    @property
    def retry(self) -> RetryPolicy | None:
        options = self.data.get("retryOptions")
        return RetryPolicy.from_json(options) if options else None

    @property
    def fire_at(self) -> datetime:
        return parse_timestamp(str(self.data["fireAt"]))


def flatten(actions: Iterable[Any]) -> list[Action]:
    """Atomic actions depth-first, in the order the SDK assigned their task ids (v1 lists of lists, too)."""
    flat: list[Action] = []
    for item in actions:
        if isinstance(item, list):
            flat.extend(flatten(item))
            continue
        kind = ActionType(int(item["actionType"]))
        if kind in _COMPOUND:
            flat.extend(flatten(item.get("compoundActions") or []))
        else:
            flat.append(Action(kind, item))
    return flat


@dataclass(frozen=True)
class OrchestratorResult:
    """The outcome of one episode: done or not, the flattened actions, output, error, custom status."""

    is_done: bool
    actions: Sequence[Action] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    custom_status: Any = None

    @classmethod
    def from_state(cls, state: Mapping[str, Any], error: str | None = None) -> OrchestratorResult:
        return cls(
            is_done=bool(state.get("isDone")),
            actions=flatten(state.get("actions") or []),
            output=state.get("output"),
            error=error if error is not None else state.get("error"),
            custom_status=state.get("customStatus"),
        )

    @classmethod
    def from_return_value(cls, value: Any) -> OrchestratorResult:
        """What the orchestrator handle returned: the state as a JSON string (or already a dict)."""
        state = json.loads(value) if isinstance(value, str | bytes) else value
        if not isinstance(state, Mapping):
            raise TypeError(f"orchestrator returned {type(value).__name__}, not the SDK's orchestrator state")
        return cls.from_state(state)

    @classmethod
    def from_exception(cls, error: BaseException) -> OrchestratorResult:
        """An orchestrator that raised: the SDK appends its state after a marker; keep the message before it."""
        text = str(error)
        message, marker, state_text = text.partition(OUT_OF_PROC_MARKER)
        if marker:
            try:
                state = json.loads(state_text)
            except json.JSONDecodeError:
                state = {}
            return cls.from_state({**state, "isDone": False}, error=message or str(state.get("error") or text))
        return cls(is_done=False, error=text or type(error).__name__)

    @property
    def continue_as_new(self) -> Action | None:
        for action in self.actions:
            if action.type == ActionType.CONTINUE_AS_NEW:
                return action
        return None
