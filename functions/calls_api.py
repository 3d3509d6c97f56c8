"""GET /api/v1/calls/{id} and GET /api/v1/calls?from=&to=&participant=: normalised call records for
Compliance.Officer and Compliance.Auditor. Every read is recorded like every other `/api/v1` read (an
`accessed` ledger entry and an `access` audit record; `X-Access-Reason` is optional here)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, optional_reason, problem_responses
from verbatim.callrecords.reads import CallRecordReader, ListParameters
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER
from verbatim.wiring import current

bp = df.Blueprint()


def _reader() -> CallRecordReader:
    return current().callrecords.reader


@bp.route(route="v1/calls/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_call(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(_reader().get(req.route_params["id"], principal, optional_reason(req)))


@bp.route(route="v1/calls", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_calls(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)
    return json_response(_reader().list(ListParameters.parse(dict(req.params)), principal, optional_reason(req)))
