"""The Durable engine without I/O: episodes run the real SDK replay engine in-process on a small app.

These pin down what the end-to-end tests cannot see directly: task ids handed out exactly as the SDK assigns
them (retries, fan-out), outcomes, and the pure helpers of the HTTP API and history.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devstack.funchost.durable import create_extension
from devstack.funchost.durable.actions import RetryPolicy
from devstack.funchost.durable.api import value_text
from devstack.funchost.durable.engine import (
    Completed,
    ContinuedAsNew,
    EpisodeRunner,
    Failed,
    Inbound,
    RunResult,
    ScheduleActivity,
    ScheduleTimer,
    StartSubOrchestration,
)
from devstack.funchost.durable.functions import FunctionCatalog, run_orchestrator
from devstack.funchost.durable.history import HistoryEventType, HistoryRecord, event, friendly_history
from devstack.funchost.durable.state import ExecutionState
from devstack.funchost.durable.taskhub import TaskHubConfigError

pytestmark = pytest.mark.anyio

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def retry_then_fan_out(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=3)
    first = yield context.call_activity_with_retry("work", options, "first")
    rest = yield context.task_all([context.call_activity("work", n) for n in range(3)])
    return [first, rest]


@app.orchestration_trigger(context_name="context")
def waits(context: df.DurableOrchestrationContext) -> Any:
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
    return (yield context.wait_for_external_event("go"))


@app.orchestration_trigger(context_name="context")
def loops(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input()
    if count < 2:
        context.continue_as_new(count + 1)
        return None
    return count
    yield  # a generator, as orchestrators are


@app.orchestration_trigger(context_name="context")
def calls_child(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    return (yield context.call_sub_orchestrator_with_retry("loops", options, 0))


@app.orchestration_trigger(context_name="context")
def uses_entity(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_entity(df.EntityId("counter", "one"), "add", 1))


@app.activity_trigger(input_name="value")
def work(value: Any) -> Any:
    return value


@dataclass
class IndexedForTest:
    name: str
    trigger_type: str
    trigger: Mapping[str, Any]
    bindings: list[Mapping[str, Any]] = field(default_factory=list)


class InProcessApp:
    """Runs a DFApp's functions in-process the way HostServices.invoke does (trigger value in, result out)."""

    def __init__(self, application: df.DFApp) -> None:
        self.handlers: dict[str, Any] = {}
        self.functions: dict[str, IndexedForTest] = {}
        for function in application.get_functions():
            name = function.get_function_name()
            trigger = json.loads(function.get_function_json())["bindings"]
            trigger_binding = next(b for b in trigger if b["type"].endswith("Trigger"))
            self.functions[name] = IndexedForTest(name, trigger_binding["type"], trigger_binding, trigger)
            self.handlers[name] = function.get_user_function()
        self.catalog = FunctionCatalog.index(self.functions)

    async def invoke(self, function_name: str, trigger_value: Any) -> Any:
        result = self.handlers[function_name](trigger_value)
        return await result if inspect.isawaitable(result) else result

    async def orchestrator(self, name: str, context: Mapping[str, Any]) -> Any:
        return await run_orchestrator(self.invoke, self.catalog, name, context)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def in_process() -> InProcessApp:
    return InProcessApp(app)


def _runner(in_process: InProcessApp) -> EpisodeRunner:
    return EpisodeRunner(in_process.orchestrator)


def _start(name: str, value: Any = None) -> Inbound:
    return Inbound("start", {"EventType": 0, "Name": name, "Version": "", "Input": json.dumps(value)})


def _completed(task_id: int, value: Any, message: str) -> Inbound:
    return Inbound(message, {"EventType": 5, "TaskScheduledId": task_id, "Result": json.dumps(value)})


def _failed(task_id: int, message: str) -> Inbound:
    return Inbound(message, {"EventType": 6, "TaskScheduledId": task_id, "Reason": "boom", "Details": "trace"})


def _fired(timer_id: int, message: str) -> Inbound:
    return Inbound(message, {"EventType": 11, "TimerId": timer_id, "FireAt": "2000-01-01T00:00:00Z"})


async def _run(runner: EpisodeRunner, state: ExecutionState, *inbound: Inbound) -> RunResult:
    return await runner.run(state, list(inbound))


