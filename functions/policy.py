"""Policy automation triggers: validate, plan and publish a desired state (Recorder.Admin), read the last
coverage audit and a user's effective policy at a time, and the timer that audits coverage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, problem_responses
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, RECORDER_ADMIN
from verbatim.platform.errors import NotFound
from verbatim.platform.settings import get_settings
from verbatim.policy import api
from verbatim.policy.coverage import audit_once
from verbatim.policy.render import render_plan
from verbatim.reconciliation.hooks import notify_policies_observed
from verbatim.wiring import current

log = logging.getLogger(__name__)
bp = df.Blueprint()


@bp.route(route="v1/policy/validate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def validate_desired_state(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    return json_response(api.validate_request(req.headers.get("content-type"), req.get_body()))


@bp.route(route="v1/policy/plan", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def plan_desired_state(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN)
    result = api.plan_request(req.headers.get("content-type"), req.get_body(), get_settings().policy_simulator_url)
    if req.params.get("format") == "text":
        return func.HttpResponse(render_plan(result, "request body"), mimetype="text/plain", charset="utf-8")
    return json_response(result)


@bp.route(route="v1/policy/desired-state", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def publish_desired_state(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, RECORDER_ADMIN)
    services = current()
    info = api.publish_request(
        req.headers.get("content-type"),
        req.get_body(),
        services.policy.desired_states,
        actor=principal.name or principal.subject,
        now=datetime.now(UTC),
        ledger=services.ledger,
    )
    return json_response(info)


@bp.route(route="v1/policy/coverage", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def last_coverage_report(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN, COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER)
    state = current().policy.coverage_states.load()
    if state.last_report is None:
        raise NotFound("no coverage audit has run yet")
    return json_response(state.last_report)


@bp.route(route="v1/policy/effective/{userId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def effective_policy_at(req: func.HttpRequest) -> func.HttpResponse:
    authorize(req, RECORDER_ADMIN, COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER)
    answer = api.effective_at_request(
        current().policy_snapshots, req.route_params["userId"], req.params.get("at"), datetime.now(UTC)
    )
    return json_response(answer)


@bp.timer_trigger(arg_name="timer", schedule="0 */15 * * * *", run_on_startup=True)
def audit_policy_coverage(timer: func.TimerRequest) -> None:
    """Every 15 minutes and at start-up: reconciliation needs each user's policy for the first calls after a
    deployment. Start-ups come with every scale-out and wake-up on Flex Consumption, so `audit_once` skips the
    run when an audit finished moments ago or is under way on another instance."""
    services, now = current(), datetime.now(UTC)
    report = audit_once(services.policy.coverage_states, now, lambda: services.policy.coverage_audit(now))
    if report is None:
        log.info("policy coverage audit skipped: one ran moments ago or is under way")
        return
    # Verdicts waiting for a user's policy can be decided now.
    notify_policies_observed(report, services.reconciliation_requests)
    log.info(
        "policy coverage audited",
        extra={
            "must_record_users": report.must_record_users,
            "recorded_users": report.recorded_users,
            "findings": len(report.findings),
            "new_findings": len(report.new_findings),
            "snapshots_written": report.snapshots_written,
        },
    )
