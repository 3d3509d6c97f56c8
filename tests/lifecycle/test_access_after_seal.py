"""Issue 22 (verdict latency): the evidence is sealed and the verdict asked for before the access copy is made.

`recording_lifecycle` itself (the orchestrator function of functions/lifecycle.py) is driven here step by step by
a small stand-in for the Durable context: each activity it schedules runs at once through its real trigger
function over in-memory ports, and a failing activity raises into the orchestrator as Durable Functions does once
its retries are spent. Before the change the access copy was made first and sealed with the evidence, so a
recording whose access copy could not be encoded was never sealed and its verdict never asked for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devstack.testkit.captures import speech, stage_capture
from functions import lifecycle as lifecycle_functions
from tests.ledger.logkit import memory_log
from tests.lifecycle.events import T0, joined, started, stopped
from verbatim.contracts.evidence import AccessCopyManifest, EntryKind, RecordingManifest
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.evidence.seal import recording_subject
from verbatim.evidence.verify import verify_recording
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import FixedRetention
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.blobs import InMemoryBlobStore
from verbatim.platform.queues import InMemoryQueue
from verbatim.reconciliation.service import parse_request


class ActivityFailed(Exception):
    """What Durable Functions raises into the orchestrator when an activity failed on its last attempt."""


@dataclass
class Scheduled:
    name: str
    payload: Any


@dataclass
class AllOf:
    tasks: list[Scheduled]


@dataclass
class StandInContext:
    """The part of DurableOrchestrationContext recording_lifecycle uses once the recorder has stopped."""

    payload: dict[str, Any]
    statuses: list[str] = field(default_factory=list)
    current_utc_datetime: datetime = field(default_factory=lambda: datetime.now(UTC))
    unretried: list[str] = field(default_factory=list)  # activities scheduled without a retry policy

    def get_input(self) -> dict[str, Any]:
        return self.payload

    def set_custom_status(self, status: dict[str, Any]) -> None:
        self.statuses.append(status["stage"])

    def call_activity_with_retry(self, name: str, _retry: object, payload: Any) -> Scheduled:
        return Scheduled(name, payload)

    def call_activity(self, name: str, payload: Any) -> Scheduled:
        self.unretried.append(name)  # one transient failure would fail the orchestration
        return Scheduled(name, payload)

    def task_all(self, tasks: list[Scheduled]) -> AllOf:
        return AllOf(tasks)


def _orchestrator() -> Callable[[Any], Generator[Any, Any, Any]]:
    """The generator function under the SDK's wrapper (`Orchestrator.create` keeps it in its closure)."""
    handle = lifecycle_functions.recording_lifecycle._function._func
    for cell in handle.__closure__ or ():
        if callable(cell.cell_contents) and getattr(cell.cell_contents, "__name__", "") == "recording_lifecycle":
            return cell.cell_contents  # type: ignore[no-any-return]
    raise AssertionError("the orchestrator function is not where the SDK keeps it")


def _activities() -> dict[str, Callable[[Any], Any]]:
    """The blueprint's activity trigger functions by activity name, as the host indexes them."""
    application = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    application.register_functions(lifecycle_functions.bp)
    found: dict[str, Callable[[Any], Any]] = {}
    for function in application.get_functions():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "activityTrigger":
                found[str(binding["activity"])] = function.get_user_function()
    return found


def drive(context: StandInContext, failing: set[str]) -> tuple[Any, list[str], Exception | None]:
    """Run the orchestrator to its end; (output, activities run in order, the failure it ended with)."""
    handlers = _activities()
    ran: list[str] = []

    def run(task: Scheduled) -> Any:
        ran.append(task.name)
        if task.name in failing:
            raise ActivityFailed(f"{task.name} failed on its last attempt")
        return handlers[task.name](task.payload)

    generator = _orchestrator()(context)
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            step = generator.throw(error) if error is not None else generator.send(value)
        except StopIteration as stop:
            return stop.value, ran, None
        except ActivityFailed as failed:
            return None, ran, failed
        error, value = None, None
        try:
            value = [run(task) for task in step.tasks] if isinstance(step, AllOf) else run(step)
        except ActivityFailed as failed:
            error = failed


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[LifecycleDeps]:
    ports = LifecycleDeps(
        recordings=InMemoryBlobStore("recordings"),
        captures=InMemoryBlobStore("captures"),
        scratch=InMemoryBlobStore("lifecycle-scratch"),
        store=InMemoryRecordingStore(),
        ledger=memory_log(),
        retention=FixedRetention("mifid2", 1827),
        worm=InMemoryWorm(),
        reconciliation=InMemoryQueue(),
        chunk_seconds=4,
    )
    monkeypatch.setattr(lifecycle_functions, "_deps", lambda: ports)
    yield ports


def stopped_call(deps: LifecycleDeps, seconds: float = 10.0) -> str:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    staged = stage_capture(deps.staging, recording_id, speech(seconds), started_at=T0)
    for event in (
        started(recording_id),
        joined(recording_id),
        stopped(recording_id, staged.manifest.tracks[0].sha256, seconds),
    ):
        record_event(deps.store, event)
    return recording_id


