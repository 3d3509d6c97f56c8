"""Compliance API contracts (`/api/v1`): search results, recording detail, verdict and report pages, audit and
ledger pages. The OpenAPI document at `/api/v1/openapi.json` is generated from these models.

camelCase on the wire, like the call-record API beside it. Times are canonical UTC strings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from verbatim.contracts import Contract, contract
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.evidence import AccessCopyManifest, RecordingManifest
from verbatim.contracts.ledger import LogEntry, LogInclusionProof
from verbatim.contracts.reconciliation import CompletenessReport, Verdict, VerdictReason, VerdictState

MediaCopy = Literal["access", "evidence", "video", "pair"]


class ParticipantView(CamelContract):
    """A participant of a recorded call, as the recorder saw it."""

    kind: str
    id: str | None = None
    display_name: str | None = None
    user_principal_name: str | None = None
    phone_number: str | None = None
    is_recorder: bool = False


class ObservedUserView(CamelContract):
    id: str | None = None
    user_principal_name: str | None = None
    display_name: str | None = None


@contract("api.recording-summary", 1)
class RecordingSummary(CamelContract):
    """One recording as search returns it (and as the search index stores it, in Cosmos `recording_index`)."""

    id: str
    call_id: str
    call_chain_id: str | None = None
    tenant_id: str | None = None
    observed_user: ObservedUserView = Field(default_factory=ObservedUserView)
    participants: list[ParticipantView] = Field(default_factory=list)
    direction: str = "unknown"
    call_type: str = "unknown"
    modalities: list[str] = Field(default_factory=list)
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    status: str
    interrupted: bool = False
    has_access_copy: bool = False
    verdict: VerdictState | None = Field(default=None, description="the observed user's verdict for this call")
    verdict_reason: VerdictReason | None = None
    coverage: float | None = None
    retention_until: str | None = None
    legal_holds: list[str] = Field(default_factory=list)
    sealed_at: str | None = None


@contract("api.recording-page", 1)
class RecordingPage(CamelContract):
    """A page of `GET /api/v1/recordings`: newest first; pass `continuation` back for the next page."""

    items: list[RecordingSummary]
    continuation: str | None = None


ProofStatus = Literal["proven", "awaiting_checkpoint", "not_sealed"]


class VideoStreamLink(CamelContract):
    """One video stream's own MP4 copy (the call's audio with that stream): what the player switches to."""

    track: str = Field(description="`screen-<source id>` (a screen share) or `video-<source id>` (a camera)")
    kind: Literal["camera", "screenShare"]
    source_id: int
    participant_id: str | None = None
    url: str


class MediaLinks(CamelContract):
    """Where to stream the recording (GET with `Authorization`, `X-Access-Reason` and `Range` headers)."""

    access: str | None = Field(default=None, description="the Opus access copy (Compliance.Officer, Auditor)")
    evidence: str | None = Field(default=None, description="the lossless FLAC evidence (Compliance.Auditor)")
    video: str | None = Field(
        default=None,
        description="the MP4 replay copy with the camera and screen-share streams (Compliance.Officer, Auditor)",
    )
    video_streams: list[VideoStreamLink] = Field(
        default_factory=list,
        description="each video stream's own MP4 copy with the audio, screen shares first (browsers play only the "
        "first video track of an MP4; the player switches between these)",
    )
    pair: str | None = Field(
        default=None,
        description="the Opus access copy of the pair's union: what both recorders of a 2N recording captured, each "
        "stretch from the recorder whose evidence holds it (Compliance.Officer, Auditor; docs/resilience.md)",
    )
    access_ready: bool = Field(
        default=True,
        description="false while the access copies are being made: the evidence is sealed (and the verdict decided "
        "from it) first, the access copies are sealed after it; until then `access` answers 409 with Retry-After",
    )


class PairMemberView(CamelContract):
    """One recording of the pair, as the sealed pair manifest names it."""

    recording_id: str
    recorder_instance: str
    this_recording: bool = False


class PairView(CamelContract):
    """The recording is one of a pair (ConcurrentInvitationCount 2 or a paired application: another recorder
    instance recorded the same call leg for the same policy user): the newest pair manifest sealed into its folder
    and pinned by a `paired` ledger entry about it, and the access copy of the pair's union when one was sealed."""

    pair_id: str
    members: list[PairMemberView]
    union_seconds: float = Field(description="the union of what the members' sealed evidence covers")
    manifest_blob: str
    manifest_sha256: str = Field(description="what the `paired` ledger entry pins")
    ledger_seq: int = Field(description="the `paired` entry about this recording")
    manifest_intact: bool = Field(description="the pair manifest read now hashes to what the ledger entry pins")
    access_copy: bool = Field(description="an access copy of the union was sealed beside the manifest (`media.pair`)")
    access_copy_sha256: str | None = None


