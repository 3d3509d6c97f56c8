"""A tenant's compliance recording configuration in one comparable form.

Both sides of a plan become a `TenantState`: the desired state (compiled from the file, see
`verbatim.policy.compile`) and the current state (read from the simulator or a PowerShell export). Keys
are case-folded (Teams compares identities case-insensitively); group ranks are kept as the relative
order Teams maintains (1..n per policy type), so `rank: 10` and `rank: 20` in a file equal ranks 1 and 2
in the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StateModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    def parameters(self) -> dict[str, Any]:
        """The values a plan shows, by PowerShell-style camelCase name."""
        return {}

    def comparable(self) -> dict[str, Any]:
        """The values a plan compares: `parameters()` with identities case-folded (Teams ignores case)."""
        return {name: _fold(name, value) for name, value in self.parameters().items()}


class InstanceState(StateModel):
    user_principal_name: str
    display_name: str
    application_id: str
    object_id: str | None = None  # known only for existing instances

    def parameters(self) -> dict[str, Any]:
        return {"displayName": self.display_name, "applicationId": self.application_id}


class RecorderState(StateModel):
    instance: str  # UPN of the application instance
    required_before_call_establishment: bool = True
    required_before_meeting_join: bool = True
    required_during_call: bool = True
    required_during_meeting: bool = True
    concurrent_invitation_count: int = 1
    paired_with: str | None = None  # UPN
    priority: int | None = None

    def parameters(self) -> dict[str, Any]:
        return {
            "requiredBeforeCallEstablishment": self.required_before_call_establishment,
            "requiredBeforeMeetingJoin": self.required_before_meeting_join,
            "requiredDuringCall": self.required_during_call,
            "requiredDuringMeeting": self.required_during_meeting,
            "concurrentInvitationCount": self.concurrent_invitation_count,
            "pairedWith": self.paired_with,
            # Priority only orders the display; compared only when the file sets it.
            **({"priority": self.priority} if self.priority is not None else {}),
        }

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


class PolicyState(StateModel):
    name: str
    enabled: bool
    description: str | None = None
    disable_compliance_recording_audio_notification_for_calls: bool = False
    record_rerouted_calls: bool = False
    custom_banner: str | None = None
    recorders: dict[str, RecorderState] = Field(default_factory=dict)  # by case-folded instance UPN

    def parameters(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "description": self.description or None,
            "disableComplianceRecordingAudioNotificationForCalls": (
                self.disable_compliance_recording_audio_notification_for_calls
            ),
            "recordReroutedCalls": self.record_rerouted_calls,
            "customBanner": self.custom_banner,
        }

    @property
    def records(self) -> bool:
        return self.enabled and bool(self.recorders)

    @property
    def strict(self) -> bool:
        return any(recorder.strict for recorder in self.recorders.values())


class UserAssignmentState(StateModel):
    user: str  # UPN
    policy: str

    def parameters(self) -> dict[str, Any]:
        return {"policy": self.policy}


class GroupAssignmentState(StateModel):
    group: str  # Entra object id
    policy: str
    rank: int
    name: str | None = None  # display name, for reviewers

    def parameters(self) -> dict[str, Any]:
        return {"policy": self.policy, "rank": self.rank}


class CallingPolicyState(StateModel):
    name: str
    allow_cloud_recording_for_calls: bool

    def parameters(self) -> dict[str, Any]:
        return {"allowCloudRecordingForCalls": self.allow_cloud_recording_for_calls}


class TenantState(StateModel):
    """What a plan compares. Dict keys are case-folded identities."""

    instances: dict[str, InstanceState] = Field(default_factory=dict)
    recording_policies: dict[str, PolicyState] = Field(default_factory=dict)
    global_policy: str | None = None  # the tenant-wide grant (Grant-CsTeamsComplianceRecordingPolicy -Global)
    # False when the source cannot show the tenant-wide grant (the PowerShell export): the plan then
    # re-grants a declared one (granting is idempotent) and never removes one.
    global_policy_known: bool = True
    user_assignments: dict[str, UserAssignmentState] = Field(default_factory=dict)
    group_assignments: dict[str, GroupAssignmentState] = Field(default_factory=dict)
    calling_policies: dict[str, CallingPolicyState] = Field(default_factory=dict)
    calling_group_assignments: dict[str, GroupAssignmentState] = Field(default_factory=dict)


_IDENTITY_FIELDS = frozenset({"applicationId", "pairedWith", "customBanner", "policy"})


def _fold(name: str, value: Any) -> Any:
    return value.casefold() if name in _IDENTITY_FIELDS and isinstance(value, str) else value


def key(identity: str) -> str:
    return identity.casefold()


def ranked(assignments: Iterable[GroupAssignmentState]) -> dict[str, GroupAssignmentState]:
    """Group assignments of one policy type keyed by group, with ranks renumbered 1..n in rank order
    (ties keep their input order), which is how Teams keeps them."""
    ordered = sorted(enumerate(assignments), key=lambda pair: (pair[1].rank, pair[0]))
    return {
        key(assignment.group): assignment.model_copy(update={"rank": position})
        for position, (_, assignment) in enumerate(ordered, start=1)
    }
