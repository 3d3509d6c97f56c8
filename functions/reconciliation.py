"""Reconciliation triggers: the `reconciliation-requests` queue (call-record versions and recordings that
reached a final state), the daily completeness-report timer, and their admin HTTP triggers
(Recorder.Admin). Triggers parse and delegate; the work is in verbatim.reconciliation."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, problem_responses
from verbatim.platform import layout
from verbatim.platform.auth import RECORDER_ADMIN
from verbatim.platform.times import utcnow
from verbatim.reconciliation.report import parse_day, report_day
from verbatim.reconciliation.service import parse_request, reevaluate_for_admin
from verbatim.wiring import current

bp = df.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=layout.RECONCILIATION_REQUESTS_QUEUE, connection="AzureWebJobsStorage")
def reconcile(msg: func.QueueMessage) -> None:
    """Concurrent invocations share one batch of reads (verbatim.reconciliation.batching); this one returns once
    its own request is handled, and raises its own failure."""
    current().reconciliation.batcher.handle(parse_request(msg.get_body()))


@bp.timer_trigger(arg_name="timer", schedule="0 0 3 * * *")
def completeness_report(timer: func.TimerRequest) -> None:
    """Yesterday's (UTC) completeness report, at 03:00 UTC: call records arrive up to 150 minutes after a call."""
    current().reconciliation.reporter.run(report_day(utcnow()))


@bp.route(route="v1/admin/reports/completeness", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def run_completeness_report(req: func.HttpRequest) -> func.HttpResponse:
    """Write the report of `?day=YYYY-MM-DD` now (default: yesterday, UTC)."""
    principal = authorize(req, RECORDER_ADMIN)
    day = parse_day(req.params["day"]) if req.params.get("day") else report_day(utcnow())
    run = current().reconciliation.reporter.run(day, actor=principal.subject)
    return json_response(run, status=201)


@bp.route(route="v1/admin/reconciliation/calls/{id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def reevaluate_call(req: func.HttpRequest) -> func.HttpResponse:
    """Re-evaluate the verdicts of one call now (after fixing a policy snapshot, for instance): counts and states
    only (Recorder.Admin never sees who was in a call)."""
    principal = authorize(req, RECORDER_ADMIN)
    services = current()
    body = reevaluate_for_admin(services.reconciliation.reconciler, services.access, principal, req.route_params["id"])
    return json_response(body, status=200 if body.found else 404)
