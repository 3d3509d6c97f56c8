"""Legal holds through the API: Compliance.Officer places, lists, views and releases them (a release needs a
second, different officer's approval); Compliance.Auditor may list and view. The work is in
verbatim.retention.holds."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, parse_json_body, problem_responses
from functions.retention import api
from verbatim.contracts.retention import HoldReleaseBody, HoldRequest
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER

bp = df.Blueprint()


@bp.route(route="v1/holds", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def create_hold(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    return json_response(api().create_hold(principal, parse_json_body(req, HoldRequest)), status=201)


@bp.route(route="v1/holds", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_holds(req: func.HttpRequest) -> func.HttpResponse:
    """`?status=active|released` (default: all)."""
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(api().holds(principal, dict(req.params)))


@bp.route(route="v1/holds/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_hold(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(api().hold(principal, req.route_params["id"]))


@bp.route(route="v1/holds/{id}/recordings", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def hold_recordings(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(api().hold_recordings(principal, req.route_params["id"]))


@bp.route(route="v1/holds/{id}/release", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def request_hold_release(req: func.HttpRequest) -> func.HttpResponse:
    """First officer: ask for the release. The hold stays in force until another officer approves."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    body = parse_json_body(req, HoldReleaseBody)
    return json_response(api().request_release(principal, req.route_params["id"], body), status=202)


@bp.route(route="v1/holds/{id}/release/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def approve_hold_release(req: func.HttpRequest) -> func.HttpResponse:
    """Second, different officer: approve the release (403 for the officer who requested it)."""
    principal = authorize(req, COMPLIANCE_OFFICER)
    body = parse_json_body(req, HoldReleaseBody)
    return json_response(api().approve_release(principal, req.route_params["id"], body))
