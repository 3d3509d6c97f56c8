"""The OpenAPI 3.1 document of the compliance API (`GET /api/v1/openapi.json`), generated from the pydantic
contracts: the component schemas are the models' JSON Schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12),
the operations are listed in `OPERATIONS` next to the roles they require."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from verbatim import __version__
from verbatim.contracts.api import (
    AuditPage,
    LedgerPage,
    Problem,
    RecordingDetail,
    RecordingPage,
    ReportList,
    ReportRun,
    ReportView,
    VerdictPage,
)
from verbatim.contracts.callrecords import CallRecord, CallRecordPage
from verbatim.ledger.access import REASON_HEADER
from verbatim.platform.auth import COMPLIANCE_AUDITOR, COMPLIANCE_OFFICER, RECORDER_ADMIN

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query | path | header
    description: str
    required: bool = False
    enum: tuple[str, ...] = ()
    format: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below /api/v1
    operation_id: str
    summary: str
    roles: tuple[str, ...]
    response: type[BaseModel] | None
    params: tuple[Param, ...] = ()
    status: int = 200
    media: dict[str, str] = field(default_factory=dict)  # content types of a binary response
    reason_required: bool = False


_REASON = Param(REASON_HEADER, "header", "Why you read this (recorded in the ledger with the read).")
_REASON_REQUIRED = Param(REASON_HEADER, "header", "Why you replay this recording (required; in the ledger).", True)
_PAGING = (
    Param("limit", "query", "Page size, 1-200 (default 50)."),
    Param("continuation", "query", "The `continuation` of the previous page."),
)
_WINDOW = (
    Param("from", "query", "Start of the time range (ISO-8601, inclusive).", format="date-time"),
    Param("to", "query", "End of the time range (ISO-8601, exclusive).", format="date-time"),
)
_VERDICT = Param("verdict", "query", "Reconciliation verdict.", enum=("recorded", "partial", "missing", "pending"))
READERS = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/recordings",
        "searchRecordings",
        "Search recordings, newest first.",
        READERS,
        RecordingPage,
        (
            Param("participant", "query", "Any participant: Entra object id, UPN or phone number (E.164)."),
            Param("observedUser", "query", "The recorded policy user: object id or UPN."),
            *_WINDOW,
            Param("direction", "query", "From the observed user's side.", enum=("inbound", "outbound", "unknown")),
            Param("callType", "query", "Call type.", enum=("peerToPeer", "groupCall", "unknown")),
            Param("modality", "query", "A modality the call had (audio, video, screenSharing)."),
            _VERDICT,
            *_PAGING,
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/recordings/{id}",
        "getRecording",
        "A recording: metadata, participants, verdicts, sealed manifest and ledger proof.",
        READERS,
        RecordingDetail,
        (Param("id", "path", "Recording id.", True), _REASON),
    ),
    Operation(
        "get",
        "/recordings/{id}/media",
        "getRecordingMedia",
        "Stream the access copy (Opus) or, for auditors, the lossless evidence (FLAC); supports HTTP Range.",
        READERS,
        None,
        (
            Param("id", "path", "Recording id.", True),
            Param(
                "copy", "query", "`access` (default) or `evidence` (Compliance.Auditor).", enum=("access", "evidence")
            ),
            Param("Range", "header", "`bytes=<first>-[<last>]`; each response carries at most one chunk."),
            _REASON_REQUIRED,
        ),
        media={"audio/ogg": "access copy", "audio/flac": "lossless evidence"},
        reason_required=True,
    ),
    Operation(
        "get",
        "/verdicts",
        "searchVerdicts",
        "Reconciliation verdicts per (call, policy user), including calls that were not recorded.",
        READERS,
        VerdictPage,
        (
            *_WINDOW,
            Param("user", "query", "Policy user's object id."),
            _VERDICT,
            Param("callId", "query", "Call id."),
            *_PAGING,
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/reports/completeness",
        "listCompletenessReports",
        "The stored daily completeness reports.",
        (COMPLIANCE_AUDITOR,),
        ReportList,
        (_REASON,),
    ),
    Operation(
        "get",
        "/reports/completeness/{day}",
        "getCompletenessReport",
        "A day's newest completeness report, its signature check and ledger entry.",
        (COMPLIANCE_AUDITOR,),
        ReportView,
        (Param("day", "path", "UTC day (YYYY-MM-DD).", True, format="date"), _REASON),
    ),
    Operation(
        "get",
        "/ledger",
        "readLedger",
        "Ledger entries of a subject, or a range of sequence numbers, with the covering signed checkpoint.",
        (COMPLIANCE_AUDITOR,),
        LedgerPage,
        (
            Param("subject", "query", "`<type>:<id>`, e.g. `recording:<id>`."),
            Param("from", "query", "First sequence number."),
            Param("to", "query", "Last sequence number."),
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/audit",
        "readAudit",
        "Security events, access records and alerts of one UTC day, newest first.",
        (COMPLIANCE_AUDITOR,),
        AuditPage,
        (
            Param("day", "query", "UTC day (YYYY-MM-DD); default today.", format="date"),
            Param("category", "query", "Record category.", enum=("security", "access", "alert")),
            Param("action", "query", "e.g. `media.access`, `reconciliation.missing`."),
            Param("target", "query", "e.g. `recording:<id>`."),
            *_PAGING,
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/calls",
        "listCalls",
        "Normalised Teams call records (call-record API).",
        READERS,
        CallRecordPage,
        (*_WINDOW, Param("participant", "query", "Object id, phone number or identity key."), *_PAGING),
    ),
    Operation(
        "get",
        "/calls/{id}",
        "getCall",
        "One normalised Teams call record (call-record API).",
        READERS,
        CallRecord,
        (Param("id", "path", "Call record id.", True),),
    ),
    Operation(
        "post",
        "/admin/reports/completeness",
        "runCompletenessReport",
        "Write, sign and ledger a day's completeness report now.",
        (RECORDER_ADMIN,),
        ReportRun,
        (Param("day", "query", "UTC day (YYYY-MM-DD); default yesterday.", format="date"),),
        status=201,
    ),
)

MODELS: tuple[type[BaseModel], ...] = (
    RecordingPage,
    RecordingDetail,
    VerdictPage,
    ReportList,
    ReportView,
    LedgerPage,
    AuditPage,
    ReportRun,
    CallRecordPage,
    CallRecord,
    Problem,
)


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.format:
        schema["format"] = param.format
    return {
        "name": param.name,
        "in": param.where,
        "description": param.description,
        "required": param.required or param.where == "path",
        "schema": schema,
    }


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response is not None:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.response.__name__)}}},
        }
    else:
        binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        headers = {
            "Content-Range": {"schema": {"type": "string"}, "description": "bytes first-last/size"},
            "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
        }
        content = {kind: binary for kind in op.media}
        responses["200"] = {"description": "The whole object (small objects, no Range header).", "content": content}
        responses["206"] = {"description": "One bounded part.", "headers": headers, "content": content}
        responses["413"] = _problem("Too large to send whole: use Range requests.")
        responses["416"] = {
            "description": "Range not satisfiable.",
            "headers": {"Content-Range": headers["Content-Range"]},
        }
    responses["400"] = _problem("Invalid input" + (f" (e.g. no {REASON_HEADER} header)" if op.reason_required else ""))
    responses["401"] = _problem("No valid bearer token.")
    responses["403"] = _problem(f"Requires one of the roles {', '.join(op.roles)}.")
    if "{" in op.path:
        responses["404"] = _problem("Not found.")
    responses["503"] = _problem("A dependency is unavailable (the read could not be recorded, for instance).")
    return {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": f"Roles: {', '.join(op.roles)}. Every read is recorded in the ledger.",
        "security": [{"entra": list(op.roles)}],
        "parameters": [_parameter(p) for p in op.params],
        "responses": responses,
        "x-roles": list(op.roles),
    }


@lru_cache(maxsize=1)
def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    _, definitions = models_json_schema([(model, "serialization") for model in MODELS], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Verbatim compliance API",
            "version": __version__,
            "description": "Search, replay and prove Teams compliance recordings. Bearer tokens from Entra ID "
            "(the tenant's OpenID configuration); app roles Compliance.Officer, Compliance.Auditor, "
            "Recorder.Admin. Every read is recorded in the evidence ledger with who, what, when and the "
            f"`{REASON_HEADER}` header.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "entra": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An Entra ID access token for this API, with app roles in `roles`.",
                }
            },
        },
    }
