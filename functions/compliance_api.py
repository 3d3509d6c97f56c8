"""The compliance API under /api/v1 (search, recording detail, media with Range, verdicts, completeness
reports, ledger, audit, the coverage list, OpenAPI) and the portal's static files under /api/portal. Triggers
authenticate, parse and delegate to verbatim.api; every read is recorded there."""

from __future__ import annotations

import json

import azure.durable_functions as df
import azure.functions as func

from functions.auth import authorize
from functions.http import (
    json_response,
    optional_reason,
    parse_json_body,
    problem,
    problem_responses,
    ranged_response,
    required_reason,
)
from verbatim.api import devlogin, static
from verbatim.api import portal as portal_settings
from verbatim.api.devlogin import DevLoginRequest
from verbatim.api.ledger import TLOG_PROOF_MEDIA_TYPE, parse_index, parse_size
from verbatim.api.openapi import openapi_document
from verbatim.api.service import MAX_PART, READERS, media_copy, search_query, verdict_query
from verbatim.contracts.api import Me
from verbatim.evidence.names import is_video_track
from verbatim.platform.auth import COMPLIANCE_AUDITOR
from verbatim.platform.errors import InvalidInput, NotFound
from verbatim.platform.inputs import bounded_int
from verbatim.platform.settings import get_settings
from verbatim.wiring import current

bp = df.Blueprint()


