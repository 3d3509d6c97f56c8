"""The export orchestration's wait for access copies still being made (sealed after the evidence): it waits with
a durable timer and `continue_as_new` while any is pending, goes on to attest once none is, and gives up after its
bound with a failure that names the recordings, instead of failing on the attest's retries (~25 s) as before.

`export_package` itself (functions/exports.py) is driven here by a stand-in for the Durable context, the activity
results given; the wait's activity is tested against the export service in tests/exports/test_export_host.py."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions import exports as export_functions
from verbatim.contracts.exports import AccessCopyWait, ExportJob


@dataclass
class Scheduled:
    name: str
    payload: Any


@dataclass
class Timer:
    fire_at: datetime


@dataclass
class StandInContext:
    job: ExportJob
    results: dict[str, Any]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    scheduled: list[Scheduled] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    continued: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)

    @property
    def current_utc_datetime(self) -> datetime:
        return self.now

    def get_input(self) -> dict[str, Any]:
        return self.job.model_dump(mode="json", by_alias=True)

    def set_custom_status(self, status: dict[str, Any]) -> None:
        self.statuses.append(status["stage"])

    def call_activity_with_retry(self, name: str, _retry: object, payload: Any) -> Scheduled:
        task = Scheduled(name, payload)
        self.scheduled.append(task)
        return task

    def create_timer(self, fire_at: datetime) -> Timer:
        timer = Timer(fire_at)
        self.timers.append(timer)
        return timer

    def continue_as_new(self, payload: dict[str, Any]) -> None:
        self.continued = payload


def _orchestrator() -> Callable[[Any], Generator[Any, Any, Any]]:
    handle = export_functions.export_package._function._func
    for cell in handle.__closure__ or ():
        if callable(cell.cell_contents) and getattr(cell.cell_contents, "__name__", "") == "export_package":
            return cell.cell_contents  # type: ignore[no-any-return]
    raise AssertionError("the orchestrator function is not where the SDK keeps it")


def run(context: StandInContext) -> Any:
    generator = _orchestrator()(context)
    value: Any = None
    while True:
        try:
            step = generator.send(value)
        except StopIteration as stop:
            return stop.value
        value = context.results.get(step.name) if isinstance(step, Scheduled) else None


def wait(pending: list[str], max_waits: int = 60) -> dict[str, Any]:
    return AccessCopyWait(
        export_id="exp-1", pending=len(pending), recording_ids=pending, poll_seconds=30, max_waits=max_waits
    ).model_dump(mode="json", by_alias=True)


def test_the_plan_is_followed_by_the_wait_for_access_copies() -> None:
    context = StandInContext(ExportJob(export_id="exp-1"), {export_functions.PLAN: {"exportId": "exp-1", "total": 3}})

    run(context)

    assert context.continued is not None
    assert ExportJob.model_validate(context.continued).phase == "access"


def test_an_export_waits_with_a_durable_timer_while_an_access_copy_is_being_made() -> None:
    job = ExportJob(export_id="exp-1", phase="access", total=2, waits=3)
    context = StandInContext(job, {export_functions.AWAIT_ACCESS_COPIES: wait(["rec-a"])})

    run(context)

    assert [t.name for t in context.scheduled] == [export_functions.AWAIT_ACCESS_COPIES]
    assert [t.fire_at for t in context.timers] == [context.now + timedelta(seconds=30)]
    assert context.statuses == ["waiting_for_access_copies"]
    assert context.continued is not None
    following = ExportJob.model_validate(context.continued)
    assert (following.phase, following.waits) == ("access", 4)


def test_an_export_goes_on_to_attest_once_no_access_copy_is_pending() -> None:
    job = ExportJob(export_id="exp-1", phase="access", total=2, waits=5)
    context = StandInContext(job, {export_functions.AWAIT_ACCESS_COPIES: wait([])})

    run(context)

    assert context.timers == []
    assert context.continued is not None
    following = ExportJob.model_validate(context.continued)
    assert (following.phase, following.waits, following.total) == ("attest", 0, 2)


def test_an_export_fails_naming_the_copies_not_made_when_its_wait_runs_out() -> None:
    job = ExportJob(export_id="exp-1", phase="access", total=2, waits=60)
    context = StandInContext(job, {export_functions.AWAIT_ACCESS_COPIES: wait(["rec-a", "rec-b"], max_waits=60)})

    output = run(context)

    assert context.timers == [] and context.continued is None
    failed = [t for t in context.scheduled if t.name == export_functions.FAIL]
    assert len(failed) == 1
    error = failed[0].payload["error"]
    assert "2 recording(s)" in error and "rec-a, rec-b" in error and "30 minute(s)" in error
    assert "evidence is sealed" in error and output["error"] == error
    assert context.statuses[-1] == "failed"
