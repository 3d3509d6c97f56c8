"""Issue 22 (verdict latency): the evidence is sealed and the verdict asked for before the access copy is made, and
the access copy is made outside the lifecycle orchestration, by the `access-copies` queue trigger.

`recording_lifecycle` itself (the orchestrator function of functions/lifecycle.py) is driven here step by step by
a small stand-in for the Durable context: each activity it schedules runs at once through its real trigger
function over in-memory ports, and a failing activity raises into the orchestrator as Durable Functions does once
its retries are spent. The `access-copies` trigger is called with the messages the lifecycle sent, as the host's
queue listener would (a failure leaves the message to be delivered again).

Before the first change the access copy was made first and sealed with the evidence, so a recording whose access
copy could not be encoded was never sealed and its verdict never asked for. Before the second, the transcode ran as
the orchestration's own activities: on one Functions host the evidence seals of recordings that ended together
queued in the same work-item queue behind the transcodes of the ones before them (Durable's activity queue has no
priority), which kept the verdicts of 100 concurrent calls minutes late."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devstack.testkit.captures import speech, stage_capture
from functions import lifecycle as lifecycle_functions
from tests.lifecycle.events import T0, joined, started, stopped
from tests.lifecycle.memory import memory_deps
from verbatim.contracts.evidence import AccessCopyManifest, EntryKind, RecordingManifest
from verbatim.contracts.lifecycle import AccessCopyRequest
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.evidence.seal import recording_subject
from verbatim.evidence.verify import verify_recording
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.access_requests import InMemoryPendingAccessCopies
from verbatim.lifecycle.activities import LifecycleDeps
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
    ports = memory_deps(access_copies=InMemoryQueue())
    store = ports.store
    assert isinstance(store, InMemoryRecordingStore)
    ports.pending_access = InMemoryPendingAccessCopies(lambda: [record for _, record in store.docs.values()])
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


def requests(deps: LifecycleDeps) -> list[AccessCopyRequest]:
    assert isinstance(deps.access_copies, InMemoryQueue)
    return [AccessCopyRequest.model_validate_json(body) for body in deps.access_copies.bodies()]


def deliver(deps: LifecycleDeps) -> list[Exception | None]:
    """Deliver every message on `access-copies` once to its trigger, as the host's listener does; a message whose
    function failed stays on the queue (it is delivered again), one that succeeded is deleted. Returns the
    outcomes."""
    assert isinstance(deps.access_copies, InMemoryQueue)
    trigger = lifecycle_functions.access_copies._function.get_user_function()
    outcomes: list[Exception | None] = []
    kept: list[tuple[str, int]] = []
    pending, deps.access_copies.messages = list(deps.access_copies.messages), []
    for body, delay in pending:
        try:
            asyncio.run(trigger(func.QueueMessage(body=body.encode())))
            outcomes.append(None)
        except Exception as error:  # the host's listener: the message becomes visible again
            outcomes.append(error)
            kept.append((body, delay))
    deps.access_copies.messages = kept + deps.access_copies.messages
    return outcomes


def access_part(deps: LifecycleDeps, recording_id: str) -> Any:
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    (part,) = record.seal.parts
    return part


def test_the_lifecycle_seals_and_indexes_the_evidence_then_only_asks_for_the_access_copy(deps: LifecycleDeps) -> None:
    """The orchestration schedules no transcoding at all: its activity slots serve the evidence path only."""
    recording_id = stopped_call(deps)
    context = StandInContext({"recording_id": recording_id})

    output, ran, failure = drive(context, failing=set())

    assert failure is None and output["status"] == "sealed"
    assert ran == [
        lifecycle_functions.CHECK_RECORDING,
        lifecycle_functions.FINALISE,
        lifecycle_functions.SEAL,
        lifecycle_functions.INDEX,
        lifecycle_functions.REQUEST_ACCESS_COPY,
    ]
    assert context.statuses[-2:] == ["requesting_access_copy", "sealed"]
    (request,) = requests(deps)
    assert (request.recording_id, request.part) == (recording_id, 0)
    # Evidence sealed, verdict asked for, the copy pending and not served.
    assert kinds(deps, recording_id) == [EntryKind.SEALED]
    assert announced(deps) == [recording_id]
    part = access_part(deps, recording_id)
    assert part.access_pending and part.access_manifest_blob is None


def test_the_evidence_is_sealed_and_the_verdict_asked_for_while_the_access_copy_cannot_be_encoded(
    deps: LifecycleDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording_id = stopped_call(deps)
    output, _, failure = drive(StandInContext({"recording_id": recording_id}), failing=set())
    assert failure is None and output["status"] == "sealed"

    def cannot_encode(*_: Any) -> str:
        raise RuntimeError("libopus failed (test)")

    monkeypatch.setattr(activities, "encode_access_chunk", cannot_encode)
    (outcome,) = deliver(deps)

    assert isinstance(outcome, RuntimeError)  # the message stays for the host's retries, then the poison queue
    assert len(requests(deps)) == 1
    record = deps.store.get(recording_id)
    # The evidence was sealed before, and reconciliation was asked to decide the verdict from it.
    assert record is not None and record.status == "sealed" and record.seal is not None
    assert kinds(deps, recording_id) == [EntryKind.SEALED]
    assert announced(deps) == [recording_id]
    # The seal commits to the lossless evidence only, says its copies are sealed separately, and none is served.
    part = access_part(deps, recording_id)
    assert part.access_pending and part.access_manifest_blob is None and record.seal.access_copy_blob is None
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(part.manifest_blob))
    assert (manifest.schema_version, manifest.access_copy, manifest.access_sealed_separately) == (2, None, True)
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.findings == []
    assert any("access cop" in note and "not sealed yet" in note for note in result.notes), result.notes


def test_the_access_copies_trigger_makes_the_copy_and_seals_it_in_its_own_right(deps: LifecycleDeps) -> None:
    recording_id = stopped_call(deps)
    drive(StandInContext({"recording_id": recording_id}), failing=set())

    assert deliver(deps) == [None]

    assert requests(deps) == []  # done: the message is gone
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    part = access_part(deps, recording_id)
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
    # The scratch work is cleaned up once the copy is sealed.
    scratch = deps.scratch
    assert isinstance(scratch, InMemoryBlobStore)
    assert scratch.names("") == []
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.findings == []


def test_a_crash_between_the_two_seals_is_redelivered_and_seals_the_copy_once(
    deps: LifecycleDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that dies while sealing the copy leaves the message to reappear: every step runs again (idempotent)."""
    recording_id = stopped_call(deps)
    drive(StandInContext({"recording_id": recording_id}), failing=set())
    real_seal = activities.seal_access_copy
    calls: list[str] = []

    def dies_after_the_ledger_entry(*args: Any) -> Any:
        sealed = real_seal(*args)  # the manifest, WORM and the ledger entry are written ...
        calls.append("seal")
        if len(calls) == 1:
            raise OSError("the host died (test)")  # ... and the host dies before the message is deleted
        return sealed

    monkeypatch.setattr(activities, "seal_access_copy", dies_after_the_ledger_entry)
    (first,) = deliver(deps)
    (second,) = deliver(deps)

    assert isinstance(first, OSError) and second is None
    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    for name in recordings.names(""):
        assert recordings.version_count(name) == 1, name
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None and record.seal.access_copy_blob is not None