@bp.route(route="v1/recordings", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def search_recordings(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    page = current().compliance_api.search(search_query(dict(req.params)), principal, optional_reason(req))
    return json_response(page)


@bp.route(route="v1/recordings/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_recording(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(current().compliance_api.detail(req.route_params["id"], principal, optional_reason(req)))


@bp.route(route="v1/recordings/{id}/media", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_recording_media(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    copy = media_copy(req.params.get("copy"))
    raw_part = req.params.get("part")
    part = bounded_int(raw_part, "part", 0, MAX_PART) if raw_part else None
    stream = req.params.get("stream")
    if stream is not None and (copy != "video" or not is_video_track(stream)):
        raise InvalidInput("`stream` names a video stream (`screen-<id>` or `video-<id>`) of `copy=video`")
    answer = current().compliance_api.media(
        req.route_params["id"],
        copy,
        req.headers.get("range"),
        principal,
        required_reason(req),
        part=part,
        stream=stream,
    )
    return ranged_response(answer, "the object")


@bp.route(route="v1/verdicts", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def search_verdicts(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(
        current().compliance_api.verdict_page(verdict_query(dict(req.params)), principal, optional_reason(req))
    )


@bp.route(route="v1/reports/completeness", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def list_reports(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(current().compliance_api.reports(principal, optional_reason(req)))


@bp.route(route="v1/reports/completeness/{day}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_report(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(current().compliance_api.report(req.route_params["day"], principal, optional_reason(req)))


@bp.route(route="v1/ledger", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(current().ledger_api.page(dict(req.params), principal, optional_reason(req)))


def _note(note: bytes) -> func.HttpResponse:
    return func.HttpResponse(note, mimetype="text/plain", charset="utf-8", headers={"Cache-Control": "no-store"})


@bp.route(route="v1/ledger/checkpoint", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_checkpoint(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return _note(current().ledger_api.checkpoint(principal, optional_reason(req)))


@bp.route(route="v1/ledger/checkpoints/{size}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_checkpoint_of_size(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    size = parse_size(req.route_params["size"], "size")
    return _note(current().ledger_api.checkpoint(principal, optional_reason(req), size))


@bp.route(route="v1/ledger/entries/{index}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_entry(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(
        current().ledger_api.entry(parse_index(req.route_params["index"]), principal, optional_reason(req))
    )


@bp.route(route="v1/ledger/entries/{index}/proof", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_proof(req: func.HttpRequest) -> func.HttpResponse:
    """The C2SP tlog-proof file, or the same as JSON for `Accept: application/json`."""
    principal = authorize(req, COMPLIANCE_AUDITOR)
    index, tree_size = parse_index(req.route_params["index"]), parse_size(req.params.get("treeSize"))
    api = current().ledger_api
    if "application/json" in (req.headers.get("accept") or ""):
        return json_response(api.proof(index, tree_size, principal, optional_reason(req)))
    body = api.tlog_proof(index, tree_size, principal, optional_reason(req))
    return func.HttpResponse(body, mimetype=TLOG_PROOF_MEDIA_TYPE)


@bp.route(route="v1/ledger/consistency", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_consistency(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(current().ledger_api.consistency(dict(req.params), principal, optional_reason(req)))


@bp.route(route="v1/ledger/tile/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_ledger_tile(req: func.HttpRequest) -> func.HttpResponse:
    """Tiles are immutable: cacheable for as long as a client likes."""
    principal = authorize(req, COMPLIANCE_AUDITOR)
    body = current().ledger_api.tile("tile/" + req.route_params["path"], principal, optional_reason(req))
    return func.HttpResponse(
        body, mimetype="application/octet-stream", headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )


@bp.route(route="v1/audit", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def read_audit(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, COMPLIANCE_AUDITOR)
    return json_response(current().compliance_api.audit_page(dict(req.params), principal, optional_reason(req)))


@bp.route(route="v1/live", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def live_calls(req: func.HttpRequest) -> func.HttpResponse:
    principal = authorize(req, *READERS)
    return json_response(current().live_calls.page(dict(req.params), principal, optional_reason(req)))


@bp.route(route="v1/policy/coverage/users", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def coverage_users(req: func.HttpRequest) -> func.HttpResponse:
    """Every policy user of the last coverage audit, with whether their calls of the window were recorded."""
    principal = authorize(req, *READERS)
    services = current()
    report = services.policy.coverage_states.load().last_report
    if report is None:
        raise NotFound("no coverage audit has run yet")
    return json_response(
        services.compliance_api.coverage_users(report, dict(req.params), principal, optional_reason(req))
    )


@bp.route(route="v1/me", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def me(req: func.HttpRequest) -> func.HttpResponse:
    """Who the token names and its roles; the portal shows what they allow. Nothing is read, so nothing recorded."""
    principal = authorize(req)
    return json_response(
        Me(
            subject=principal.subject,
            name=principal.name,
            roles=sorted(principal.roles),
            application=principal.is_application,
        )
    )


@bp.route(route="v1/openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(openapi_document()), mimetype="application/json")


@bp.route(route="portal/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal(req: func.HttpRequest) -> func.HttpResponse:
    """The portal's files; nothing outside portal/ (see verbatim.api.static)."""
    path = req.route_params.get("path") or ""
    if not path and not req.url.split("?")[0].endswith("/"):
        return func.HttpResponse(status_code=308, headers={"Location": "/api/portal/"})
    settings = get_settings()
    if path == "config.json":
        response = json_response(portal_settings.portal_config(settings))
        response.headers["Cache-Control"] = "no-store"
        return response
    found = static.load(path, policy=portal_settings.content_security_policy(settings, path or "index.html"))
    if found is None:
        return problem(404, "Not found", "no such portal file")
    mimetype, _, charset = found.content_type.partition("; charset=")
    return func.HttpResponse(
        found.body, status_code=200, headers=found.headers, mimetype=mimetype, charset=charset or "utf-8"
    )


@bp.route(route="v1/dev/token", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def dev_token(req: func.HttpRequest) -> func.HttpResponse:
    """Local devstack only, to requests addressed to a loopback name: a signed user token from the simulator (else
    404, or 403 for another Host)."""
    devlogin.check_dev_login(get_settings(), req.headers.get("host"))
    body = parse_json_body(req, DevLoginRequest) if req.get_body() else DevLoginRequest()
    return json_response(devlogin.dev_token(get_settings(), body, req.headers.get("host")))
