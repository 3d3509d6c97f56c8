"""Data-subject requests (GDPR) for Compliance.Officer: search every recording and call record of a person
(export of the list with metadata) and answer an erasure request item by item. The work is in
verbatim.retention.subjects."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import json_response, parse_json_body, problem_responses
from functions.retention import api
from verbatim.contracts.retention import ErasureRequest, SubjectSearchRequest
from verbatim.platform.auth import COMPLIANCE_OFFICER

bp = df.Blueprint()


@bp.route(route="v1/data-subjects/search", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def search_data_subject(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    return json_response(api().search_subject(principal, parse_json_body(req, SubjectSearchRequest)))


@bp.route(route="v1/data-subjects/erasure", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def erase_data_subject(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_OFFICER)
    return json_response(api().erase_subject(principal, parse_json_body(req, ErasureRequest)))
