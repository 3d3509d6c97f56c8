"""Exports: `POST /api/v1/exports` (Compliance.Officer, `X-Access-Reason` required) starts the `export_package`
orchestration; `GET /api/v1/exports[/{id}]` shows the list and one export's progress and result;
`GET /api/v1/exports/{id}/package` downloads the package in Range parts, `POST /api/v1/exports/{id}/link` gives a
short-lived user-delegation SAS URL of it (Azure); `GET /api/v1/exports/{id}/parts` lists what to download (the
package, or the index, its signature and each part of a multi-part package), `GET .../parts/{name}` and
`POST .../parts/{name}/link` download one of them; `DELETE /api/v1/exports/{id}` deletes it;
an hourly timer expires packages past their retention. Triggers parse and delegate; the work is in
verbatim.exports (docs/exports.md).

The orchestration plans; waits, with a durable timer and bounded (`EXPORT_ACCESS_COPY_WAIT_MINUTES`), while
access copies the export carries are still being made (they are sealed after the evidence); then fans out over
the recordings in batches (attest: each recording's `exported` ledger entry, one snapshot file per batch), signs
one checkpoint covering them, fans out again (package: each batch's segment of the ZIP as staged blocks), then
assembles. It carries its place in `continue_as_new`, so its history stays small, and every step finds its output
in the export's work area when a retry or a restarted host repeats it.
The custom status is the export's progress (`ExportProgress`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel

from functions.auth import authorize
from functions.http import (
    json_response,
    optional_reason,
    parse_json_body,
    problem_responses,
    ranged_response,
    required_reason,
)
from verbatim.contracts.exports import (
    AccessCopyWait,
    ExportBatch,
    ExportFailure,
    ExportJob,
    ExportPlan,
    ExportProgress,
    ExportRequest,
    ExportResult,
    ExportStage,
    PartSummary,
)
from verbatim.exports.service import BATCH, READERS, ExportService
from verbatim.platform.auth import COMPLIANCE_OFFICER
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()

ORCHESTRATOR = "export_package"
PLAN = "export_plan"
AWAIT_ACCESS_COPIES = "export_await_access_copies"
ATTEST = "export_attest"
CHECKPOINT = "export_checkpoint"
PACKAGE = "export_package_batch"
ASSEMBLE = "export_assemble"
FAIL = "export_fail"
WINDOW = 8  # activities in flight per round of the orchestration (then continue_as_new)
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=5)
Json = dict[str, Any]


def instance_id(export_id: str) -> str:
    return f"export-{export_id}"


def service() -> ExportService:
    return current().exports.service


def _json(model: BaseModel) -> Json:
    dumped: Json = model.model_dump(mode="json", by_alias=True)
    return dumped


# --- HTTP ------------------------------------------------------------------------------------------------------


@bp.route(route="v1/exports", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@problem_responses
async def create_export(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """202 with the export's view and a Location to poll; the package is made by the orchestration."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    body = parse_json_body(req, ExportRequest)
    # Cosmos and the ledger are synchronous: off the event loop the durable client runs on.
    record = await asyncio.to_thread(service().create, body, principal, reason)
    await client.start_new(ORCHESTRATOR, instance_id(record.id), _json(ExportJob(export_id=record.id)))
    response = json_response(await asyncio.to_thread(service().status, record.id), status=202)
    response.headers["Location"] = f"/api/v1/exports/{record.id}"
    return response


