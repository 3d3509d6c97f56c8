"""Reconciliation contracts: the verdict per (call, policy user) in Cosmos `verdicts`, the `recording.indexed`
and `policies.observed` messages that ask for re-evaluations (a recording was sealed; policy snapshots were
written), and the signed daily completeness report written to the `reports` blob container.

Field names are camelCase on the wire (like the call-record contracts they are derived from). Times are
canonical UTC strings (`2025-03-03T09:00:00.000000Z`) so they compare and sort as text in Cosmos.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from verbatim.contracts import contract
from verbatim.contracts.callrecords import CamelContract
from verbatim.contracts.chat import ChatCompleteness
from verbatim.contracts.evidence import SignatureAlgorithmName

VerdictState = Literal[
    "recorded",  # the user's whole presence in the call is covered by sealed recordings (within tolerance)
    "partial",  # some of it is covered: see `coverage` and `gaps`
    "missing",  # none of it is covered
    "pending",  # not decided yet: a recording is not sealed, the user's policy is not known, or no recorder has
    # reported on the call yet and the grace for its report has not ended; re-evaluated
]
VerdictReason = Literal[
    "recorded",
    "recorder_rejected",  # the recorder failed to answer or to start recording (it reported so)
    "call_blocked_by_policy",  # the user's call/join failed at set-up: a required recorder was missing
    "recorder_crashed",  # the recording was interrupted (salvaged, or failed during capture)
    "recorder_joined_late",  # recorded, but only from some time after the user joined
    "recording_ended_early",  # the recording stopped before the user left the call
    "modality_not_captured",  # the audio is recorded, but the call had a modality the user's policy requires
    # (video: the cameras; videoBasedScreenSharing: a screen share) and no sealed recording of the user holds it
    "no_invitation",  # no recorder ever reported on this user's call: it was not invited (or never told us)
    "recording_pending",  # a recording is still being captured or sealed
    "awaiting_recorder_report",  # pending: no recorder has reported on the user's call yet, and the call ended less
    # than the grace ago (RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS): a report can lag behind the call record
    # (queue retries, a Functions host restart); re-evaluated when the grace ends (then `no_invitation` if none came)
    "policy_change_pending",  # the call fell in the propagation window of a policy change
    "policy_unknown",  # pending: the coverage audit has not observed the user yet, so whether they had to be
    # recorded is not known; re-evaluated when it has (after each audit that writes snapshots, and daily)
    "unknown",
]


class TimeSpan(CamelContract):
    """A stretch of wall-clock time (UTC)."""

    start: str
    end: str
    seconds: float = Field(ge=0)


class PolicyAtCall(CamelContract):
    """The user's effective recording policy at call time, as the snapshot store answered."""

    policy_name: str | None = None
    strict: bool = False
    source: str | None = None
    # False when the user was never observed by the coverage audit (the verdict then rests on the recorder's
    # own report that it was invited), or when the call fell in a change window.
    certain: bool = True


class VerdictChange(CamelContract):
    """A previous value of a verdict (late recordings and newer call-record versions change verdicts)."""

    verdict: VerdictState
    reason: VerdictReason
    call_record_version: int
    evaluated_at: str


@contract("reconciliation.verdict", 1)
class Verdict(CamelContract):
    """Was this policy user's part of this call recorded? One document per (call, policy user) in Cosmos
    `verdicts` (partition key /callId, id `<callId>:<userId>`)."""

    schema_version: Literal[1] = 1
    id: str
    call_id: str
    call_record_version: int
    user_id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    day: str = Field(description="UTC date of the call's start (YYYY-MM-DD): the completeness report it counts in")
    call_type: str = "unknown"
    call_start: str | None = None
    call_end: str | None = None
    presence: TimeSpan | None = Field(default=None, description="the user's first join to last leave")
    verdict: VerdictState
    coverage: float = Field(ge=0, le=1, description="fraction of the user's presence covered by recordings")
    recorded_seconds: float = Field(default=0.0, ge=0)
    gaps: list[TimeSpan] = Field(default_factory=list, description="parts of the user's presence not recorded")
    recording_ids: list[str] = Field(default_factory=list)
    reason: VerdictReason
    reason_detail: str = ""
    call_blocked: bool = Field(default=False, description="the user's call or join failed at set-up")
    explained: bool = Field(
        default=False, description="not recorded, but no unrecorded conversation took place (blocked, pending)"
    )
    policy: PolicyAtCall = Field(default_factory=PolicyAtCall)
    evaluated_at: str
    history: list[VerdictChange] = Field(default_factory=list)

    def same_outcome(self, other: Verdict) -> bool:
        """Equal in everything but when it was evaluated and its history."""
        exclude = {"evaluated_at", "history"}
        return self.model_dump(exclude=exclude) == other.model_dump(exclude=exclude)