def _scheduled_ids(records: Sequence[HistoryRecord]) -> list[tuple[str, int]]:
    kinds = {HistoryEventType.TASK_SCHEDULED, HistoryEventType.TIMER_CREATED}
    return [(r.event_type.name, int(r.event["EventId"])) for r in records if r.event_type in kinds]


async def test_retry_timers_and_attempts_take_the_task_ids_the_sdk_expects(in_process: InProcessApp) -> None:
    runner, state = _runner(in_process), ExecutionState("i", "e")

    first = await _run(runner, state, _start("retry_then_fan_out"))
    assert first.outbound == [ScheduleActivity(0, "work", '"first"')]
    after_failure = await _run(runner, state, _failed(0, "f1"))
    assert [type(o) for o in after_failure.outbound] == [ScheduleTimer]
    retried = await _run(runner, state, _fired(1, "t1"))
    assert retried.outbound == [ScheduleActivity(2, "work", '"first"')]
    fanned = await _run(runner, state, _completed(2, "ok", "c2"))
    assert fanned.outbound == [ScheduleActivity(n + 3, "work", str(n)) for n in range(3)]
    # Completions of a fan-out in any order, all in one episode.
    done = await _run(runner, state, _completed(5, 2, "c5"), _completed(3, 0, "c3"), _completed(4, 1, "c4"))

    assert done.outcome == Completed(json.dumps(["ok", [0, 1, 2]]))
    assert _scheduled_ids(state.records) == [
        ("TASK_SCHEDULED", 0),
        ("TIMER_CREATED", 1),
        ("TASK_SCHEDULED", 2),
        ("TASK_SCHEDULED", 3),
        ("TASK_SCHEDULED", 4),
        ("TASK_SCHEDULED", 5),
    ]


async def test_a_retry_timer_in_the_same_batch_as_other_events_ends_its_episode(in_process: InProcessApp) -> None:
    runner, state = _runner(in_process), ExecutionState("i", "e")
    await _run(runner, state, _start("retry_then_fan_out"))

    # The failure and the timer's firing arrive together: two episodes, the retry id after the timer's.
    result = await _run(runner, state, _failed(0, "f1"), _fired(1, "t1"))

    assert [o.task_id for o in result.outbound if isinstance(o, ScheduleActivity)] == [2]
    episodes = [r for r in result.new_records if r.event_type == HistoryEventType.ORCHESTRATOR_STARTED]
    assert len(episodes) == 2


async def test_after_the_last_attempt_fails_the_retry_timer_fires_and_the_orchestration_fails(
    in_process: InProcessApp,
) -> None:
    runner, state = _runner(in_process), ExecutionState("i", "e")
    await _run(runner, state, _start("retry_then_fan_out"))
    for attempt, (task_id, timer_id) in enumerate([(0, 1), (2, 3), (4, 5)]):
        await _run(runner, state, _failed(task_id, f"f{attempt}"))
        result = await _run(runner, state, _fired(timer_id, f"t{attempt}"))

    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "Orchestrator function 'retry_then_fan_out' failed: boom \n trace"
    assert result.outbound == []


async def test_an_event_raised_before_the_wait_is_kept_in_history_for_the_sdk(in_process: InProcessApp) -> None:
    runner, state = _runner(in_process), ExecutionState("i", "e")
    event_raised = Inbound("ev", {"EventType": 15, "Name": "go", "Input": json.dumps({"n": 1})})

    started = await _run(runner, state, _start("waits"), event_raised)
    assert [type(o) for o in started.outbound] == [ScheduleTimer]
    assert started.outcome is None

    done = await _run(runner, state, _fired(0, "t0"))
    assert done.outcome == Completed(json.dumps({"n": 1}))


async def test_continue_as_new_ends_the_execution_with_the_new_input(in_process: InProcessApp) -> None:
    result = await _run(_runner(in_process), ExecutionState("i", "e"), _start("loops", 0))

    assert result.outcome == ContinuedAsNew("1")
    assert result.new_records[-2].event_type == HistoryEventType.CONTINUE_AS_NEW


