"""Policy automation triggers: validate, plan and publish a desired state (Recorder.Admin), read the last
coverage audit and a user's effective policy at a time, and the timer that audits coverage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, problem_responses
from verbatim.contracts.policy import CoverageReport
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, RECORDER_ADMIN
from verbatim.platform.errors import Conflict
from verbatim.platform.settings import get_settings
from verbatim.policy import api
from verbatim.policy.coverage import audit_once
from verbatim.policy.powershell import change_script
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
    answer = req.params.get("format")
    if answer == "text":
        return func.HttpResponse(render_plan(result, "request body"), mimetype="text/plain", charset="utf-8")
    if answer == "powershell":
        # The script that makes the plan's changes, as `verbatim policy script` writes it; downloaded, reviewed, run.
        return func.HttpResponse(
            change_script(result, "the desired state posted to /api/v1/policy/plan"),
            mimetype="text/plain",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="verbatim-policy-changes.ps1"'},
        )
    return json_response(result)


@bp.route(route="v1/policy/desired-state", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_desired_state(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, RECORDER_ADMIN)
    services = current()
    # Who must be recorded is data about people: the read is recorded first (issue 13, finding 4).
    services.access.record(principal, "policy.desired_state.read", "policy:desired-state", None, {})
    return json_response(api.published_request(services.policy.desired_states))


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
        subject=principal.subject,
    )
    return json_response(info)


@bp.route(route="v1/policy/coverage", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def last_coverage_report(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, RECORDER_ADMIN, COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER)
    services = current()
    return json_response(api.coverage_report(services.policy.coverage_states, services.access, principal))


@bp.route(route="v1/policy/coverage/audit", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def run_coverage_audit(req: func.HttpRequest) -> func.HttpResponse:
    """An admin re-runs the coverage audit now (the portal's button), under the same claim as the timer: one run
    at a time, and none within five minutes of the last (409 then, with when it last ran)."""
    principal = authorize(req, RECORDER_ADMIN)
    # The report names who must be recorded and is not, as GET v1/policy/coverage does: recorded first.
    current().access.record(principal, "policy.coverage.audit", "policy:coverage", None, {})
    report = _audit(datetime.now(UTC))
    if report is None:
        last = current().policy.coverage_states.load().last_run
        raise Conflict(
            f"a coverage audit is under way or ran moments ago (last run {last.isoformat() if last else 'never'}); "
            "audits are at least five minutes apart"
        )
    return json_response(report, status=201)


@bp.route(route="v1/policy/effective/{userId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def effective_policy_at(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, RECORDER_ADMIN, COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER)
    services = current()
    answer = api.effective_policy(
        services.policy_snapshots,
        services.access,
        principal,
        req.route_params["userId"],
        req.params.get("at"),
        datetime.now(UTC),
    )
    return json_response(answer)


def _audit(now: datetime) -> CoverageReport | None:
    """One audit unless another ran moments ago or is under way; verdicts waiting for a policy are decided after."""
    services = current()
    report = audit_once(services.policy.coverage_states, now, lambda: services.policy.coverage_audit(now))
    if report is not None:
        notify_policies_observed(report, services.reconciliation_requests)
    return report


@bp.timer_trigger(arg_name="timer", schedule="0 */15 * * * *", run_on_startup=True)
def audit_policy_coverage(timer: func.TimerRequest) -> None:
    """Every 15 minutes and at start-up: reconciliation needs each user's policy for the first calls after a
    deployment. Start-ups come with every scale-out and wake-up on Flex Consumption, so `audit_once` skips the
    run when an audit finished moments ago or is under way on another instance."""
    report = _audit(datetime.now(UTC))
    if report is None:
        log.info("policy coverage audit skipped: one ran moments ago or is under way")
        return
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
