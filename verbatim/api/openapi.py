"""The OpenAPI 3.1 document of every `/api/v1` route (`GET /api/v1/openapi.json`), generated from the pydantic
contracts the triggers read and answer with: the component schemas are the models' JSON Schemas (OpenAPI 3.1
schemas are JSON Schema 2020-12), the operations are listed in `OPERATIONS` next to the roles they require, and
each lists the problem statuses it can answer. tests/security/test_openapi.py holds the document to the routes
function_app.py registers; the fuzz run (Schemathesis) holds the answers to the document."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from verbatim import __version__
from verbatim.api.chats import RecordingChat
from verbatim.api.devlogin import DevLoginRequest, DevLoginToken
from verbatim.contracts.api import (
    AuditPage,
    BackfillRequest,
    BackfillRun,
    ChatBackfillBody,
    ChatBackfillRun,
    ChatSealRun,
    ChatVerificationView,
    CoverageUserPage,
    LivePage,
    Me,
    Problem,
    PstnPullRequest,
    PstnPullRun,
    RecordingDetail,
    RecordingPage,
    ReevaluationSummary,
    ReportList,
    ReportRun,
    ReportView,
    SubscriptionRun,
    VerdictPage,
)
from verbatim.contracts.callrecords import CallRecord, CallRecordPage
from verbatim.contracts.chat import ChatDetail, ChatPage, ChatSearchPage
from verbatim.contracts.exports import ExportLink, ExportList, ExportObjects, ExportRecord, ExportRequest, ExportView
from verbatim.contracts.ledger import LogConsistencyProof, LogEntry, LogInclusionProof, LogPage
from verbatim.contracts.policy import (
    CoverageReport,
    EffectivePolicyAt,
    PolicyPlan,
    PolicyPlanRequest,
    PolicyValidationReport,
    PublishedDesiredStateInfo,
    PublishedDesiredStateView,
)
from verbatim.contracts.retention import (
    DeletionsReport,
    ErasureRequest,
    ErasureResult,
    ExpiringReport,
    ExtensionResult,
    HoldList,
    HoldRecordings,
    HoldReleaseBody,
    HoldRequest,
    HoldResult,
    HoldsReport,
    RecordingDeletionRequest,
    RecordingRetentionExtension,
    RetentionClassExtension,
    RetentionClassList,
    RetentionStatus,
    SubjectSearchRequest,
    SubjectSearchResult,
    SweepReport,
)
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
    pattern: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below /api/v1
    operation_id: str
    summary: str
    roles: tuple[str, ...]  # empty: anonymous
    response: type[BaseModel] | None
    params: tuple[Param, ...] = ()
    status: int = 200
    media: dict[str, str] = field(default_factory=dict)  # content types of a binary response
    reason_required: bool = False
    ranged: bool = True  # a binary response served in Range parts (media), or whole (ledger files)
    body: type[BaseModel] | None = None
    body_required: bool = True
    # Problem statuses beyond the ones every operation can answer (400, 401, 403, 413, 415, 503; 404 with a path id).
    problems: tuple[int, ...] = ()
    # More success answers: status -> description (a body of `response` unless `empty`).
    also: dict[int, str] = field(default_factory=dict)
    empty: bool = False  # the success answer has no body
    token: bool = False  # no role needed, but a valid token is (401 without)
    policy_body: bool = False  # a desired state: YAML text, or JSON


_REASON = Param(REASON_HEADER, "header", "Why you read this (recorded in the ledger with the read).")
_REASON_REQUIRED = Param(REASON_HEADER, "header", "Why you replay this recording (required; in the ledger).", True)
_EXPORT_REASON = Param(REASON_HEADER, "header", "Why you export, download or delete (required; in the ledger).", True)
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

_ID = Param("id", "path", "Recording id.", True)
_HOLD = Param("id", "path", "Legal hold id.", True)
ALL_ROLES = (COMPLIANCE_OFFICER, COMPLIANCE_AUDITOR, RECORDER_ADMIN)

OPERATIONS: tuple[Operation, ...] = (
    # --- recordings, verdicts, reports, ledger, audit -----------------------------------------------------------
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
        "A recording: metadata, participants, verdicts, sealed manifest, ledger proof and whether every sealed "
        "object is still what was sealed (`integrity`).",
        READERS,
        RecordingDetail,
        (_ID, _REASON),
    ),
    Operation(
        "get",
        "/recordings/{id}/media",
        "getRecordingMedia",
        "The access copy (Opus), the video access copy (MP4: audio with the camera and screen-share streams), the "
        "access copy of the recording's pair (`copy=pair`: the union of what both recorders of a 2N recording "
        "captured, as the `paired` ledger entry pinned it) or, for auditors, the lossless evidence (FLAC), exactly "
        "as sealed; HTTP Range. 409 when the sealed object is missing or changed (never served) or the recording's "
        "pair is not sealed yet, and 409 with Retry-After while the access copy is still being made (the evidence "
        "is sealed first, the access copy after it; `media.accessReady` says which); 404 for `copy=pair` on a "
        "recording that is not one of a pair.",
        READERS,
        None,
        (
            _ID,
            Param(
                "copy",
                "query",
                "`access` (default), `video` (recordings with video), `pair` (recordings of a sealed pair: the "
                "union of both recorders' coverage) or `evidence` (Compliance.Auditor).",
                enum=("access", "video", "pair", "evidence"),
            ),
            Param(
                "part",
                "query",
                "A recording sealed in parts: whose copy (default: the newest part's access copy, part 0's evidence); "
                "not with `copy=pair`.",
                pattern="^[0-9]{1,5}$",
            ),
            Param(
                "stream",
                "query",
                "With `copy=video`: one camera's or screen share's own MP4 copy (the call's audio with that stream "
                "alone; browsers play only an MP4's first video track), as listed in `media.videoStreams`; 404 for a "
                "stream the recording does not have.",
                pattern="^(video|screen)-[0-9]{1,10}$",
            ),
            Param("Range", "header", "`bytes=<first>-[<last>]`; each response carries at most one chunk."),
            _REASON_REQUIRED,
        ),
        media={"audio/ogg": "access copy", "video/mp4": "video access copy", "audio/flac": "lossless evidence"},
        reason_required=True,
        problems=(409,),
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
    # --- live calls, chats, exports, who am I --------------------------------------------------------------
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
        token=True,
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
        body=ExportRequest,
        problems=(404,),  # the legal hold it names does not exist
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
        "A short-lived read-only link to the package in storage (Azure; 409 where storage is reached with a key); "
        "recorded like a download.",
        (COMPLIANCE_OFFICER,),
        ExportLink,
        (Param("id", "path", "Export id.", True), _EXPORT_REASON),
        reason_required=True,
        problems=(409,),
    ),
    Operation(
        "get",
        "/exports/{id}/parts",
        "listExportParts",
        "What to download: the package, or the index (package-index.json), its signature and each part of a "
        "multi-part package, each with its size and its signed manifest's SHA-256.",
        READERS,
        ExportObjects,
        (Param("id", "path", "Export id.", True), _REASON),
        problems=(409,),
    ),
    Operation(
        "get",
        "/exports/{id}/parts/{name}",
        "downloadExportPart",
        "One object of the package (`part-0001.zip`, `package-index.json`, `package-index.sig`, or `package.zip`) "
        "in Range parts.",
        (COMPLIANCE_OFFICER,),
        None,
        (Param("id", "path", "Export id.", True), Param("name", "path", "Object name.", True), _EXPORT_REASON),
        media={
            "application/zip": "a part of the package (or the single package)",
            "application/json": "the package's index",
            "text/plain; charset=utf-8": "the index's signature (C2SP signed note)",
        },
        reason_required=True,
        problems=(409,),
    ),
    Operation(
        "post",
        "/exports/{id}/parts/{name}/link",
        "linkExportPart",
        "A short-lived read-only link to one object of the package in storage (Azure; 409 where storage is "
        "reached with a key); recorded like a download.",
        (COMPLIANCE_OFFICER,),
        ExportLink,
        (Param("id", "path", "Export id.", True), Param("name", "path", "Object name.", True), _EXPORT_REASON),
        reason_required=True,
        problems=(409,),
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
        "get",
        "/chats",
        "listChats",
        "Chats a participant took part in over a window (default the last 30 days), newest first.",
        READERS,
        ChatPage,
        (Param("participant", "query", "Entra object id or UPN."), *_WINDOW, *_PAGING, _REASON),
    ),
    Operation(
        "get",
        "/chat-search",
        "searchChats",
        "Chat messages by words (`terms`) or by a substring of their text.",
        READERS,
        ChatSearchPage,
        (
            Param("q", "query", "What to look for (1-256 characters).", True),
            Param("mode", "query", "`terms` (default) or `substring`.", enum=("terms", "substring")),
            Param("participant", "query", "Entra object id or UPN."),
            *_WINDOW,
            *_PAGING,
            _REASON,
        ),
    ),
    Operation(
        "get",
        "/chats/{id}",
        "getChat",
        "A chat: its participants and every version of every message captured.",
        READERS,
        ChatDetail,
        (Param("id", "path", "Chat (thread) id.", True), _REASON),
    ),
    Operation(
        "get",
        "/chats/{id}/verification",
        "verifyChat",
        "Whether the chat's sealed bundles are intact, in the ledger and anchored.",
        READERS,
        ChatVerificationView,
        (Param("id", "path", "Chat (thread) id.", True), _REASON),
    ),
    Operation(
        "get",
        "/recordings/{id}/chat",
        "getRecordingChat",
        "The meeting chat beside a recording (none when the call had no chat).",
        READERS,
        RecordingChat,
        (_ID, _REASON),
    ),
    # --- call records ---------------------------------------------------------------------------------------
    Operation(
        "get",
        "/calls",
        "listCalls",
        "Normalised Teams call records (call-record API).",
        READERS,
        CallRecordPage,
        (*_WINDOW, Param("participant", "query", "Object id, phone number or identity key."), *_PAGING, _REASON),
    ),
    Operation(
        "get",
        "/calls/{id}",
        "getCall",
        "One normalised Teams call record (call-record API).",
        READERS,
        CallRecord,
        (Param("id", "path", "Call record id.", True), _REASON),
    ),
    # --- legal holds ----------------------------------------------------------------------------------------
    Operation(
        "post",
        "/holds",
        "createHold",
        "Place a legal hold on the recordings of custodians (in a time range, narrowed by a query).",
        (COMPLIANCE_OFFICER,),
        HoldResult,
        body=HoldRequest,
        status=201,
        problems=(409,),
    ),
    Operation(
        "get",
        "/holds",
        "listHolds",
        "Legal holds, all or by status.",
        READERS,
        HoldList,
        (Param("status", "query", "Only holds in this state.", enum=("active", "released")),),
    ),
    Operation("get", "/holds/{id}", "getHold", "One legal hold.", READERS, HoldResult, (_HOLD,)),
    Operation(
        "get",
        "/holds/{id}/recordings",
        "getHoldRecordings",
        "The recordings a legal hold keeps.",
        READERS,
        HoldRecordings,
        (_HOLD,),
    ),
    Operation(
        "post",
        "/holds/{id}/release",
        "requestHoldRelease",
        "First officer (a person's delegated sign-in): ask for the release; the hold stays until another approves.",
        (COMPLIANCE_OFFICER,),
        HoldResult,
        (_HOLD,),
        body=HoldReleaseBody,
        status=202,
        problems=(409,),
    ),
    Operation(
        "post",
        "/holds/{id}/release/approve",
        "approveHoldRelease",
        "Second, different officer (a person's delegated sign-in): approve the release.",
        (COMPLIANCE_OFFICER,),
        HoldResult,
        (_HOLD,),
        body=HoldReleaseBody,
        problems=(409,),
    ),
    # --- data subjects --------------------------------------------------------------------------------------
    Operation(
        "post",
        "/data-subjects/search",
        "searchDataSubject",
        "Every recording and call record of one person (a data-subject access request).",
        (COMPLIANCE_OFFICER,),
        SubjectSearchResult,
        body=SubjectSearchRequest,
    ),
    Operation(
        "post",
        "/data-subjects/erasure",
        "eraseDataSubject",
        "Erase what may be erased of one person; what retention or a hold keeps is answered with why.",
        (COMPLIANCE_OFFICER,),
        ErasureResult,
        body=ErasureRequest,
        problems=(409,),
    ),
    # --- retention ------------------------------------------------------------------------------------------
    Operation(
        "get", "/retention/classes", "listRetentionClasses", "Retention classes in force.", READERS, RetentionClassList
    ),
    Operation(
        "post",
        "/retention/classes/{name}/extend",
        "extendRetentionClass",
        "Lengthen a retention class (never shortened).",
        (COMPLIANCE_OFFICER,),
        ExtensionResult,
        (Param("name", "path", "Retention class name.", True),),
        body=RetentionClassExtension,
        problems=(409,),
    ),
    Operation(
        "get",
        "/retention/recordings/{id}",
        "getRetentionStatus",
        "A recording's retention date, holds and deletion state.",
        READERS,
        RetentionStatus,
        (_ID,),
    ),
    Operation(
        "post",
        "/retention/recordings/{id}/extend",
        "extendRecordingRetention",
        "Keep one recording longer.",
        (COMPLIANCE_OFFICER,),
        ExtensionResult,
        (_ID,),
        body=RecordingRetentionExtension,
        problems=(409,),
    ),
    Operation(
        "post",
        "/retention/recordings/{id}/delete",
        "deleteRecording",
        "Delete one recording now: only after its retention date and with no hold (409 with why otherwise).",
        (COMPLIANCE_OFFICER,),
        RetentionStatus,
        (_ID,),
        body=RecordingDeletionRequest,
        problems=(409,),
    ),
    Operation(
        "get",
        "/retention/reports/expiring",
        "reportExpiring",
        "Recordings whose retention ends within `days`, by class.",
        (COMPLIANCE_AUDITOR,),
        ExpiringReport,
        (Param("days", "query", "1-3660 (default 30)."),),
    ),
    Operation(
        "get",
        "/retention/reports/holds",
        "reportHolds",
        "Active legal holds by matter.",
        (COMPLIANCE_AUDITOR,),
        HoldsReport,
    ),
    Operation(
        "get",
        "/retention/reports/deletions",
        "reportDeletions",
        "Deletions per day or month.",
        (COMPLIANCE_AUDITOR,),
        DeletionsReport,
        (
            *_WINDOW,
            Param("period", "query", "Bucket size.", enum=("day", "month")),
        ),
    ),
    # --- recording policies ---------------------------------------------------------------------------------
    Operation(
        "post",
        "/policy/validate",
        "validateDesiredState",
        "Validate a desired state (YAML, or JSON); findings with line and column.",
        (RECORDER_ADMIN,),
        PolicyValidationReport,
        policy_body=True,
    ),
    Operation(
        "post",
        "/policy/plan",
        "planDesiredState",
        "What publishing a desired state would change, against the current state in the body or the simulator's.",
        (RECORDER_ADMIN,),
        PolicyPlan,
        (Param("format", "query", "`text` for the plan as text/plain.", enum=("json", "text")),),
        policy_body=True,
    ),
    Operation(
        "put",
        "/policy/desired-state",
        "publishDesiredState",
        "Publish a validated desired state (the coverage audit works with it; in the ledger).",
        (RECORDER_ADMIN,),
        PublishedDesiredStateInfo,
        policy_body=True,
    ),
    Operation(
        "get",
        "/policy/coverage",
        "getPolicyCoverage",
        "The last coverage audit: who must be recorded and is not.",
        ALL_ROLES,
        CoverageReport,
        problems=(404,),
    ),
    Operation(
        "get",
        "/policy/effective/{userId}",
        "getEffectivePolicy",
        "Which recording policy applied to a user at a time.",
        ALL_ROLES,
        EffectivePolicyAt,
        (
            Param("userId", "path", "Entra object id.", True),
            Param("at", "query", "ISO-8601 time with a zone (default now).", format="date-time"),
        ),
    ),
    Operation(
        "get",
        "/policy/desired-state",
        "getDesiredState",
        "The published desired state (who must be recorded, with which policy); the read is recorded.",
        (RECORDER_ADMIN,),
        PublishedDesiredStateView,
        problems=(404,),
    ),
    Operation(
        "post",
        "/policy/coverage/audit",
        "runCoverageAudit",
        "Run the coverage audit now (at most one every five minutes: 409 with when it last ran).",
        (RECORDER_ADMIN,),
        CoverageReport,
        status=201,
        problems=(409,),
    ),
    # --- operations (Recorder.Admin: counts and states, never who) ----------------------------------------
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
    Operation(
        "post",
        "/admin/reconciliation/calls/{id}",
        "reevaluateCall",
        "Re-evaluate one call's verdicts now; answers counts and states only.",
        (RECORDER_ADMIN,),
        ReevaluationSummary,
        (Param("id", "path", "Call (chain) id.", True),),
        also={404: "No call record of that id (the same body, `found` false)."},
    ),
    Operation(
        "post",
        "/admin/retention/sweep",
        "runRetentionSweep",
        "Run the retention sweep now (409 while one runs).",
        (RECORDER_ADMIN,),
        SweepReport,
        (
            Param("dryRun", "query", "Evaluate only.", enum=("true", "false")),
            Param("maxDeletions", "query", "At most this many deletions."),
        ),
        also={409: "A sweep is already running (the same body, outcome `busy`)."},
    ),
    Operation(
        "post",
        "/admin/callrecords/backfill",
        "backfillCallRecords",
        "List call records Graph holds (since the watermark, or `since`) and fetch the missing ones.",
        (RECORDER_ADMIN,),
        BackfillRun,
        body=BackfillRequest,
        body_required=False,
    ),
    Operation(
        "post",
        "/admin/callrecords/subscriptions",
        "ensureCallRecordSubscriptions",
        "Create, renew or recreate the Graph callRecords subscriptions now.",
        (RECORDER_ADMIN,),
        SubscriptionRun,
    ),
    Operation(
        "post",
        "/admin/pstn/pull",
        "pullPstnReports",
        "Pull the PSTN and Direct Routing reports of a time range now.",
        (RECORDER_ADMIN,),
        PstnPullRun,
        body=PstnPullRequest,
    ),
    Operation(
        "post",
        "/admin/chat/subscriptions",
        "ensureChatSubscriptions",
        "Create, renew or recreate the Graph chat-message subscriptions now.",
        (RECORDER_ADMIN,),
        SubscriptionRun,
        problems=(409,),
    ),
    Operation(
        "post",
        "/admin/chat/backfill",
        "backfillChats",
        "Export the chats of a window again through Graph's export API and store what is missing.",
        (RECORDER_ADMIN,),
        ChatBackfillRun,
        body=ChatBackfillBody,
        body_required=False,
        problems=(409,),
    ),
    Operation(
        "post",
        "/admin/chat/seal",
        "sealChatDays",
        "Seal every chat-day that is due now.",
        (RECORDER_ADMIN,),
        ChatSealRun,
        problems=(409,),
    ),
    # --- the document itself and the local stack's dev token ---------------------------------------------
    Operation("get", "/openapi.json", "getOpenApi", "This document.", (), None, media={"application/json": "OpenAPI"}),
    Operation(
        "post",
        "/dev/token",
        "devToken",
        "Local devstack only (404 elsewhere, 403 unless addressed to a loopback name): a signed user token from "
        "the Teams/Graph simulator with the chosen roles.",
        (),
        DevLoginToken,
        body=DevLoginRequest,
        body_required=False,
        problems=(404,),
    ),
)

_USED = dict.fromkeys(model for op in OPERATIONS for model in (op.response, op.body) if model is not None)
MODELS: tuple[type[BaseModel], ...] = (*_USED, Problem, PolicyPlanRequest)


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.format:
        schema["format"] = param.format
    if param.pattern:
        schema["pattern"] = param.pattern
    return {
        "name": param.name,
        "in": param.where,
        "description": param.description,
        "required": param.required or param.where == "path",
        "schema": schema,
    }


PROBLEM_STATUSES = {
    400: "Invalid input: what is wrong with it.",
    401: "No valid bearer token (or not an access token of a tenant this API serves).",
    403: "The token lacks the role (or, for a hold release, is not a person's sign-in).",
    404: "Not found.",
    409: "In conflict with the state of the resource (a hold, retention, a sweep, or evidence not as sealed).",
    413: "Too large.",
    415: "Unsupported content type.",
    503: "A dependency is unavailable (a read that cannot be recorded is refused).",
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _request_body(op: Operation) -> dict[str, Any] | None:
    if op.policy_body:
        return {
            "required": True,
            "description": "A desired state as YAML, or as JSON (the state itself, or `PolicyPlanRequest` with the "
            "current state the export script wrote).",
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {"anyOf": [{"$ref": REF.format(model="PolicyPlanRequest")}, {"type": "object"}]}
                },
            },
        }
    if op.body is None:
        return None
    return {"required": op.body_required, "content": _json(op.body)}


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.empty:
        responses[str(op.status)] = {"description": "OK, no body."}
    elif op.response is not None:
        responses[str(op.status)] = {"description": "OK", "content": _json(op.response)}
        for kind in op.media:
            responses[str(op.status)]["content"][kind] = {"schema": {"type": "string"}}
        for status, description in op.also.items():
            responses[str(status)] = {"description": description, "content": _json(op.response)}
        if op.operation_id == "planDesiredState":
            responses["200"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    elif not op.ranged:
        whole = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        responses["200"] = {"description": "; ".join(op.media.values()), "content": {k: whole for k in op.media}}
    elif op.reason_required:
        binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        headers = {
            "Content-Range": {"schema": {"type": "string"}, "description": "bytes first-last/size"},
            "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
        }
        content = {kind: binary for kind in op.media}
        responses["200"] = {"description": "The whole object (small objects, no Range header).", "content": content}
        responses["206"] = {"description": "One bounded part.", "headers": headers, "content": content}
        responses["416"] = {
            "description": "Range not satisfiable.",
            "headers": {"Content-Range": headers["Content-Range"]},
            "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
        }
    else:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {kind: {"schema": {"type": "object"}} for kind in op.media},
        }
    statuses = {400, 413, 415, 503, *op.problems}
    if op.roles:
        statuses |= {401, 403}
    if op.token:
        statuses.add(401)
    if "{" in op.path:
        statuses.add(404)
    if op.operation_id == "devToken":
        statuses.add(403)
    for status in sorted(statuses):
        if str(status) not in responses:
            detail = PROBLEM_STATUSES[status]
            if status == 400 and op.reason_required:
                detail += f" (e.g. no {REASON_HEADER} header)"
            if status == 403 and op.roles:
                detail = f"Requires one of the roles {', '.join(op.roles)}. " + detail
            responses[str(status)] = _problem(detail)
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "parameters": [_parameter(p) for p in op.params],
        "responses": responses,
    }
    if op.roles:
        operation["description"] = f"Roles: {', '.join(op.roles)}. Every read is recorded in the ledger."
        operation["security"] = [{"entra": list(op.roles)}]
        operation["x-roles"] = list(op.roles)
    elif op.token:
        operation["description"] = "Any valid access token of this API; nothing is read, so nothing is recorded."
        operation["security"] = [{"entra": []}]
    else:
        operation["description"] = "Anonymous."
        operation["security"] = []
    body = _request_body(op)
    if body is not None:
        operation["requestBody"] = body
    return operation


@lru_cache(maxsize=1)
def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    bodies = {op.body for op in OPERATIONS if op.body is not None} | {PolicyPlanRequest}
    _, definitions = models_json_schema(
        [(model, "validation" if model in bodies else "serialization") for model in MODELS], ref_template=REF
    )
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