@bp.route(route="v1/exports", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_exports(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(service().recent(principal, optional_reason(req)))


@bp.route(route="v1/exports/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_export(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(service().view(req.route_params["id"], principal, optional_reason(req)))


@bp.route(route="v1/exports/{id}/package", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def download_export(req: func.HttpRequest) -> func.HttpResponse:
    """The package in Range parts (206); the whole of a package that fits in one part without a Range header."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    answer = service().download(req.route_params["id"], req.headers.get("range"), principal, reason)
    return ranged_response(answer, "the package")


@bp.route(route="v1/exports/{id}/link", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def link_export(req: func.HttpRequest) -> func.HttpResponse:
    """A short-lived read-only user-delegation SAS URL of the package (Azure); 409 where storage is reached with
    a key."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    return json_response(service().link(req.route_params["id"], principal, reason))


@bp.route(route="v1/exports/{id}/parts", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_export_parts(req: func.HttpRequest) -> func.HttpResponse:
    """What to download: the package, or the index, its signature and every part of a multi-part one."""
    principal = authorize(req, *READERS)
    return json_response(service().list_objects(req.route_params["id"], principal, optional_reason(req)))


@bp.route(route="v1/exports/{id}/parts/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def download_export_part(req: func.HttpRequest) -> func.HttpResponse:
    """One object of the package (a part, the index, its signature) in Range parts (206)."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    name = req.route_params["name"]
    answer = service().download(req.route_params["id"], req.headers.get("range"), principal, reason, name)
    return ranged_response(answer, name)


@bp.route(route="v1/exports/{id}/parts/{name}/link", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def link_export_part(req: func.HttpRequest) -> func.HttpResponse:
    """A short-lived read-only user-delegation SAS URL of one object of the package (Azure); 409 where storage is
    reached with a key."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    return json_response(service().link(req.route_params["id"], principal, reason, req.route_params["name"]))


@bp.route(route="v1/exports/{id}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def delete_export(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    reason = required_reason(req)
    return json_response(service().delete(req.route_params["id"], principal, reason))


@bp.timer_trigger(arg_name="timer", schedule="0 17 * * * *")
def export_expiry(timer: func.TimerRequest) -> None:
    """Hourly: delete packages past their retention (kept while the legal hold they were made from is active)."""
    expired = service().sweep()
    if expired:
        log.info("exports expired: %d", len(expired), extra={"exports": expired})


# --- the orchestration -----------------------------------------------------------------------------------------


def _status(job: ExportJob, stage: ExportStage, done: int) -> Json:
    return _json(
        ExportProgress(stage=stage, export_id=job.export_id, total=job.total, done=done, media_bytes=job.media_bytes)
    )


def _batches(job: ExportJob, checkpoint_size: int = 0) -> list[Json]:
    batches: list[Json] = []
    first = job.next
    while first < job.total and len(batches) < WINDOW:
        end = min(job.total, first + BATCH)
        batches.append(
            _json(ExportBatch(export_id=job.export_id, first=first, end=end, checkpoint_size=checkpoint_size))
        )
        first = end
    return batches


class AccessCopiesNotReady(Exception):
    """Access copies the export carries were still not sealed when its wait ran out."""


def _not_ready(wait: AccessCopyWait, waits: int) -> str:
    named = ", ".join(wait.recording_ids) + (", ..." if wait.pending > len(wait.recording_ids) else "")
    waited = waits * wait.poll_seconds // 60
    return (
        f"the access copies of {wait.pending} recording(s) were still being made after {waited} minute(s) ({named}); "
        "their evidence is sealed: export again later, or export without access copies"
    )


# Versions: as the recording lifecycle's (functions/lifecycle.py). 1.0 and none: the steps below.
@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def export_package(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    job = ExportJob.model_validate(context.get_input())
    try:
        if job.phase == "plan":
            context.set_custom_status(_status(job, "planning", 0))
            plan = ExportPlan.model_validate((yield context.call_activity_with_retry(PLAN, RETRY, _json(job))))
            context.continue_as_new(_json(job.model_copy(update={"phase": "access", "total": plan.total, "next": 0})))
            return None
        if job.phase == "access":
            wait = AccessCopyWait.model_validate(
                (yield context.call_activity_with_retry(AWAIT_ACCESS_COPIES, RETRY, _json(job)))
            )
            if wait.pending == 0:
                context.continue_as_new(_json(job.model_copy(update={"phase": "attest", "waits": 0})))
                return None
            if job.waits >= wait.max_waits:
                raise AccessCopiesNotReady(_not_ready(wait, job.waits))
            context.set_custom_status(_status(job, "waiting_for_access_copies", 0))
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait.poll_seconds))
            context.continue_as_new(_json(job.model_copy(update={"waits": job.waits + 1})))
            return None
        if job.phase == "attest":
            context.set_custom_status(_status(job, "attesting", job.next))
            batches = _batches(job)
            if batches:
                yield context.task_all([context.call_activity_with_retry(ATTEST, RETRY, b) for b in batches])
                end = ExportBatch.model_validate(batches[-1]).end
                context.continue_as_new(_json(job.model_copy(update={"next": end})))
                return None
            context.set_custom_status(_status(job, "checkpointing", job.total))
            size = yield context.call_activity_with_retry(CHECKPOINT, RETRY, _json(job))
            update = {"phase": "package", "next": 0, "checkpoint_size": int(size)}
            context.continue_as_new(_json(job.model_copy(update=update)))
            return None
        if job.phase == "package":
            context.set_custom_status(_status(job, "packaging", job.next))
            batches = _batches(job, job.checkpoint_size)
            if batches:
                parts = yield context.task_all([context.call_activity_with_retry(PACKAGE, RETRY, b) for b in batches])
                media = sum(PartSummary.model_validate(p).media_bytes for batch in parts for p in batch)
                end = ExportBatch.model_validate(batches[-1]).end
                update = {"next": end, "media_bytes": job.media_bytes + media}
                context.continue_as_new(_json(job.model_copy(update=update)))
                return None
            context.continue_as_new(_json(job.model_copy(update={"phase": "assemble"})))
            return None
        context.set_custom_status(_status(job, "assembling", job.total))
        result = ExportResult.model_validate((yield context.call_activity_with_retry(ASSEMBLE, RETRY, _json(job))))
        context.set_custom_status(
            _status(job.model_copy(update={"media_bytes": result.media_bytes}), "completed", job.total)
        )
        return _json(result)
    except Exception as error:  # an activity failed after its retries: the export fails, with the reason
        message = str(error) or type(error).__name__
        yield context.call_activity_with_retry(
            FAIL, RETRY, _json(ExportFailure(export_id=job.export_id, error=message))
        )
        context.set_custom_status(_status(job, "failed", job.next))
        return {"exportId": job.export_id, "error": message}


# --- activities ------------------------------------------------------------------------------------------------


@bp.activity_trigger(input_name="payload", activity=PLAN)
def plan(payload: Json) -> Json:
    return _json(service().plan(ExportJob.model_validate(payload).export_id))


@bp.activity_trigger(input_name="payload", activity=AWAIT_ACCESS_COPIES)
def await_access_copies(payload: Json) -> Json:
    return _json(service().pending_access_copies(ExportJob.model_validate(payload).export_id))


@bp.activity_trigger(input_name="payload", activity=ATTEST)
def attest(payload: Json) -> int:
    return service().attest(ExportBatch.model_validate(payload))


@bp.activity_trigger(input_name="payload", activity=CHECKPOINT)
def checkpoint(payload: Json) -> int:
    return service().checkpoint(ExportJob.model_validate(payload).export_id)


@bp.activity_trigger(input_name="payload", activity=PACKAGE)
def package(payload: Json) -> list[Json]:
    return [_json(part) for part in service().package(ExportBatch.model_validate(payload))]


@bp.activity_trigger(input_name="payload", activity=ASSEMBLE)
def assemble(payload: Json) -> Json:
    job = ExportJob.model_validate(payload)
    return _json(service().assemble(job.export_id, job.total, job.checkpoint_size))


@bp.activity_trigger(input_name="payload", activity=FAIL)
def fail(payload: Json) -> None:
    failure = ExportFailure.model_validate(payload)
    service().fail(failure.export_id, failure.error)
