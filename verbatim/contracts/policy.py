"""Policy automation contracts: effective-policy snapshots (Cosmos `policy_snapshots`), the state export
written by the generated PowerShell script, and the bodies of the admin HTTP API (validate, plan)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue, model_validator

from verbatim.contracts import Contract, contract

PolicySource = Literal["direct", "group", "global", "none"]


class EffectivePolicy(Contract):
    """The compliance recording policy that applies to one user, and what it means for recording.

    `records` is true when the policy is enabled and names at least one recorder application: only then
    does Teams invite a recorder into the user's calls and meetings. `strict` is true when any recorder
    application is required (fail-closed: the call or meeting join fails without the recorder).
    """

    user_id: str = Field(alias="userId")
    user_principal_name: str | None = Field(default=None, alias="userPrincipalName")
    policy_name: str | None = Field(default=None, alias="policyName")
    source: PolicySource = "none"
    group_id: str | None = Field(default=None, alias="groupId", description="the group whose assignment applies")
    records: bool = False
    strict: bool = False
    recorder_instance_ids: list[str] = Field(default_factory=list, alias="recorderInstanceIds")
    retention_class: str | None = Field(default=None, alias="retentionClass")
    # What the policy's calls must capture, by Graph's modality names (the desired state's `capture`; audio only
    # when it says nothing, and on snapshots written before it existed).
    capture: list[str] = Field(default_factory=lambda: ["audio"])

    def same_as(self, other: EffectivePolicy) -> bool:
        """Equal in every respect that matters for recording (names of users may be edited freely)."""
        return self.model_dump(exclude={"user_principal_name"}) == other.model_dump(exclude={"user_principal_name"})


@contract("policy-snapshot", 1)
class PolicySnapshot(Contract):
    """One change of a user's effective policy, as first observed.

    The change happened in `(changed_after, valid_from]`: `changed_after` is when the previous value was
    last confirmed (None when this is the first observation of the user). Teams applies a policy change to
    new calls only, and group assignments can take hours to propagate, so the window is real.
    """

    schema_version: Literal[1] = Field(default=1, alias="schemaVersion")
    id: str
    user_id: str = Field(alias="userId")
    valid_from: datetime = Field(alias="validFrom")
    changed_after: datetime | None = Field(default=None, alias="changedAfter")
    effective: EffectivePolicy
    observed_by: str = Field(default="coverage-audit", alias="observedBy")


class EffectivePolicyAt(Contract):
    """The answer to "which policy applied to user U at time T?".

    `snapshot` is the newest snapshot at or before T (None: the user was not yet observed). When T falls in
    the change window of the next snapshot, `pending` is that snapshot: the change may already have applied.
    """

    user_id: str = Field(alias="userId")
    at: datetime
    snapshot: PolicySnapshot | None = None
    pending: PolicySnapshot | None = None

    @property
    def known(self) -> bool:
        return self.snapshot is not None and self.pending is None

    @property
    def must_record(self) -> bool | None:
        """True/False when certain; None when unobserved or when T is inside a change window whose two
        values disagree on recording."""
        if self.snapshot is None:
            return None
        if self.pending is not None and self.pending.effective.records != self.snapshot.effective.records:
            return None
        return self.snapshot.effective.records


EffectivePolicyAt.model_rebuild()


# --- plans ------------------------------------------------------------------------------------------------

ChangeAction = Literal["add", "change", "remove"]
ChangeKind = Literal[
    "application-instance",
    "recording-policy",
    "recorder-application",
    "calling-policy",
    "global-assignment",
    "group-assignment",
    "user-assignment",
    "calling-group-assignment",
]
ParameterValue = str | int | bool | None


class PlanChange(Contract):
    """One object to add, change or remove, with its parameter values before and after.

    `subject` identifies the object: an instance's UPN, a policy's name, a group's object id, a user's UPN
    ("Global" for the tenant-wide grant); `policy` is the parent policy of a recorder application.
    """

    action: ChangeAction
    kind: ChangeKind
    subject: str
    policy: str | None = None
    label: str | None = Field(default=None, description="display name of a group, for reviewers")
    before: dict[str, ParameterValue] | None = None
    after: dict[str, ParameterValue] | None = None
    changed: list[str] = Field(default_factory=list, description="parameters whose value changes")


class PlanFinding(Contract):
    """Something a reviewer must know that is not a change: a jurisdiction warning, an exclusion, a limit."""

    severity: Literal["warning", "info"]
    kind: str
    subject: str | None = None
    message: str


@contract("policy-plan", 1)
class PolicyPlan(Contract):
    """The reviewed difference between a desired state and a tenant's current state."""

    schema_version: Literal[1] = Field(default=1, alias="schemaVersion")
    target: str = Field(description="what was compared: the simulator's URL, or an export file")
    desired_sha256: str = Field(alias="desiredSha256", description="SHA-256 of the desired state, canonical JSON")
    changes: list[PlanChange] = Field(default_factory=list)
    findings: list[PlanFinding] = Field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def count(self, action: ChangeAction) -> int:
        return sum(1 for change in self.changes if change.action == action)


