"""The desired state of compliance recording in a tenant, as an admin declares it in a YAML file.

Field names follow the Teams PowerShell parameters in camelCase, so a reviewer can map each line to the
cmdlet that sets it. The JSON Schema that validates the file is generated from these models
(`verbatim.policy.schema`), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UPN_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Teams policy identities; per-user policies show up as "Tag:<name>"; ":" is not allowed, so neither is the prefix.
POLICY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"
RETENTION_CLASS_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
# Group object ids from Entra; the simulator uses the same GUID form.
GROUP_ID_PATTERN = GUID_PATTERN

GLOBAL_POLICY = "Global"
# What a policy's calls capture, by Graph's modality names (`call: answer` acceptedModalities; callRecords
# `modality`): the audio always, the cameras ("main video") and the video-based screen share (VBSS), the two
# video modalities the real-time media platform delivers to a bot (docs/video.md).
CaptureModality = Literal["audio", "video", "videoBasedScreenSharing"]
CAPTURE_MODALITIES: tuple[CaptureModality, ...] = ("audio", "video", "videoBasedScreenSharing")
# The file format version that introduced `capture` (version 1 files capture audio only).
CAPTURE_VERSION = 2
MAX_GROUP_ASSIGNMENTS_PER_POLICY_TYPE = 64

Guid = Annotated[str, StringConstraints(pattern=GUID_PATTERN)]
UserPrincipalName = Annotated[str, StringConstraints(pattern=UPN_PATTERN, max_length=256)]
PolicyName = Annotated[str, StringConstraints(pattern=POLICY_NAME_PATTERN)]
RetentionClassName = Annotated[str, StringConstraints(pattern=RETENTION_CLASS_PATTERN)]
CountryCode = Annotated[str, StringConstraints(pattern=COUNTRY_PATTERN)]
GroupId = Annotated[str, StringConstraints(pattern=GROUP_ID_PATTERN)]


def _audio_only() -> list[CaptureModality]:
    return ["audio"]


class DeclaredModel(BaseModel):
    """Strict about the file: unknown fields are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ApplicationInstance(DeclaredModel):
    """A resource account bound to the recorder bot (New-CsOnlineApplicationInstance)."""

    user_principal_name: UserPrincipalName = Field(description="UPN of the resource account; must be an online domain")
    display_name: str = Field(min_length=1, max_length=256)
    application_id: Guid = Field(description="the recorder bot's Entra app (client) id")


class RecorderApplication(DeclaredModel):
    """One recorder application of a policy (New-/Set-CsTeamsComplianceRecordingApplication).

    Resilience comes either from `concurrentInvitationCount: 2` (two invitations to the same recorder) or
    from `pairedWith` (one other recorder invited separately), never both.
    """

    instance: UserPrincipalName = Field(description="UPN of an application instance declared in applicationInstances")
    required_before_call_establishment: bool = Field(default=True, description="Teams default true (fail-closed)")
    required_before_meeting_join: bool = Field(default=True, description="Teams default true (fail-closed)")
    required_during_call: bool = Field(default=True, description="Teams default true (fail-closed)")
    required_during_meeting: bool = Field(default=True, description="Teams default true (fail-closed)")
    concurrent_invitation_count: Literal[1, 2] | None = Field(
        default=None, description="1 or 2 invitations to this recorder; Teams default 1; not with pairedWith"
    )
    paired_with: UserPrincipalName | None = Field(
        default=None, description="UPN of one other declared application instance; not with concurrentInvitationCount"
    )
    priority: int | None = Field(default=None, ge=0, description="display order only; all recorders are invited")

    @property
    def strict(self) -> bool:
        return any(
            (
                self.required_before_call_establishment,
                self.required_before_meeting_join,
                self.required_during_call,
                self.required_during_meeting,
            )
        )


