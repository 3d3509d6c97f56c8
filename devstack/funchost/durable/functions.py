"""The app's orchestrator and activity functions, and how the host runs them the way the Python worker does.

An orchestrator gets an `OrchestrationContext` whose body is the JSON context (history, instance id, input,
schema version) and returns the SDK's orchestrator state. An activity gets its input decoded by the
worker's own activity-trigger converter (`df_loads`, falling back to the raw string) and its return value
is encoded by the same converter (`df_dumps`).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.functions import meta
from azure.functions._durable_functions import OrchestrationContext
from azure.functions.durable_functions import ActivityTriggerConverter

from devstack.funchost.durable.actions import OrchestratorResult
from devstack.funchost.extension import IndexedFunction

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"

Invoke = Callable[[str, Any], Awaitable[Any]]


class ActivityFailure(Exception):
    """An activity raised (or does not exist); `reason` and `details` go into the TaskFailed event."""

    def __init__(self, reason: str, details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class FunctionCatalog:
    """Durable function names (as orchestrators call them) mapped to the app's function names."""

    orchestrators: Mapping[str, str] = field(default_factory=dict)
    activities: Mapping[str, str] = field(default_factory=dict)
    entities: frozenset[str] = frozenset()

    @classmethod
    def index(cls, functions: Mapping[str, IndexedFunction]) -> FunctionCatalog:
        orchestrators: dict[str, str] = {}
        activities: dict[str, str] = {}
        entities: set[str] = set()
        for name, function in functions.items():
            aliases = {name, function.name}
            if function.trigger_type == ORCHESTRATION_TRIGGER:
                aliases.add(str(function.trigger.get("orchestration") or name))
                orchestrators.update(dict.fromkeys(aliases, name))
            elif function.trigger_type == ACTIVITY_TRIGGER:
                aliases.add(str(function.trigger.get("activity") or name))
                activities.update(dict.fromkeys(aliases, name))
            elif function.trigger_type == ENTITY_TRIGGER:
                entities.add(name)
        return cls(orchestrators, activities, frozenset(entities))


def not_found_message(name: str, kind: str) -> str:
    return f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function."


async def run_orchestrator(
    invoke: Invoke, catalog: FunctionCatalog, name: str, context: Mapping[str, Any]
) -> OrchestratorResult:
    """One episode: the registered orchestrator (the SDK's handle) replays `context` and returns its state."""
    function = catalog.orchestrators.get(name)
    if function is None:
        return OrchestratorResult(is_done=False, error=not_found_message(name, "orchestrator"))
    try:
        value = await invoke(function, OrchestrationContext(json.dumps(context)))
    except Exception as error:  # the SDK raises with its state appended; anything else fails the episode too
        return OrchestratorResult.from_exception(error)
    return OrchestratorResult.from_return_value(value)


async def run_activity(invoke: Invoke, catalog: FunctionCatalog, name: str, input_text: str | None) -> str:
    """Run an activity; returns its result as JSON text, raises ActivityFailure if it failed."""
    function = catalog.activities.get(name)
    if function is None:
        message = not_found_message(name, "activity")
        raise ActivityFailure(message, message)
    value = ActivityTriggerConverter.decode(meta.Datum(input_text or "null", "json"), trigger_metadata=None)
    try:
        result = await invoke(function, value)
    except Exception as error:
        reason = f"Activity function '{name}' failed: {type(error).__name__}: {error}"
        raise ActivityFailure(reason, "".join(traceback.format_exception(error)).strip()) from error
    try:
        return str(ActivityTriggerConverter.encode(result, expected_type=None).value)
    except ValueError as error:
        raise ActivityFailure(f"Activity function '{name}' failed: {error}", str(error)) from error
