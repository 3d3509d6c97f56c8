"""From a validated desired state to the `TenantState` it asks for, applying jurisdiction rules.

Jurisdictions need to know who would be recorded and where they are, so compiling looks users up in the
directory: users with a direct assignment, direct members of assigned groups, and everyone when the
tenant-wide policy records. A user in a `warn` country yields a warning; in an `exclude` country the user
gets a direct assignment of `jurisdictions.exclusionPolicy`, which outranks every group assignment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from verbatim.contracts.policy import PlanFinding
from verbatim.policy import model as m
from verbatim.policy.directory import Directory, DirectoryUser
from verbatim.policy.effective import effective_policy, group_memberships
from verbatim.policy.state import (
    CallingPolicyState,
    GroupAssignmentState,
    InstanceState,
    PolicyState,
    RecorderState,
    TenantState,
    UserAssignmentState,
    key,
    ranked,
)


@dataclass
class Compiled:
    state: TenantState
    findings: list[PlanFinding] = field(default_factory=list)


def retention_classes(desired: m.DesiredState) -> dict[str, str]:
    """Case-folded policy name → retention class."""
    return {key(policy.name): policy.retention_class for policy in desired.recording_policies}


def capture_modalities(desired: m.DesiredState) -> dict[str, list[str]]:
    """Case-folded policy name → the modalities its calls must capture."""
    return {key(policy.name): list(policy.capture) for policy in desired.recording_policies}


def recorder_capture_setting(desired: m.DesiredState) -> str:
    """The recorder's `RECORDER_CAPTURE_POLICIES` app setting for this desired state: JSON, each recording
    policy's name (as Teams names it in an invitation's `policyIdentifier`) → the modalities to capture."""
    return json.dumps({policy.name: list(policy.capture) for policy in desired.recording_policies}, sort_keys=True)


def compile_desired(desired: m.DesiredState, directory: Directory | None) -> Compiled:
    """The tenant state `desired` asks for; `directory` is None when users cannot be looked up."""
    state = TenantState(
        instances={key(i.user_principal_name): _instance(i) for i in desired.application_instances},
        recording_policies={key(p.name): _policy(p) for p in desired.recording_policies},
        global_policy=desired.assignments.global_,
        user_assignments={
            key(a.user): UserAssignmentState(user=a.user, policy=a.policy) for a in desired.assignments.users
        },
        group_assignments=ranked(
            GroupAssignmentState(group=a.group, policy=a.policy, rank=a.rank, name=a.name)
            for a in desired.assignments.groups
        ),
        calling_policies={
            key(p.name): CallingPolicyState(
                name=p.name, allow_cloud_recording_for_calls=p.allow_cloud_recording_for_calls
            )
            for p in desired.calling_policies
        },
        calling_group_assignments=ranked(
            GroupAssignmentState(group=g.group, policy=p.name, rank=g.rank, name=g.name)
            for p in desired.calling_policies
            for g in p.groups
        ),
    )
    if not desired.jurisdictions.rules:
        return Compiled(state)
    if directory is None:
        return Compiled(
            state,
            [
                PlanFinding(
                    severity="warning",
                    kind="jurisdiction",
                    message="jurisdiction rules were not checked: no directory to look users up in "
                    "(the export has no users; plan against the simulator or Graph to check them)",
                )
            ],
        )
    return _apply_jurisdictions(desired, state, directory)


def _apply_jurisdictions(desired: m.DesiredState, state: TenantState, directory: Directory) -> Compiled:
    rules = {country: rule for rule in desired.jurisdictions.rules for country in rule.countries}
    memberships = group_memberships(directory, [a.group for a in state.group_assignments.values()])
    candidates = _policy_users(state, directory, memberships)
    findings: list[PlanFinding] = []
    exclusions: dict[str, UserAssignmentState] = {}
    exclusion_policy = desired.jurisdictions.exclusion_policy
    for user in sorted(candidates.values(), key=lambda u: u.user_principal_name.casefold()):
        country = user.country_code
        if country is None or country not in rules:
            continue
        effective = effective_policy(user, state, memberships.get(user.id, set()))
        if not effective.records:
            continue
        rule = rules[country]
        what = "forbids recording" if rule.rule == "forbidden" else "requires consent to recording"
        note = f" ({rule.note})" if rule.note else ""
        if rule.action == "exclude" and exclusion_policy is not None:
            exclusions[key(user.user_principal_name)] = UserAssignmentState(
                user=user.user_principal_name, policy=exclusion_policy
            )
            findings.append(
                PlanFinding(
                    severity="warning",
                    kind="jurisdiction-exclusion",
                    subject=user.user_principal_name,
                    message=f"excluded: {country} {what}{note}; {user.user_principal_name} would be recorded by "
                    f"{effective.policy_name} ({effective.source}) and gets {exclusion_policy} directly instead",
                )
            )
        else:
            findings.append(
                PlanFinding(
                    severity="warning",
                    kind="jurisdiction",
                    subject=user.user_principal_name,
                    message=f"{user.user_principal_name} is in {country}, which {what}{note}, and is recorded by "
                    f"{effective.policy_name} ({effective.source})",
                )
            )
    if exclusions:
        state = state.model_copy(update={"user_assignments": {**state.user_assignments, **exclusions}})
    return Compiled(state, findings)


def _policy_users(
    state: TenantState, directory: Directory, memberships: dict[str, set[str]]
) -> dict[str, DirectoryUser]:
    """Users whom the state's assignments can reach: direct, group members, everyone if a default records."""
    found: dict[str, DirectoryUser] = {}
    default = state.global_policy or (m.GLOBAL_POLICY if key(m.GLOBAL_POLICY) in state.recording_policies else None)
    default_policy = state.recording_policies.get(key(default)) if default else None
    if default_policy is not None and default_policy.records:
        found.update({user.id: user for user in directory.users()})
        return found
    for direct in state.user_assignments.values():
        user = directory.user(direct.user)
        if user is not None:
            found[user.id] = user
    for assignment in state.group_assignments.values():
        for user in directory.members(assignment.group):
            found[user.id] = user
    return found


def _instance(instance: m.ApplicationInstance) -> InstanceState:
    return InstanceState(
        user_principal_name=instance.user_principal_name,
        display_name=instance.display_name,
        application_id=instance.application_id,
    )


def _policy(policy: m.RecordingPolicy) -> PolicyState:
    return PolicyState(
        name=policy.name,
        enabled=policy.enabled,
        description=policy.description,
        disable_compliance_recording_audio_notification_for_calls=(
            policy.disable_compliance_recording_audio_notification_for_calls
        ),
        record_rerouted_calls=policy.record_rerouted_calls,
        custom_banner=policy.custom_banner,
        recorders={key(r.instance): _recorder(r) for r in policy.recorders},
    )


def _recorder(recorder: m.RecorderApplication) -> RecorderState:
    return RecorderState(
        instance=recorder.instance,
        required_before_call_establishment=recorder.required_before_call_establishment,
        required_before_meeting_join=recorder.required_before_meeting_join,
        required_during_call=recorder.required_during_call,
        required_during_meeting=recorder.required_during_meeting,
        concurrent_invitation_count=recorder.concurrent_invitation_count or 1,
        paired_with=recorder.paired_with,
        priority=recorder.priority,
    )