class SealedPartDetail(CamelContract):
    """One sealed part of a recording sealed in parts (a continuation after a salvage)."""

    part: int
    manifest_blob: str
    manifest_sha256: str = Field(description="what the seal index kept; the ledger's sealed entry pins it too")
    manifest_matches_ledger: bool | None = None
    ledger_seq: int
    first_sample: int = Field(description="where the part starts in the recording (samples at its rate)")
    duration_seconds: float
    interrupted: bool
    manifest: RecordingManifest | None = None


@contract("api.recording-detail", 2)
class RecordingDetail(CamelContract):
    """`GET /api/v1/recordings/{id}`: metadata, participants, verdicts, the sealed manifest and the ledger
    proof that the manifest was sealed (inclusion up to a signed checkpoint). A recording sealed in parts (what
    its recorder captured after a salvage was sealed as a continuation) lists every part in `parts`; `manifest`
    is part 0's."""

    recording: RecordingSummary
    recorder_instance: str | None = None
    policy_identifier: str | None = None
    stop_reason: str | None = None
    failure_reason: str | None = None
    problems: list[str] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)
    manifest: RecordingManifest | None = None
    manifest_sha256: str | None = None
    # Part 0's access copies when they were sealed after its evidence (recording manifest v2), as sealed.
    access_manifest: AccessCopyManifest | None = None
    manifest_matches_ledger: bool | None = Field(
        default=None, description="the manifest read now hashes to what the ledger's sealed entry says"
    )
    # The `sealed` entry of the ledger (v2 log) and its inclusion proof in the latest signed checkpoint.
    sealed_entry: LogEntry | None = None
    proof: LogInclusionProof | None = None
    proof_status: ProofStatus
    integrity: Literal["intact", "tampered", "not_sealed"] = Field(
        default="not_sealed",
        description="every sealed object (manifest, evidence, access copy, capture manifest) read back by its sealed "
        "version and hashed: still what was sealed, or `tampered` with `integrityProblems` saying what is missing "
        "or changed",
    )
    integrity_problems: list[str] = Field(default_factory=list)
    media: MediaLinks = Field(default_factory=MediaLinks)
    parts: list[SealedPartDetail] = Field(default_factory=list)
    pair: PairView | None = Field(
        default=None, description="set when the recording is one of a sealed pair (2N recording: docs/resilience.md)"
    )


@contract("api.verdict-page", 1)
class VerdictPage(CamelContract):
    """A page of `GET /api/v1/verdicts`: calls of policy users with their verdicts, newest first."""

    items: list[Verdict]
    continuation: str | None = None


class ReportListItem(CamelContract):
    day: str
    blob: str
    generated_at: str | None = None


@contract("api.report-list", 1)
class ReportList(CamelContract):
    """`GET /api/v1/reports/completeness`: the stored completeness reports, newest day first."""

    items: list[ReportListItem]


@contract("api.report-view", 2)
class ReportView(CamelContract):
    """`GET /api/v1/reports/completeness/{day}`: the newest report of a day, where it is stored, whether its
    signature verifies with the ledger's key, and its ledger entry."""

    report: CompletenessReport
    blob: str
    signature_valid: bool
    ledger_entry: LogEntry | None = None


