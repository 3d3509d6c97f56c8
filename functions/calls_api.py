"""GET /api/v1/calls/{id} and GET /api/v1/calls?from=&to=&participant=: normalised call records for
Compliance.Officer and Compliance.Auditor; every read is audited."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, problem_responses
from verbatim.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER
from verbatim.callrecords.reads import ListParameters
from verbatim.callrecords.runtime import callrecords_runtime
from verbatim.settings import get_settings

bp = df.Blueprint()


@bp.route(route="v1/calls/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_call(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    record = callrecords_runtime(get_settings()).reader.get(req.route_params["id"], principal)
    return json_response(record)


@bp.route(route="v1/calls", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_calls(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    page = callrecords_runtime(get_settings()).reader.list(ListParameters.parse(dict(req.params)), principal)
    return json_response(page)
