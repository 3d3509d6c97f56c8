"""The recording lifecycle: the `recorder-events` queue trigger, the `recording_lifecycle` orchestration
and its activities. Triggers parse and delegate; the work is in verbatim.lifecycle."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from verbatim.contracts.evidence import AccessCopy
from verbatim.contracts.lifecycle import (
    AccessChunkTask,
    FinalisedRecording,
    LifecycleInput,
    RecordingCheck,
    SealSummary,
)
from verbatim.contracts.recorder import parse_recorder_event
from verbatim.ledger import ledger_from_settings
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.deps import lifecycle_deps
from verbatim.lifecycle.records import record_event
from verbatim.logging import correlation
from verbatim.reconciliation.hooks import notify_recording_indexed
from verbatim.settings import get_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

ORCHESTRATOR = "recording_lifecycle"
RECORDER_EVENT = "recorder_event"
CHECK_RECORDING = "lifecycle_check_recording"
SALVAGE = "lifecycle_salvage"
FINALISE = "lifecycle_finalise"
PLAN_ACCESS_COPY = "lifecycle_plan_access_copy"
ENCODE_ACCESS_CHUNK = "lifecycle_encode_access_chunk"
ASSEMBLE_ACCESS_COPY = "lifecycle_assemble_access_copy"
SEAL = "lifecycle_seal"
INDEX = "lifecycle_index"
MARK_NOT_RECORDED = "lifecycle_mark_not_recorded"
CLEAN_UP = "lifecycle_clean_up"

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)


def instance_id(recording_id: str) -> str:
    return f"recording-{recording_id}"


@functools.cache
def _deps() -> LifecycleDeps:
    return lifecycle_deps(get_settings())


# --- start and signal ---------------------------------------------------------------------------------------


@bp.queue_trigger(arg_name="message", queue_name="recorder-events", connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def recorder_events(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    """Fold the event into the recording record, then start the orchestration or wake it up. Duplicates and
    out-of-order events are harmless: the record ignores what it has seen, and the orchestration only reads
    the record."""
    event = parse_recorder_event(message.get_body())
    with correlation(recording_id=event.recording_id, call_id=event.call_id):
        # The Cosmos SDK is synchronous: keep it off the event loop the durable client runs on.
        await asyncio.to_thread(record_event, _deps().store, event)
        instance = instance_id(event.recording_id)
        status = await client.get_status(instance)
        signal = {"sequence": event.sequence, "type": event.type}
        if status is None or status.runtime_status is None:
            try:
                await client.start_new(
                    ORCHESTRATOR, instance, LifecycleInput(recording_id=event.recording_id).model_dump()
                )
            except Exception:  # the SDK raises a bare Exception when another event just started it
                log.info("lifecycle %s was started concurrently; signalling it instead", instance)
                await client.raise_event(instance, RECORDER_EVENT, signal)
        elif status.runtime_status in (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending):
            await client.raise_event(instance, RECORDER_EVENT, signal)
        else:
            log.info("event %s after the lifecycle ended (%s)", event.type, status.runtime_status)


# --- the orchestration --------------------------------------------------------------------------------------


def _status(stage: str, recording_id: str, **extra: Any) -> dict[str, Any]:
    return {"stage": stage, "recording_id": recording_id, **extra}


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def recording_lifecycle(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    state = LifecycleInput.model_validate(context.get_input())
    recording_id = state.recording_id
    check = RecordingCheck.model_validate((yield context.call_activity(CHECK_RECORDING, state.model_dump())))
    if check.state in ("capturing", "unknown"):
        # Wait for the recorder: an event wakes us up, else the heartbeat deadline does. Either way the next
        # round re-reads the record, and continue_as_new keeps the history to one round.
        context.set_custom_status(_status("capturing", recording_id, waits=state.waits))
        deadline = context.current_utc_datetime + timedelta(seconds=max(1.0, check.wait_seconds))
        timer = context.create_timer(deadline)
        event = context.wait_for_external_event(RECORDER_EVENT)
        winner = yield context.task_any([event, timer])
        if winner is not timer:
            timer.cancel()
        context.continue_as_new(state.model_copy(update={"waits": state.waits + 1}).model_dump())
        return None
    if check.state == "no_media":
        context.set_custom_status(_status("not_recorded", recording_id, reason=check.reason))
        yield context.call_activity(MARK_NOT_RECORDED, {"recording_id": recording_id, "reason": check.reason})
        return {"recording_id": recording_id, "status": "not_recorded", "reason": check.reason}
    if check.state == "silent":
        context.set_custom_status(_status("salvaging", recording_id, reason=check.reason))
        yield context.call_activity_with_retry(SALVAGE, RETRY, recording_id)

    context.set_custom_status(_status("finalising", recording_id))
    finalised = FinalisedRecording.model_validate(
        (yield context.call_activity_with_retry(FINALISE, RETRY, recording_id))
    )

    context.set_custom_status(_status("transcoding", recording_id))
    tasks = yield context.call_activity_with_retry(PLAN_ACCESS_COPY, RETRY, finalised.model_dump())
    access: dict[str, Any] | None = None
    if tasks:
        chunk_names = yield context.task_all(
            [context.call_activity_with_retry(ENCODE_ACCESS_CHUNK, RETRY, task) for task in tasks]
        )
        access = yield context.call_activity_with_retry(
            ASSEMBLE_ACCESS_COPY,
            RETRY,
            {"recording_id": recording_id, "finalised_blob": finalised.finalised_blob, "chunk_names": chunk_names},
        )

    context.set_custom_status(_status("sealing", recording_id))
    summary = yield context.call_activity_with_retry(
        SEAL, RETRY, {"recording_id": recording_id, "finalised_blob": finalised.finalised_blob, "access_copy": access}
    )

    context.set_custom_status(_status("indexing", recording_id))
    yield context.call_activity_with_retry(INDEX, RETRY, {"summary": summary, "problems": finalised.problems})
    yield context.call_activity(CLEAN_UP, recording_id)
    sealed = SealSummary.model_validate(summary)
    context.set_custom_status(_status("sealed", recording_id, ledger_seq=sealed.seal.ledger_seq))
    return {"recording_id": recording_id, "status": "sealed", "interrupted": sealed.seal.interrupted}


# --- activities: parse, delegate, return JSON ---------------------------------------------------------------


@bp.activity_trigger(input_name="payload", activity=CHECK_RECORDING)
def check_recording(payload: dict[str, Any]) -> dict[str, Any]:
    state = LifecycleInput.model_validate(payload)
    return activities.check_recording(_deps(), state.recording_id, state.waits).model_dump(mode="json")


@bp.activity_trigger(input_name="recording_id", activity=SALVAGE)
def salvage(recording_id: str) -> str:
    return activities.salvage(_deps(), recording_id)


@bp.activity_trigger(input_name="recording_id", activity=FINALISE)
def finalise(recording_id: str) -> dict[str, Any]:
    return activities.finalise_recording(_deps(), recording_id).model_dump(mode="json")


@bp.activity_trigger(input_name="payload", activity=PLAN_ACCESS_COPY)
def plan_access_copy(payload: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = activities.plan_access_copy(_deps(), FinalisedRecording.model_validate(payload))
    return [task.model_dump(mode="json") for task in tasks]


@bp.activity_trigger(input_name="payload", activity=ENCODE_ACCESS_CHUNK)
def encode_access_chunk(payload: dict[str, Any]) -> str:
    return activities.encode_access_chunk(_deps(), AccessChunkTask.model_validate(payload))


@bp.activity_trigger(input_name="payload", activity=ASSEMBLE_ACCESS_COPY)
def assemble_access_copy(payload: dict[str, Any]) -> dict[str, Any]:
    copy = activities.assemble_access_copy(
        _deps(), payload["recording_id"], payload["finalised_blob"], list(payload["chunk_names"])
    )
    return copy.model_dump(mode="json")


@bp.activity_trigger(input_name="payload", activity=SEAL)
def seal(payload: dict[str, Any]) -> dict[str, Any]:
    access = AccessCopy.model_validate(payload["access_copy"]) if payload.get("access_copy") else None
    summary = activities.seal_recording(_deps(), payload["recording_id"], payload["finalised_blob"], access)
    return summary.model_dump(mode="json")


@bp.activity_trigger(input_name="payload", activity=INDEX)
def index(payload: dict[str, Any]) -> str:
    record = activities.index_recording(_deps(), SealSummary.model_validate(payload["summary"]), payload["problems"])
    notify_recording_indexed(record)  # reconciliation re-evaluates the call's verdicts and indexes it for search
    return record.status


@bp.activity_trigger(input_name="payload", activity=MARK_NOT_RECORDED)
def mark_not_recorded(payload: dict[str, Any]) -> None:
    activities.mark_not_recorded(_deps(), payload["recording_id"], payload["reason"])


@bp.activity_trigger(input_name="recording_id", activity=CLEAN_UP)
def clean_up(recording_id: str) -> int:
    return activities.clean_up(_deps(), recording_id)


@bp.timer_trigger(arg_name="timer", schedule="0 5 * * * *")
def ledger_checkpoint(timer: func.TimerRequest) -> None:
    """Sign the ledger's head every hour, so recent seals become provable without waiting for N entries."""
    ledger = ledger_from_settings(get_settings())
    if ledger.signer is not None:
        ledger.checkpoint()