class AuditRecord(CamelContract):
    """A security event, access record or alert from Cosmos `audit`."""

    id: str
    day: str
    category: str
    action: str
    actor: str
    actor_name: str | None = None
    target: str | None = None
    at: str
    detail: dict[str, JsonValue] = Field(default_factory=dict)


@contract("api.audit-page", 1)
class AuditPage(CamelContract):
    items: list[AuditRecord]
    continuation: str | None = None


@contract("api.report-run", 1)
class ReportRun(CamelContract):
    """`POST /api/v1/reports/completeness`: what generating a day's report did."""

    day: str
    blob: str
    ledger_seq: int
    counts: dict[str, int]
    reevaluated_calls: int = 0


@contract("api.me", 1)
class Me(CamelContract):
    """`GET /api/v1/me`: who the bearer token names and the app roles it carries (the portal shows what they allow)."""

    subject: str
    name: str | None = None
    roles: list[str]
    application: bool = False


LiveState = Literal["capturing", "spilling", "silent"]


class LiveCall(CamelContract):
    """A call being recorded now: the recording's facts (from the recorder's events) and its last heartbeat (the
    recorder's progress record). `silent` when no heartbeat came for more than two heartbeat intervals."""

    recording_id: str
    call_id: str
    call_chain_id: str | None = None
    observed_user: ObservedUserView
    participants: list[ParticipantView]
    started_at: str | None = None
    recorder_instance: str
    modalities: list[str]
    state: LiveState
    last_heartbeat: str | None = None
    heartbeat_interval_seconds: float
    silent_for_seconds: float
    seconds_staged: float = 0.0
    blocks_spilled: int = 0


@contract("api.live-page", 1)
class LivePage(CamelContract):
    """`GET /api/v1/live`: the calls being recorded now, newest first, as of `checkedAt`."""

    checked_at: str
    items: list[LiveCall]
    continuation: str | None = None


UserCoverageState = Literal[
    "recorded",  # the policy records them and every call of the window that was decided was recorded
    "not_recorded",  # the policy does not record them, or a call of the window was not (fully) recorded
    "no_calls",  # the policy records them and no call of theirs started in the window
    "pending",  # their calls of the window are not decided yet (a recording is being sealed, say)
    "excluded",  # in a must-record group but excluded by jurisdiction (the desired state's exclusion policy)
]


class CallGap(CamelContract):
    """A call of the user's that was not fully recorded."""

    call_id: str
    call_start: str | None = None
    verdict: VerdictState
    reason: VerdictReason
    explained: bool = Field(description="no unrecorded conversation took place (the call was blocked, say)")
    missing_seconds: float = Field(ge=0)
    recording_ids: list[str] = Field(default_factory=list)


class LastRecording(CamelContract):
    """The newest recording of the user as observed user (whatever the window)."""

    recording_id: str
    call_id: str
    started_at: str | None = None
    status: str
    verdict: VerdictState | None = None


class UserCoverage(CamelContract):
    """One policy user: their effective policy as the last coverage audit read it, and what reconciliation found
    of their calls that started in the window."""

    user_id: str
    user_principal_name: str | None = None
    must_record: bool
    groups: list[str] = Field(default_factory=list)
    policy_name: str | None = None
    policy_source: str = "none"
    policy_records: bool
    strict: bool
    state: UserCoverageState
    why: str = Field(description="the state in words, for the officer")
    calls: int = Field(default=0, ge=0, description="calls of the window with a verdict for this user")
    recorded_calls: int = Field(default=0, ge=0)
    gap_calls: int = Field(default=0, ge=0, description="partial or missing, with an unrecorded conversation")
    explained_calls: int = Field(default=0, ge=0, description="partial or missing, with none (blocked calls)")
    pending_calls: int = Field(default=0, ge=0)
    missing_seconds: float = Field(default=0.0, ge=0, description="unrecorded presence over the window's calls")
    gaps: list[CallGap] = Field(default_factory=list, description="the window's gaps, newest first (at most 5)")
    last_recording: LastRecording | None = None