def announced(deps: LifecycleDeps) -> list[str]:
    assert isinstance(deps.reconciliation, InMemoryQueue)
    requests = [parse_request(body) for body in deps.reconciliation.bodies()]
    return [r.recording_id for r in requests if isinstance(r, RecordingIndexed)]


def kinds(deps: LifecycleDeps, recording_id: str) -> list[str]:
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    return [entry.kind for entry in subject_entries(ledger, recording_subject(recording_id))]


def test_the_evidence_is_sealed_and_the_verdict_asked_for_while_the_access_copy_cannot_be_encoded(
    deps: LifecycleDeps,
) -> None:
    recording_id = stopped_call(deps)
    context = StandInContext({"recording_id": recording_id})

    _, ran, failure = drive(context, failing={lifecycle_functions.ENCODE_ACCESS_CHUNK})

    assert failure is not None  # the orchestration fails at the access copy (Durable would retry it later) ...
    record = deps.store.get(recording_id)
    # ... but the evidence was sealed before it, and reconciliation was asked to decide the verdict from it.
    assert record is not None and record.status == "sealed" and record.seal is not None
    assert kinds(deps, recording_id) == [EntryKind.SEALED]
    assert announced(deps) == [recording_id]
    assert ran.index(lifecycle_functions.INDEX) < ran.index(lifecycle_functions.ENCODE_ACCESS_CHUNK)
    # The seal commits to the lossless evidence only, says its copies are sealed separately, and none is served.
    (part,) = record.seal.parts
    assert part.access_pending and part.access_manifest_blob is None and record.seal.access_copy_blob is None
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(part.manifest_blob))
    assert (manifest.schema_version, manifest.access_copy, manifest.access_sealed_separately) == (2, None, True)
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.findings == []
    assert any("access cop" in note and "not sealed yet" in note for note in result.notes), result.notes


def test_the_access_copy_is_made_after_the_evidence_seal_and_sealed_in_its_own_right(deps: LifecycleDeps) -> None:
    recording_id = stopped_call(deps)
    context = StandInContext({"recording_id": recording_id})

    output, ran, failure = drive(context, failing=set())

    assert failure is None and output["status"] == "sealed"
    assert ran.index(lifecycle_functions.SEAL) < ran.index(lifecycle_functions.ENCODE_ACCESS_CHUNK)
    assert ran.index(lifecycle_functions.INDEX) < ran.index(lifecycle_functions.ENCODE_ACCESS_CHUNK)
    assert ran.index(lifecycle_functions.SEAL_ACCESS_COPY) > ran.index(lifecycle_functions.ASSEMBLE_ACCESS_COPY)
    assert context.statuses[-3:] == ["transcoding", "sealing_access_copy", "sealed"]
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    (part,) = record.seal.parts
    assert not part.access_pending and part.access_manifest_blob is not None
    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    access_entry = next(
        e for e in subject_entries(ledger, recording_subject(recording_id)) if e.kind == EntryKind.ACCESS_COPY_SEALED
    )
    copies = AccessCopyManifest.model_validate_json(deps.recordings.read(part.access_manifest_blob))
    # Hash-committed and linked: the entry names the access manifest's hash, which names the sealed manifest's.
    assert access_entry.details["manifest"]["sha256"] == part.access_manifest_sha256  # type: ignore[index,call-overload]
    assert copies.recording_manifest.sha256 == part.manifest_sha256
    assert copies.access_copy is not None and record.seal.access_copy_blob == copies.access_copy.blob_name
    assert copies.retention_until == record.seal.retention_until
    worm = deps.worm
    assert isinstance(worm, InMemoryWorm)
    protected = {name for name, _ in worm.until}
    assert {copies.access_copy.blob_name, part.access_manifest_blob} <= protected
    # The verdict was asked for at the evidence seal, and again once the copy can be replayed (search entry).
    assert announced(deps) == [recording_id, recording_id]
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.findings == []


def test_a_crash_between_the_two_seals_resumes_and_seals_the_copy_once(deps: LifecycleDeps) -> None:
    """A host that dies after the evidence seal replays the orchestration: every step runs again (idempotent)."""
    recording_id = stopped_call(deps)
    _, _, failure = drive(StandInContext({"recording_id": recording_id}), failing={"lifecycle_seal_access_copy"})
    assert failure is not None

    output, _, failure = drive(StandInContext({"recording_id": recording_id}), failing=set())

    assert failure is None and output["status"] == "sealed"
    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    for name in recordings.names(""):
        assert recordings.version_count(name) == 1, name
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None and record.seal.access_copy_blob is not None


def test_every_activity_of_a_sealing_lifecycle_is_retried(deps: LifecycleDeps) -> None:
    """Chaos seed 1 (2026-12-07): `lifecycle_clean_up`, scheduled without retries, failed once on a storage
    connection reset after both seals, and the orchestration ended `Failed` with a sealed recording."""
    recording_id = stopped_call(deps)
    context = StandInContext({"recording_id": recording_id})

    _, ran, failure = drive(context, failing=set())

    assert failure is None and lifecycle_functions.CLEAN_UP in ran
    assert context.unretried == []