class RecordingPolicy(DeclaredModel):
    """A compliance recording policy (New-/Set-CsTeamsComplianceRecordingPolicy)."""

    name: PolicyName = Field(description="policy identity without the Tag: prefix; 'Global' is the tenant default")
    enabled: bool = Field(description="whether the policy is active (Teams default false, so it must be stated)")
    description: str | None = Field(default=None, max_length=1024)
    recorders: list[RecorderApplication] = Field(default_factory=list)
    disable_compliance_recording_audio_notification_for_calls: bool = Field(
        default=False, description="true disables the recording announcement in 1:1 calls"
    )
    record_rerouted_calls: bool = Field(
        default=False, description="record calls forwarded, transferred or delegated from a policy user"
    )
    custom_banner: Guid | None = Field(default=None, description="id of a custom banner (New-CsTeamsCustomBannerText)")
    retention_class: RetentionClassName = Field(
        default="default", description="Verbatim retention class applied to this policy's recordings"
    )
    capture: list[CaptureModality] = Field(
        default_factory=_audio_only,
        min_length=1,
        description=(
            "Verbatim: what the recorder must capture of this policy's calls and meetings (audio; video: the "
            "cameras; videoBasedScreenSharing: the screen share). Always includes audio. Reconciliation judges a "
            "call partial when it had a listed modality that its recording lacks. Needs version 2."
        ),
    )

    @property
    def records(self) -> bool:
        return self.enabled and bool(self.recorders)


class UserAssignment(DeclaredModel):
    """A direct (per-user) assignment; it wins over every group assignment."""

    user: UserPrincipalName
    policy: PolicyName


class GroupAssignment(DeclaredModel):
    """A security-group assignment (New-CsGroupPolicyAssignment); rank 1 wins over higher ranks."""

    group: GroupId = Field(description="Entra object id of the security group")
    name: str | None = Field(default=None, description="the group's display name, for reviewers only")
    policy: PolicyName
    rank: int = Field(ge=1, description="1 is the highest precedence; unique per policy type")


class Assignments(DeclaredModel):
    """Who gets which recording policy. Precedence: direct user > group (lowest rank) > global."""

    global_: PolicyName | None = Field(
        default=None, alias="global", description="tenant-wide policy (Grant-CsTeamsComplianceRecordingPolicy -Global)"
    )
    users: list[UserAssignment] = Field(default_factory=list)
    groups: list[GroupAssignment] = Field(default_factory=list)


class CallingPolicyGroup(DeclaredModel):
    group: GroupId = Field(description="Entra object id of the security group")
    name: str | None = Field(default=None, description="the group's display name, for reviewers only")
    rank: int = Field(ge=1, description="1 is the highest precedence; unique across calling policy assignments")


class CallingPolicy(DeclaredModel):
    """The calling policy that governs convenience (user-started) cloud recording of 1:1 calls."""

    name: PolicyName
    allow_cloud_recording_for_calls: bool
    groups: list[CallingPolicyGroup] = Field(default_factory=list)


class JurisdictionRule(DeclaredModel):
    """Countries where recording is forbidden or needs consent, and what to do with policy users there."""

    countries: list[CountryCode] = Field(min_length=1, description="ISO 3166-1 alpha-2 codes, upper case")
    rule: Literal["forbidden", "consent-required"]
    action: Literal["warn", "exclude"] = Field(
        default="warn", description="warn: report in the plan; exclude: assign jurisdictions.exclusionPolicy directly"
    )
    note: str | None = None


class Jurisdictions(DeclaredModel):
    exclusion_policy: PolicyName | None = Field(
        default=None, description="a declared policy that records nobody, assigned directly to excluded users"
    )
    rules: list[JurisdictionRule] = Field(default_factory=list)


class MustRecordGroup(DeclaredModel):
    group: GroupId = Field(description="Entra object id; every transitive member must be recorded")
    name: str | None = Field(default=None, description="the group's display name, for reviewers only")


class MustRecord(DeclaredModel):
    """Who must be recorded, checked by the coverage audit against who is."""

    groups: list[MustRecordGroup] = Field(default_factory=list)


class DesiredState(DeclaredModel):
    """A tenant's compliance recording, declared: recorder instances, policies, assignments, and rules."""

    model_config = ConfigDict(title="Verbatim recording policies (desired state)")

    version: Literal[1, 2] = Field(description="file format version: 2 adds recordingPolicies[].capture")
    application_instances: list[ApplicationInstance] = Field(default_factory=list)
    recording_policies: list[RecordingPolicy] = Field(default_factory=list)
    assignments: Assignments = Field(default_factory=Assignments)
    calling_policies: list[CallingPolicy] = Field(default_factory=list)
    jurisdictions: Jurisdictions = Field(default_factory=Jurisdictions)
    must_record: MustRecord = Field(default_factory=MustRecord)

    def policy(self, name: str) -> RecordingPolicy | None:
        for policy in self.recording_policies:
            if policy.name.casefold() == name.casefold():
                return policy
        return None