@contract("recording.indexed", 1)
class RecordingIndexed(CamelContract):
    """`reconciliation-requests` message: recording `recording_id` reached a final state (sealed or not
    recorded); re-evaluate the verdicts of its call and refresh its search entry. Idempotent."""

    schema_name: Literal["recording.indexed"] = Field(default="recording.indexed", alias="schema")
    schema_version: Literal[1] = 1
    recording_id: str
    status: str | None = None
    call_chain_id: str | None = None
    observed_user_id: str | None = None
    at: str


@contract("recorder-report.grace-ended", 1)
class RecorderReportGraceEnded(CamelContract):
    """`reconciliation-requests` message, sent with a visibility delay when a verdict became `pending`
    (`awaiting_recorder_report`): the grace for the recorder's report on call `call_record_id` ends at `due_at`, so
    re-evaluate the call then — judged on the recordings if a report came, `missing` (`no_invitation`) if none did.
    Idempotent; one that arrives early only schedules another."""

    schema_name: Literal["recorder-report.grace-ended"] = Field(default="recorder-report.grace-ended", alias="schema")
    schema_version: Literal[1] = 1
    call_record_id: str
    due_at: str
    at: str


@contract("policies.observed", 1)
class PoliciesObserved(CamelContract):
    """`reconciliation-requests` message: the coverage audit wrote policy snapshots, so verdicts waiting for a
    user's policy (`pending`, reason `policy_unknown`) can be decided now. Idempotent."""

    schema_name: Literal["policies.observed"] = Field(default="policies.observed", alias="schema")
    schema_version: Literal[1] = 1
    snapshots_written: int = Field(default=0, ge=0)
    at: str


class ReportCounts(CamelContract):
    """What the day's verdicts add up to. `expected` = recorded + partial + missing + pending."""

    expected: int = 0
    recorded: int = 0
    partial: int = 0
    missing: int = 0
    pending: int = 0
    explained: int = Field(default=0, description="partial or missing, but no unrecorded conversation took place")
    unexplained: int = Field(default=0, description="partial or missing, with an unrecorded conversation")


class ReportException(CamelContract):
    """One (call, policy user) that was not fully recorded. Integers only: the report is hashed canonically."""

    call_id: str
    user_id: str
    user_principal_name: str | None = None
    verdict: VerdictState
    reason: VerdictReason
    reason_detail: str = ""
    explained: bool
    coverage_permille: int = Field(ge=0, le=1000)
    missing_ms: int = Field(ge=0)
    call_start: str | None = None
    call_record_version: int
    recording_ids: list[str] = Field(default_factory=list)


class ReportSignature(CamelContract):
    """Signature over `verbatim-completeness-report-v1\\n` + the hex SHA-256 of the canonical report body
    (every field of the report but `signature`), made with the ledger's checkpoint key."""

    algorithm: SignatureAlgorithmName
    key_id: str
    public_key: str
    content_sha256: str
    signature: str  # base64


@contract("reconciliation.completeness-report", 1)
class CompletenessReport(CamelContract):
    """The daily completeness report: every (call, policy user) of calls that started on `day` (UTC), by
    verdict, with every exception listed by Teams call id. Stored as JSON in the `reports` container,
    signed, and appended to the ledger (`report.completeness`)."""

    schema_version: Literal[1] = 1
    day: str
    generated_at: str
    generated_by: str
    calls: int = 0
    users: int = 0
    counts: ReportCounts = Field(default_factory=ReportCounts)
    by_reason: dict[str, int] = Field(default_factory=dict)
    exceptions: list[ReportException] = Field(default_factory=list)
    # Chat capture's daily reconciliation per policy user (docs/chat.md); absent from reports written without it.
    chat: list[ChatCompleteness] | None = None
    signature: ReportSignature | None = None