async def test_a_retried_sub_orchestration_restarts_the_same_child_instance(in_process: InProcessApp) -> None:
    runner, state = _runner(in_process), ExecutionState("parent", "e")
    first = await _run(runner, state, _start("calls_child"))
    assert first.outbound == [StartSubOrchestration(0, "loops", "parent:0", "0", None)]

    failed = Inbound("sf", {"EventType": 9, "TaskScheduledId": 0, "Reason": "child failed", "Details": "x"})
    await _run(runner, state, failed)
    again = await _run(runner, state, _fired(1, "t1"))

    assert again.outbound == [StartSubOrchestration(2, "loops", "parent:0", "0", None)]


async def test_entity_calls_fail_the_orchestration_with_a_clear_message(in_process: InProcessApp) -> None:
    result = await _run(_runner(in_process), ExecutionState("i", "e"), _start("uses_entity"))

    assert isinstance(result.outcome, Failed)
    assert "durable entities (call_entity) are not supported by the local Functions host" in result.outcome.reason


async def test_an_unknown_orchestrator_fails_the_instance(in_process: InProcessApp) -> None:
    result = await _run(_runner(in_process), ExecutionState("i", "e"), _start("nope"))

    assert isinstance(result.outcome, Failed)
    assert "The function 'nope' doesn't exist" in result.outcome.reason


def test_friendly_history_merges_scheduling_into_completion_and_hides_outputs_unless_asked() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    records = [
        HistoryRecord(event(HistoryEventType.ORCHESTRATOR_STARTED, at)),
        HistoryRecord(event(HistoryEventType.EXECUTION_STARTED, at, Name="orch", Input='"in"')),
        HistoryRecord(event(HistoryEventType.TASK_SCHEDULED, at, 0, Name="work", Input='"x"')),
        HistoryRecord(event(HistoryEventType.ORCHESTRATOR_COMPLETED, at)),
        HistoryRecord(event(HistoryEventType.TASK_COMPLETED, at + timedelta(seconds=1), TaskScheduledId=0, Result="1")),
    ]

    shown = friendly_history(records, show_output=False)
    assert [e["EventType"] for e in shown] == ["ExecutionStarted", "TaskCompleted"]
    assert shown[1]["FunctionName"] == "work"
    assert shown[1]["ScheduledTime"] == "2030-01-01T00:00:00.000000Z"
    assert "Result" not in shown[1]
    assert friendly_history(records, show_output=True)[1]["Result"] == "1"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", None),
        (json.dumps(json.dumps({"a": 1})).encode(), '{"a": 1}'),  # what the Python SDK client sends
        (b'{"a": 1}', '{"a": 1}'),  # what curl sends
        (b'"plain words"', '"plain words"'),
        (b"42", "42"),
    ],
)
def test_request_bodies_become_the_json_text_of_the_value(body: bytes, text: str | None) -> None:
    assert value_text(body) == text


def test_retry_delays_grow_with_the_backoff_coefficient_up_to_the_maximum() -> None:
    policy = RetryPolicy.from_json(
        {
            "firstRetryIntervalInMilliseconds": 100,
            "maxNumberOfAttempts": 5,
            "backoffCoefficient": 2,
            "maxRetryIntervalInMilliseconds": 300,
        }
    )
    assert [policy.delay_after(n) / timedelta(milliseconds=1) for n in (1, 2, 3, 4)] == [100, 200, 300, 300]


def test_the_task_hub_is_named_from_the_app_setting_host_json_refers_to() -> None:
    host_json = {"extensions": {"durableTask": {"hubName": "%HUB%"}}}

    extension = create_extension(host_json, {"HUB": "verbatimlocal"})

    assert extension.options.hub_name == "verbatimlocal"
    assert extension.options.control_queue == "verbatimlocal-control-00"
    assert create_extension({}, {}).options.hub_name == "TestHubName"


async def test_an_unusable_hub_name_is_reported_when_the_extension_starts_not_when_the_host_creates_it() -> None:
    unset = create_extension({"extensions": {"durableTask": {"hubName": "%HUB%"}}}, {})
    invalid = create_extension({"extensions": {"durableTask": {"hubName": "my-hub"}}}, {})

    with pytest.raises(TaskHubConfigError, match="app setting 'HUB'"):
        await unset.start(None)  # type: ignore[arg-type]  # fails before it touches the host
    with pytest.raises(TaskHubConfigError, match="not valid"):
        await invalid.start(None)  # type: ignore[arg-type]
