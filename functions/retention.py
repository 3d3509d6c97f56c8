"""Retention triggers: the daily sweep (timer, schedule from RETENTION_SWEEP_SCHEDULE) and its admin trigger,
retention classes and single recordings for Compliance.Officer, and the retention reports for
Compliance.Auditor. Triggers parse and delegate; the work is in verbatim.retention."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, parse_json_body, problem_responses
from verbatim.contracts.retention import RecordingDeletionRequest, RecordingRetentionExtension, RetentionClassExtension
from verbatim.evidence.worm_status import check_worm_locked
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, RECORDER_ADMIN
from verbatim.platform.settings import get_settings
from verbatim.retention.api import RetentionApi
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()


def api() -> RetentionApi:
    return RetentionApi(current().retention)


# The schedule is an app setting read when the app is indexed (a change restarts the app in Azure anyway).
@bp.timer_trigger(arg_name="timer", schedule=get_settings().retention_sweep_schedule)
def retention_sweep(timer: func.TimerRequest) -> None:
    """Delete what is past retention and not held, with a certificate per recording (one run at a time)."""
    report = current().retention.sweep.run()
    log.info("retention sweep %s: %s", report.run_id, report.outcome, extra={"deleted": len(report.deleted)})


@bp.timer_trigger(arg_name="timer", schedule="0 0 4 * * *")
def evidence_worm_status(timer: func.TimerRequest) -> None:
    """Daily: log whether the recordings container's WORM policy is locked (the operators' alert reads it)."""
    check_worm_locked(get_settings())


@bp.route(route="v1/admin/retention/sweep", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def run_retention_sweep(req: func.HttpRequest) -> func.HttpResponse:
    """Run the sweep now (`?dryRun=true` evaluates only; `?maxDeletions=N` bounds it). 409 while one runs."""
    principal = authorize(req, RECORDER_ADMIN)
    report = api().sweep(principal, dict(req.params))
    return json_response(report, status=409 if report.outcome == "busy" else 200)


@bp.route(route="v1/retention/classes", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_retention_classes(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(api().classes(principal))


@bp.route(route="v1/retention/classes/{name}/extend", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def extend_retention_class(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    body = parse_json_body(req, RetentionClassExtension)
    return json_response(api().extend_class(principal, req.route_params["name"], body))


@bp.route(route="v1/retention/recordings/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def recording_retention(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(api().recording_status(principal, req.route_params["id"]))


@bp.route(route="v1/retention/recordings/{id}/extend", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def extend_recording_retention(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    body = parse_json_body(req, RecordingRetentionExtension)
    return json_response(api().extend_recording(principal, req.route_params["id"], body))


@bp.route(route="v1/retention/recordings/{id}/delete", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def delete_recording(req: func.HttpRequest) -> func.HttpResponse:
    """Delete one recording now; refused (409, with the reason) before its retention date or under a hold."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    body = parse_json_body(req, RecordingDeletionRequest)
    return json_response(api().delete_recording(principal, req.route_params["id"], body))


@bp.route(route="v1/retention/reports/expiring", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def expiring_report(req: func.HttpRequest) -> func.HttpResponse:
    """`?days=N` (default 30): what will expire in the next N days, per retention class."""
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(api().expiring(principal, dict(req.params)))


@bp.route(route="v1/retention/reports/holds", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def holds_report(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(api().held(principal))


@bp.route(route="v1/retention/reports/deletions", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def deletions_report(req: func.HttpRequest) -> func.HttpResponse:
    """`?from=&to=` (ISO instants) and `?period=day|month`: deletions per period, by class and reason."""
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(api().deletions(principal, dict(req.params)))