@contract("policy-validation", 1)
class PolicyValidationReport(Contract):
    """The answer of the validate endpoint: whether the desired state is valid, and every finding."""

    valid: bool
    issues: list[dict[str, str | int]] = Field(default_factory=list)


# --- the JSON written by the generated export script -----------------------------------------------------


class ExportedInstance(Contract):
    object_id: str = Field(alias="objectId")
    user_principal_name: str = Field(alias="userPrincipalName")
    display_name: str = Field(default="", alias="displayName")
    application_id: str = Field(default="", alias="applicationId")


class ExportedRecorder(Contract):
    instance_object_id: str = Field(alias="instanceObjectId")
    required_before_call_establishment: bool = Field(default=True, alias="requiredBeforeCallEstablishment")
    required_before_meeting_join: bool = Field(default=True, alias="requiredBeforeMeetingJoin")
    required_during_call: bool = Field(default=True, alias="requiredDuringCall")
    required_during_meeting: bool = Field(default=True, alias="requiredDuringMeeting")
    concurrent_invitation_count: int = Field(default=1, alias="concurrentInvitationCount")
    paired_instance_object_ids: list[str] = Field(default_factory=list, alias="pairedInstanceObjectIds")
    priority: int | None = None


class ExportedPolicy(Contract):
    name: str
    enabled: bool = False
    description: str | None = None
    disable_compliance_recording_audio_notification_for_calls: bool = Field(
        default=False, alias="disableComplianceRecordingAudioNotificationForCalls"
    )
    record_rerouted_calls: bool = Field(default=False, alias="recordReroutedCalls")
    custom_banner: str | None = Field(default=None, alias="customBanner")
    recorders: list[ExportedRecorder] = Field(default_factory=list)


class ExportedGroupAssignment(Contract):
    group_id: str = Field(alias="groupId")
    policy: str
    rank: int


class ExportedCallingPolicy(Contract):
    name: str
    allow_cloud_recording_for_calls: bool = Field(alias="allowCloudRecordingForCalls")


class ExportedUser(Contract):
    id: str
    user_principal_name: str = Field(alias="userPrincipalName")
    usage_location: str | None = Field(default=None, alias="usageLocation")
    recording_policy: str | None = Field(default=None, alias="recordingPolicy")


@contract("policy-export", 1)
class PolicyExport(Contract):
    """The current configuration as written by `verbatim policy export-script` (PowerShell → JSON)."""

    schema_version: Literal[1] = Field(default=1, alias="schemaVersion")
    exported_at: datetime | None = Field(default=None, alias="exportedAt")
    tenant_id: str | None = Field(default=None, alias="tenantId")
    application_instances: list[ExportedInstance] = Field(default_factory=list, alias="applicationInstances")
    recording_policies: list[ExportedPolicy] = Field(default_factory=list, alias="recordingPolicies")
    global_policy: str | None = Field(default=None, alias="globalPolicy")
    group_assignments: list[ExportedGroupAssignment] = Field(default_factory=list, alias="groupAssignments")
    calling_policies: list[ExportedCallingPolicy] = Field(default_factory=list, alias="callingPolicies")
    calling_group_assignments: list[ExportedGroupAssignment] = Field(
        default_factory=list, alias="callingGroupAssignments"
    )
    users: list[ExportedUser] = Field(default_factory=list)


