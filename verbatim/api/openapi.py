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
    CoverageUserPage,
    LivePage,
    Me,
    Problem,
    RecordingDetail,
    RecordingPage,
    ReportList,
    ReportRun,
    ReportView,
    VerdictPage,
)
from verbatim.contracts.callrecords import CallRecord, CallRecordPage
from verbatim.contracts.exports import ExportLink, ExportList, ExportRecord, ExportRequest, ExportView
from verbatim.contracts.ledger import LogConsistencyProof, LogEntry, LogInclusionProof, LogPage
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
    ranged: bool = True  # a binary response served in Range parts (media), or whole (ledger files)
    request: type[BaseModel] | None = None  # the JSON body


_REASON = Param(REASON_HEADER, "header", "Why you read this (recorded in the ledger with the read).")
_EXPORT_REASON = Param(REASON_HEADER, "header", "Why you export, download or delete (required; in the ledger).", True)
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
        "Stream the access copy (Opus), the video access copy (MP4: audio with the camera and screen-share streams) "
        "or, for auditors, the lossless evidence (FLAC); supports HTTP Range.",
        READERS,
        None,
        (
            Param("id", "path", "Recording id.", True),
            Param(
                "copy",
                "query",
                "`access` (default), `video` (recordings with video) or `evidence` (Compliance.Auditor).",
                enum=("access", "video", "evidence"),
            ),
            Param("Range", "header", "`bytes=<first>-[<last>]`; each response carries at most one chunk."),
            _REASON_REQUIRED,
        ),
        media={"audio/ogg": "access copy", "video/mp4": "video access copy", "audio/flac": "lossless evidence"},
        reason_required=True,
    ),
    Operation(
        "get",
        "/live",
        "listLiveCalls",
        "The calls being recorded now, each with its recorder's last heartbeat; `silent` after two missed intervals.",
        READERS,
        LivePage,
        (*_PAGING, _REASON),
    ),
    Operation(
        "get",
        "/policy/coverage/users",
        "listCoverageUsers",
        "Every policy user of the last coverage audit with whether their calls in the window were recorded.",
        READERS,
        CoverageUserPage,
        (
            *_WINDOW,
            Param(
                "state",
                "query",
                "Only users in this state.",
                enum=("recorded", "not_recorded", "no_calls", "pending", "excluded"),
            ),
            Param("user", "query", "An object id, or part of a UPN."),
            Param(
                "mustRecord",
                "query",
                "Only users in (true) or outside (false) must-record groups.",
                enum=("true", "false"),
            ),
            *_PAGING,
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/me",
        "getMe",
        "Who the bearer token names and its app roles (any valid token; nothing is read, nothing recorded).",
        (),
        Me,
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
        "Ledger entries of a subject (paged), or a range of entry indexes, with the latest signed checkpoint.",
        (COMPLIANCE_AUDITOR,),
        LogPage,
        (
            Param("subject", "query", "`<type>:<id>`, e.g. `recording:<id>`."),
            Param("after", "query", "With `subject`: the `nextAfter` of the previous page (an entry index)."),
            Param("limit", "query", "Entries per page, 1-200 (default 100)."),
            Param("from", "query", "Without `subject`: the first entry index."),
            Param("to", "query", "Without `subject`: the last entry index."),
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/ledger/checkpoint",
        "getLedgerCheckpoint",
        "The latest signed checkpoint of the ledger's log (a C2SP signed note).",
        (COMPLIANCE_AUDITOR,),
        None,
        (_REASON,),
        media={"text/plain; charset=utf-8": "C2SP tlog-checkpoint signed note"},
        ranged=False,
    ),
    Operation(
        "get",
        "/ledger/checkpoints/{size}",
        "getLedgerCheckpointOfSize",
        "The checkpoint signed at a tree size.",
        (COMPLIANCE_AUDITOR,),
        None,
        (Param("size", "path", "Tree size.", True), _REASON),
        media={"text/plain; charset=utf-8": "C2SP tlog-checkpoint signed note"},
        ranged=False,
    ),
    Operation(
        "get",
        "/ledger/entries/{index}",
        "getLedgerEntry",
        "One ledger entry by index.",
        (COMPLIANCE_AUDITOR,),
        LogEntry,
        (Param("index", "path", "Entry index (from 0).", True), _REASON),
    ),
    Operation(
        "get",
        "/ledger/entries/{index}/proof",
        "getLedgerInclusionProof",
        "Inclusion proof of an entry in a signed checkpoint: a C2SP tlog-proof, or JSON with Accept: application/json.",
        (COMPLIANCE_AUDITOR,),
        LogInclusionProof,
        (
            Param("index", "path", "Entry index (from 0).", True),
            Param("treeSize", "query", "Prove against the checkpoint of this size (default: the latest)."),
            _REASON,
        ),
        media={"application/x-tlog-proof": "C2SP tlog-proof (the entry, the proof, the signed checkpoint)"},
    ),
    Operation(
        "get",
        "/ledger/consistency",
        "getLedgerConsistencyProof",
        "Consistency proof between two tree sizes (`to` a signed checkpoint's size, default the latest).",
        (COMPLIANCE_AUDITOR,),
        LogConsistencyProof,
        (
            Param("from", "query", "The older tree size (1 or more).", True),
            Param("to", "query", "The newer tree size (a signed checkpoint's)."),
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/ledger/tile/{path}",
        "getLedgerTile",
        "A C2SP tlog-tiles tile or entry bundle (`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`), immutable.",
        (COMPLIANCE_AUDITOR,),
        None,
        (Param("path", "path", "The tile's path below `tile/` (it contains slashes).", True), _REASON),
        media={"application/octet-stream": "tile or entry bundle"},
        ranged=False,
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
        "/exports",
        "createExport",
        "Export recordings (by ids, a search filter or a legal hold) as a package anyone can verify offline; "
        "poll the Location for progress.",
        (COMPLIANCE_OFFICER,),
        ExportView,
        (_EXPORT_REASON,),
        status=202,
        reason_required=True,
        request=ExportRequest,
    ),
    Operation("get", "/exports", "listExports", "The newest exports first.", READERS, ExportList, (_REASON,)),
    Operation(
        "get",
        "/exports/{id}",
        "getExport",
        "An export's progress, result and download link.",
        READERS,
        ExportView,
        (Param("id", "path", "Export id.", True), _REASON),
    ),
    Operation(
        "get",
        "/exports/{id}/package",
        "downloadExport",
        "The package (ZIP64) in Range parts.",
        (COMPLIANCE_OFFICER,),
        None,
        (Param("id", "path", "Export id.", True), _EXPORT_REASON),
        media={"application/zip": "the export package"},
        reason_required=True,
    ),
    Operation(
        "post",
        "/exports/{id}/link",
        "linkExport",
        "A short-lived, read-only user-delegation SAS URL of the package, to download it straight from storage "
        "with Range requests (409 where the deployment reaches storage with a key).",
        (COMPLIANCE_OFFICER,),
        ExportLink,
        (Param("id", "path", "Export id.", True), _EXPORT_REASON),
        reason_required=True,
    ),
    Operation(
        "delete",
        "/exports/{id}",
        "deleteExport",
        "Delete an export's package now (its record and ledger entries stay).",
        (COMPLIANCE_OFFICER,),
        ExportRecord,
        (Param("id", "path", "Export id.", True), _EXPORT_REASON),
        reason_required=True,
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
    LogPage,
    LogEntry,
    LogInclusionProof,
    LogConsistencyProof,
    AuditPage,
    ReportRun,
    LivePage,
    CoverageUserPage,
    Me,
    CallRecordPage,
    CallRecord,
    ExportRequest,
    ExportView,
    ExportLink,
    ExportList,
    ExportRecord,
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
        content: dict[str, Any] = {"application/json": {"schema": {"$ref": REF.format(model=op.response.__name__)}}}
        for kind in op.media:
            content[kind] = {"schema": {"type": "string"}}
        responses[str(op.status)] = {"description": "OK", "content": content}
    elif not op.ranged:
        body = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        responses["200"] = {"description": "; ".join(op.media.values()), "content": {k: body for k in op.media}}
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
    if op.roles:
        responses["403"] = _problem(f"Requires one of the roles {', '.join(op.roles)}.")
    if "{" in op.path:
        responses["404"] = _problem("Not found.")
    responses["503"] = _problem("A dependency is unavailable (the read could not be recorded, for instance).")
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": f"Roles: {', '.join(op.roles)}. Every read is recorded in the ledger.",
        "security": [{"entra": list(op.roles)}],
        "parameters": [_parameter(p) for p in op.params],
        "responses": responses,
        "x-roles": list(op.roles),
    }
    if op.request is not None:
        schema = {"$ref": REF.format(model=op.request.__name__)}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return operation


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