def test_a_delivery_killed_after_writing_the_copy_and_its_manifest_serves_nothing_and_its_redelivery_seals_them(
    deps: LifecycleDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos seed 1 at 16:18 (docs/reliability.md): the host was killed after the delivery had written `access.opus`
    and `access.json` and before the `access_copy.sealed` entry and the record. Until the message comes back the
    copy is named by nothing (the API answers 409 `AccessCopyNotReady` from the record); the redelivery seals those
    very objects — no second copy, no blob left that the seal does not name."""
    recording_id = stopped_call(deps)
    drive(StandInContext({"recording_id": recording_id}), failing=set())
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    real_append = ledger.append
    killed: list[str] = []

    def killed_before_the_access_entry(kind: str, *args: Any, **kwargs: Any) -> Any:
        if kind == EntryKind.ACCESS_COPY_SEALED and not killed:
            killed.append(kind)
            raise OSError("the Functions host was killed (test)")  # nothing after this point runs
        return real_append(kind, *args, **kwargs)

    monkeypatch.setattr(ledger, "append", killed_before_the_access_entry)
    (first,) = deliver(deps)
    assert isinstance(first, OSError) and killed
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    written = sorted(n for n in recordings.names(f"{recording_id}/") if n.rsplit("/", 1)[1].startswith("access."))
    assert written == [f"{recording_id}/access.json", f"{recording_id}/access.opus"]
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None and record.seal.access_copy_blob is None
    assert access_part(deps, recording_id).access_pending  # so nothing serves it
    assert kinds(deps, recording_id) == [EntryKind.SEALED]

    assert deliver(deps) == [None]  # the message, visible again after the dead host's lease

    part = access_part(deps, recording_id)
    assert not part.access_pending and part.access_manifest_blob == f"{recording_id}/access.json"
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    assert record.seal.access_copy_blob == f"{recording_id}/access.opus"
    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    for name in recordings.names(""):
        assert recordings.version_count(name) == 1, name
    # Every object of the recording is named by its seal or one of its sealed manifests (`no-orphan-evidence`).
    named = {record.seal.manifest_blob, part.access_manifest_blob}
    for manifest in sorted(named):
        named |= set(re.findall(rf'"({re.escape(recording_id)}/[^"]+)"', recordings.read(manifest).decode()))
    assert set(recordings.names(f"{recording_id}/")) <= named
    ledger.checkpoint()
    assert verify_recording(recording_id, deps.recordings, ledger).findings == []


def test_a_duplicate_request_changes_nothing(deps: LifecycleDeps) -> None:
    recording_id = stopped_call(deps)
    drive(StandInContext({"recording_id": recording_id}), failing=set())
    assert isinstance(deps.access_copies, InMemoryQueue)
    deps.access_copies.messages.append(deps.access_copies.messages[0])  # at-least-once delivery

    assert deliver(deps) == [None, None]

    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    for name in recordings.names(""):
        assert recordings.version_count(name) == 1, name


def test_the_sweep_asks_again_only_for_copies_pending_long_after_their_evidence_seal(deps: LifecycleDeps) -> None:
    """A request lost for good (its message poisoned, or a lifecycle that failed after the evidence seal) is sent
    again; a copy being made now, or already sealed, is left alone."""
    now = datetime.now(UTC)
    lost, recent, done = stopped_call(deps), stopped_call(deps), stopped_call(deps)
    deps.clock = lambda: now - timedelta(minutes=45)  # its evidence was sealed 45 minutes ago
    drive(StandInContext({"recording_id": lost}), failing=set())
    deps.clock = lambda: now
    for recording_id in (recent, done):
        drive(StandInContext({"recording_id": recording_id}), failing=set())
    assert isinstance(deps.access_copies, InMemoryQueue)
    sent = {AccessCopyRequest.model_validate_json(body).recording_id: (body, 0) for body in deps.access_copies.bodies()}
    deps.access_copies.messages = [sent[done]]
    assert deliver(deps) == [None]
    deps.access_copies.messages = [sent[recent]]  # lost's message went to the poison queue

    swept = activities.sweep_access_copies(deps, timedelta(minutes=30))

    assert [(p.recording_id, p.part) for p in swept] == [(lost, 0)]
    assert [r.recording_id for r in requests(deps)] == [recent, lost]
    assert deliver(deps) == [None, None]
    for recording_id in (lost, recent, done):
        assert not access_part(deps, recording_id).access_pending
        assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    assert activities.sweep_access_copies(deps, timedelta(minutes=30)) == []


def test_every_activity_of_a_sealing_lifecycle_is_retried(deps: LifecycleDeps) -> None:
    """Chaos seed 1 (2026-12-07): `lifecycle_clean_up`, scheduled without retries, failed once on a storage
    connection reset after both seals, and the orchestration ended `Failed` with a sealed recording."""
    recording_id = stopped_call(deps)
    context = StandInContext({"recording_id": recording_id})

    _, ran, failure = drive(context, failing=set())

    assert failure is None and lifecycle_functions.REQUEST_ACCESS_COPY in ran
    assert context.unretried == []


def test_a_delivery_cut_short_keeps_its_encoded_chunks_and_the_next_one_encodes_only_the_rest(
    deps: LifecycleDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long recording's copy is many chunks in one invocation: one cut short by the host's function timeout must
    not start over, or it would never finish."""
    recording_id = stopped_call(deps, seconds=10.0)  # 3 chunks of 4 s
    drive(StandInContext({"recording_id": recording_id}), failing=set())
    real_encode = activities.encode_access_chunk
    encoded: list[int] = []

    def timed_out_at_the_second_chunk(deps_: LifecycleDeps, task: Any) -> str:
        if len(encoded) == 1:
            encoded.append(-1)
            raise TimeoutError("functionTimeout (test)")
        encoded.append(task.index)
        return real_encode(deps_, task)

    monkeypatch.setattr(activities, "encode_access_chunk", timed_out_at_the_second_chunk)
    (first,) = deliver(deps)
    (second,) = deliver(deps)

    assert isinstance(first, TimeoutError) and second is None
    assert encoded == [0, -1, 1, 2]  # chunk 0 was not encoded again
    assert kinds(deps, recording_id) == [EntryKind.SEALED, EntryKind.ACCESS_COPY_SEALED]
    assert not access_part(deps, recording_id).access_pending