@contract("api.coverage-user-page", 1)
class CoverageUserPage(CamelContract):
    """`GET /api/v1/policy/coverage/users`: every policy user of the last coverage audit with the state of their
    recording over a window, by UPN; `counts` are per state over all of them, whatever the filters."""

    audited_at: str
    window_from: str
    window_to: str
    listed: bool = Field(description="False: the last audit only counted the users (re-run it to list them)")
    counts: dict[str, int] = Field(default_factory=dict)
    items: list[UserCoverage]
    continuation: str | None = None


class Problem(CamelContract):
    """An `application/problem+json` error body (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


# --- Recorder.Admin operations ------------------------------------------------------------------------------
# The admin runs answer their outcomes with the field names of the services' results (snake_case), as they
# always have; their request bodies are camelCase like every other body.


class ReevaluationSummary(CamelContract):
    """`POST /api/v1/admin/reconciliation/calls/{id}`: what re-evaluating a call did, without who was in it."""

    call_id: str
    found: bool
    changed: int
    verdicts: int = Field(description="how many verdicts the call has now")
    states: dict[str, int] = Field(default_factory=dict, description="verdicts per state")


class BackfillRequest(CamelContract):
    """`POST /api/v1/admin/callrecords/backfill`: list call records since `since` (default: the watermark)."""

    since: str | None = Field(default=None, max_length=40, description="ISO-8601 date or date-time")
    tenant_id: str | None = Field(default=None, max_length=64)


class PstnPullRequest(CamelContract):
    """`POST /api/v1/admin/pstn/pull`: pull the PSTN and Direct Routing reports of a time range."""

    start: str = Field(alias="from", max_length=40, description="ISO-8601 date or date-time")
    end: str = Field(alias="to", max_length=40, description="ISO-8601 date or date-time")
    tenant_id: str | None = Field(default=None, max_length=64)


class BackfillOutcome(Contract):
    tenant_id: str
    listed_from: str
    listed: int
    enqueued: int
    watermark: str


class PstnPullOutcome(Contract):
    tenant_id: str
    windows: int
    pstn_rows: int
    direct_routing_rows: int
    emergency_alerts: int


class SubscriptionOutcome(Contract):
    """What ensuring one tenant's Graph subscription did (call records or chat: one keeper)."""

    tenant_id: str
    action: str
    subscription_id: str
    expiration: str


class BackfillRun(Contract):
    results: list[BackfillOutcome]


class PstnPullRun(Contract):
    results: list[PstnPullOutcome]


class SubscriptionRun(Contract):
    results: list[SubscriptionOutcome]


class ChatBackfillBody(CamelContract):
    """`POST /api/v1/admin/chat/backfill`: export the chats of a window again (default: since the watermark)."""

    tenant_id: str | None = Field(default=None, max_length=64)
    since: str | None = Field(default=None, max_length=40, description="ISO-8601 date-time")
    until: str | None = Field(default=None, max_length=40, description="ISO-8601 date-time")
    user_ids: list[str] = Field(default_factory=list, max_length=10_000)


class ChatBackfillOutcome(Contract):
    tenant_id: str
    reason: str
    since: str
    until: str
    users: int = 0
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    not_recorded: int = 0
    rejected: int = 0
    pages: int = 0


class ChatBackfillRun(Contract):
    results: list[ChatBackfillOutcome]


class ChatSealOutcome(Contract):
    chat_id: str
    day: str
    part: int
    bundle_id: str
    versions: int
    enforcement: str
    ledger_seq: int


class ChatSealRun(Contract):
    """`POST /api/v1/admin/chat/seal`: the chat-days sealed now."""

    sealed: list[ChatSealOutcome]


class VerificationFinding(CamelContract):
    code: str
    message: str


class ChatVerificationView(CamelContract):
    """`GET /api/v1/chats/{id}/verification`: whether a chat's sealed bundles are intact and in the ledger."""

    chat_id: str
    ok: bool
    bundles: int
    versions: int
    findings: list[VerificationFinding]
    notes: list[str]
