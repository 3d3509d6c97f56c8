"""The recording lifecycle: the `recorder-events` queue trigger, the `recording_lifecycle` orchestration
and its activities. Triggers parse and delegate; the work is in verbatim.lifecycle. Every activity input and
output, the external event, the custom status and the output are contracts of verbatim.contracts.lifecycle:
the orchestrator never spells a payload key."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel

from verbatim.contracts.lifecycle import (
    AccessCopyRequest,
    AccessCopyRequested,
    FinalisedRecording,
    Indexed,
    IndexRequest,
    LifecycleInput,
    LifecycleOutcome,
    LifecycleStage,
    LifecycleStatus,
    MarkNotRecorded,
    RecorderSignal,
    RecordingCheck,
    RecordingTask,
    Salvaged,
    SalvageRequest,
    SealRequest,
    SealSummary,
)
from verbatim.contracts.recorder import parse_recorder_event
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.platform import layout
from verbatim.platform.logging import correlation
from verbatim.platform.settings import get_settings
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()

ORCHESTRATOR = "recording_lifecycle"
RECORDER_EVENT = "recorder_event"
CHECK_RECORDING = "lifecycle_check_recording"
SALVAGE = "lifecycle_salvage"
FINALISE = "lifecycle_finalise"
SEAL = "lifecycle_seal"
INDEX = "lifecycle_index"
REQUEST_ACCESS_COPY = "lifecycle_request_access_copy"
MARK_NOT_RECORDED = "lifecycle_mark_not_recorded"

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)

Json = dict[str, Any]


# The states in which an instance still takes events. `ContinuedAsNew` is transient (Microsoft's "Manage instances
# in Durable Functions": "restarted itself with a new history"): an event raised then reaches the new execution,
# where leaving it out kept it waiting for the orchestration's next timer. A `Suspended` instance keeps its events
# until it is resumed.
SIGNALLED = frozenset(
    {
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
        df.OrchestrationRuntimeStatus.ContinuedAsNew,
        df.OrchestrationRuntimeStatus.Suspended,
    }
)


def instance_id(recording_id: str, part: int = 0) -> str:
    """`recording-<id>` seals part 0; `recording-<id>-part-<n>` seals continuation n."""
    return f"recording-{recording_id}" if part == 0 else f"recording-{recording_id}-part-{part}"


def _deps() -> LifecycleDeps:
    return current().lifecycle


def _json(model: BaseModel, *, exclude_none: bool = False) -> Json:
    """A contract as the JSON the durable history keeps."""
    dumped: Json = model.model_dump(mode="json", exclude_none=exclude_none)
    return dumped


# --- start and signal ---------------------------------------------------------------------------------------


@bp.queue_trigger(arg_name="message", queue_name=layout.RECORDER_EVENTS_QUEUE, connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def recorder_events(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    """Fold the event into the recording record, then start the orchestration of the part it is about (its
    capture generation) or wake it up. Duplicates and out-of-order events are harmless: the record ignores what
    it has seen, and the orchestration only reads the record. An event naming blobs outside its recording's
    own capture folder is rejected before anything is written, and recorded as a security event."""
    event = parse_recorder_event(message.get_body())
    with correlation(recording_id=event.recording_id, call_id=event.call_id):
        # The Cosmos SDK is synchronous: keep it off the event loop the durable client runs on.
        if await asyncio.to_thread(activities.receive_event, _deps(), event) is None:
            return  # rejected: it named blobs outside its recording (recorded as a security event)
        part = event.generation
        instance = instance_id(event.recording_id, part)
        status = await client.get_status(instance)
        signal = _json(RecorderSignal(sequence=event.sequence, type=event.type))
        if status is None or status.runtime_status is None:
            try:
                start = LifecycleInput(recording_id=event.recording_id, part=part)
                await client.start_new(ORCHESTRATOR, instance, _json(start))
            except Exception:  # the SDK raises a bare Exception when another event just started it
                log.info("lifecycle %s was started concurrently; signalling it instead", instance)
                await client.raise_event(instance, RECORDER_EVENT, signal)
        elif status.runtime_status in SIGNALLED:
            await client.raise_event(instance, RECORDER_EVENT, signal)
        else:
            log.info("event %s after the lifecycle ended (%s)", event.type, status.runtime_status)


# --- the orchestration --------------------------------------------------------------------------------------


def _status(stage: LifecycleStage, recording_id: str, part: int, **extra: Any) -> Json:
    status = LifecycleStatus(stage=stage, recording_id=recording_id, part=part or None, **extra)
    return _json(status, exclude_none=True)


# Versions (host.json `defaultVersion`; docs/deploy.md, "Updating the Function App"): every instance keeps the version
# it started with, and a release that changes these steps raises the version and keeps the old steps in a branch on
# `context.version`. 1.0 (and instances from before versioning, with none): the steps below.
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def recording_lifecycle(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    state = LifecycleInput.model_validate(context.get_input())
    recording_id, part = state.recording_id, state.part
    task = _json(RecordingTask(recording_id=recording_id, part=part))
    check = RecordingCheck.model_validate(
        (yield context.call_activity_with_retry(CHECK_RECORDING, RETRY, _json(state)))
    )
    if check.state in ("capturing", "unknown"):
        # Wait for the recorder: an event wakes us up, else the heartbeat deadline does. Either way the next
        # round re-reads the record, and continue_as_new keeps the history to one round.
        stage: LifecycleStage = "waiting_for_previous_part" if "not sealed yet" in check.reason else "capturing"
        context.set_custom_status(_status(stage, recording_id, part, waits=state.waits, reason=check.reason))
        deadline = context.current_utc_datetime + timedelta(seconds=max(1.0, check.wait_seconds))
        timer = context.create_timer(deadline)
        event = context.wait_for_external_event(RECORDER_EVENT)
        winner = yield context.task_any([event, timer])
        if winner is not timer:
            timer.cancel()  # type: ignore[attr-defined]  # a TimerTask or LongTimerTask; create_timer says TaskBase
        following = LifecycleInput(recording_id=recording_id, waits=state.waits + 1, part=part)
        context.continue_as_new(_json(following))
        return None
    if check.state == "no_media":
        context.set_custom_status(_status("not_recorded", recording_id, part, reason=check.reason))
        yield context.call_activity_with_retry(
            MARK_NOT_RECORDED, RETRY, _json(MarkNotRecorded(recording_id=recording_id, reason=check.reason, part=part))
        )
        outcome = LifecycleOutcome(
            recording_id=recording_id, status="not_recorded", reason=check.reason, part=part or None
        )
        return _json(outcome, exclude_none=True)
    if check.state == "silent":
        context.set_custom_status(_status("salvaging", recording_id, part, reason=check.reason))
        request = SalvageRequest(recording_id=recording_id, part=part, reason=check.reason, evidence=check.evidence)
        yield context.call_activity_with_retry(SALVAGE, RETRY, _json(request))

    context.set_custom_status(_status("finalising", recording_id, part))
    finalised = FinalisedRecording.model_validate((yield context.call_activity_with_retry(FINALISE, RETRY, task)))

    # The lossless evidence is sealed first and the recording indexed (reconciliation decides the verdict from
    # it): the verdict never waits for the transcode. The access copies are then asked of the `access-copies`
    # trigger, which makes and seals them in their own right (`access_copy.sealed`) outside this orchestration's
    # activity slots, so the evidence path of other recordings never queues behind them; the API serves nothing of
    # them before. A host that dies before the request is sent replays this history and sends it (a duplicate
    # is harmless); a request lost for good is sent again by the sweep (`access_copy_sweep`).
    context.set_custom_status(_status("sealing", recording_id, part))
    request_seal = SealRequest(recording_id=recording_id, part=part, finalised_blob=finalised.finalised_blob)
    sealed = SealSummary.model_validate((yield context.call_activity_with_retry(SEAL, RETRY, _json(request_seal))))

    context.set_custom_status(_status("indexing", recording_id, part))
    index_request = IndexRequest(summary=sealed, problems=finalised.problems)
    yield context.call_activity_with_retry(INDEX, RETRY, _json(index_request))

    context.set_custom_status(_status("requesting_access_copy", recording_id, part))
    yield context.call_activity_with_retry(REQUEST_ACCESS_COPY, RETRY, _json(finalised))
    context.set_custom_status(_status("sealed", recording_id, part, ledger_seq=sealed.seal.ledger_seq))
    outcome = LifecycleOutcome(
        recording_id=recording_id, status="sealed", interrupted=sealed.seal.interrupted, part=part or None
    )
    return _json(outcome, exclude_none=True)


# --- activities: parse, delegate, return JSON ---------------------------------------------------------------


@bp.activity_trigger(input_name="payload", activity=CHECK_RECORDING)
def check_recording(payload: Json) -> Json:
    state = LifecycleInput.model_validate(payload)
    return _json(activities.check_recording(_deps(), state.recording_id, state.waits, state.part))


@bp.activity_trigger(input_name="payload", activity=SALVAGE)
def salvage(payload: Json) -> Json:
    request = SalvageRequest.model_validate(payload)
    manifest = activities.salvage(
        _deps(), request.recording_id, request.part, reason=request.reason, evidence=request.evidence
    )
    return _json(Salvaged(manifest_blob=manifest))


@bp.activity_trigger(input_name="payload", activity=FINALISE)
def finalise(payload: Json) -> Json:
    task = RecordingTask.model_validate(payload)
    return _json(activities.finalise_recording(_deps(), task.recording_id, task.part))


@bp.activity_trigger(input_name="payload", activity=SEAL)
def seal(payload: Json) -> Json:
    request = SealRequest.model_validate(payload)
    summary = activities.seal_recording(
        _deps(), request.recording_id, request.finalised_blob, request.access_copy, request.part
    )
    return _json(summary)


@bp.activity_trigger(input_name="payload", activity=INDEX)
def index(payload: Json) -> Json:
    """Mark the recording sealed; the activity announces it to reconciliation (`recording.indexed`, once)."""
    request = IndexRequest.model_validate(payload)
    record = activities.index_recording(_deps(), request.summary, request.problems)
    return _json(Indexed(recording_id=record.id, status=record.status))


@bp.activity_trigger(input_name="payload", activity=REQUEST_ACCESS_COPY)
def request_access_copy(payload: Json) -> Json:
    finalised = FinalisedRecording.model_validate(payload)
    sealed = activities.request_access_copy(_deps(), finalised)
    return _json(AccessCopyRequested(recording_id=finalised.recording_id, part=finalised.part, sealed=sealed))


# --- access copies: their own trigger, after the evidence ---------------------------------------------------

_TRANSCODERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _transcoders() -> asyncio.Semaphore:
    """How many access copies this process makes at once (ACCESS_COPY_CONCURRENCY): the listener takes a batch of
    messages, and transcoding is CPU-bound, so the rest wait here (on the event loop, holding no worker thread)."""
    loop = asyncio.get_running_loop()
    if loop not in _TRANSCODERS:
        _TRANSCODERS[loop] = asyncio.Semaphore(get_settings().access_copy_concurrency)
    return _TRANSCODERS[loop]


@bp.queue_trigger(arg_name="message", queue_name=layout.ACCESS_COPIES_QUEUE, connection="AzureWebJobsStorage")
async def access_copies(message: func.QueueMessage) -> None:
    """Make and seal a sealed part's access copies (`verbatim.lifecycle.access_requests`). A failure leaves the
    message to the host's retries, then `access-copies-poison`; the sweep asks again later."""
    request = AccessCopyRequest.model_validate_json(message.get_body())
    with correlation(recording_id=request.recording_id):
        async with _transcoders():
            # The Cosmos and blob SDKs and libopus are synchronous: off the event loop.
            await asyncio.to_thread(activities.make_access_copy, _deps(), request)


@bp.timer_trigger(arg_name="timer", schedule="0 */10 * * * *")
def access_copy_sweep(timer: func.TimerRequest) -> None:
    """Ask again for the access copies of every part still pending `ACCESS_COPY_SWEEP_MINUTES` after its evidence
    was sealed (a request that went to the poison queue, or a lifecycle that failed after the evidence seal)."""
    minutes = get_settings().access_copy_sweep_minutes
    activities.sweep_access_copies(_deps(), timedelta(minutes=minutes))


@bp.activity_trigger(input_name="payload", activity=MARK_NOT_RECORDED)
def mark_not_recorded(payload: Json) -> None:
    request = MarkNotRecorded.model_validate(payload)
    activities.mark_not_recorded(_deps(), request.recording_id, request.reason, request.part)


@bp.timer_trigger(arg_name="timer", schedule="*/30 * * * * *")
def ledger_checkpoint(timer: func.TimerRequest) -> None:
    """Sign a checkpoint of the ledger's log every 30 seconds (when anything was appended), so a new seal is
    provable within a minute; the checkpoint is checked against the previous one first, then anchored."""
    ledger = current().ledger
    if ledger.keys.signer is not None:
        ledger.checkpoint()