# --- coverage audit -------------------------------------------------------------------------------------


class CoverageFinding(Contract):
    """A user who must be recorded (member of a must-record group) but whose effective policy does not
    record them; `severity` is "info" when a jurisdiction exclusion explains it."""

    key: str = Field(description="stable id of this finding: user id and the reason")
    severity: Literal["alert", "info"]
    user_id: str = Field(alias="userId")
    user_principal_name: str | None = Field(default=None, alias="userPrincipalName")
    groups: list[str] = Field(description="the must-record groups the user is a (transitive) member of")
    effective: EffectivePolicy
    message: str


class PolicyUser(Contract):
    """One person the audit found the recording policy concerns: a (transitive) member of a must-record group, or
    someone whose effective policy records them though no must-record group names them. Kept compact: every
    policy user of the tenant is listed in the report."""

    user_id: str = Field(alias="userId")
    user_principal_name: str | None = Field(default=None, alias="userPrincipalName")
    must_record: bool = Field(alias="mustRecord", description="in a must-record group: the law says record them")
    groups: list[str] = Field(default_factory=list, description="the must-record groups the user is in")
    policy_name: str | None = Field(default=None, alias="policyName", description="the effective policy")
    source: PolicySource = "none"
    records: bool = Field(default=False, description="the effective policy records this user")
    strict: bool = False


@contract("policy-coverage-report", 2)
class CoverageReport(Contract):
    """One coverage audit: who must be recorded, who is not, and what changed since the previous run.

    Version 2 lists every policy user (`users`); a version-1 report (stored before) reads as version 2 with
    `users` None: that audit counted them and did not list them."""

    schema_version: Literal[2] = Field(default=2, alias="schemaVersion")
    audited_at: datetime = Field(alias="auditedAt")
    source: str = Field(description="where effective policies were read: the simulator, or Graph")
    must_record_groups: list[str] = Field(alias="mustRecordGroups")
    must_record_users: int = Field(alias="mustRecordUsers")
    recorded_users: int = Field(alias="recordedUsers")
    findings: list[CoverageFinding] = Field(default_factory=list)
    new_findings: list[str] = Field(default_factory=list, alias="newFindings", description="keys first seen now")
    resolved_findings: list[str] = Field(default_factory=list, alias="resolvedFindings")
    snapshots_written: int = Field(default=0, alias="snapshotsWritten")
    problems: list[str] = Field(default_factory=list, description="groups or users that could not be read")
    users: list[PolicyUser] | None = Field(
        default=None, description="every policy user, by UPN; None in a report written by a version-1 audit"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_version_1(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("schemaVersion", data.get("schema_version")) == 1:
            return {k: v for k, v in data.items() if k not in ("schemaVersion", "schema_version", "users")}
        return data


@contract("policy-plan-request", 1)
class PolicyPlanRequest(Contract):
    """Body of POST /api/v1/policy/plan as JSON: the desired state (a YAML text or the parsed object) and,
    optionally, the current state as exported by the generated PowerShell script."""

    desired_state: str | dict[str, JsonValue] = Field(alias="desiredState")
    current_state: PolicyExport | None = Field(default=None, alias="currentState")


class PublishedDesiredStateInfo(Contract):
    """Answer of PUT /api/v1/policy/desired-state."""

    sha256: str
    published_at: datetime = Field(alias="publishedAt")
    published_by: str | None = Field(default=None, alias="publishedBy")
    must_record_groups: list[str] = Field(default_factory=list, alias="mustRecordGroups")
    warnings: list[str] = Field(default_factory=list)


@contract("policy-desired-state", 1)
class PublishedDesiredStateView(Contract):
    """Answer of GET /api/v1/policy/desired-state: the published desired state as its admin posted it."""

    schema_version: Literal[1] = Field(default=1, alias="schemaVersion")
    text: str = Field(description="the file as published (YAML or JSON), byte for byte")
    sha256: str
    published_at: datetime = Field(alias="publishedAt")
    published_by: str | None = Field(default=None, alias="publishedBy")
