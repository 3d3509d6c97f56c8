"""Reading the current state from the JSON the generated export script wrote (`PolicyExport`).

PowerShell's ConvertTo-Json writes a UTF-8 byte-order mark on Windows PowerShell and empty strings for
unset values; both are normalised here. Recorders refer to instances by object id; they are mapped back
to UPNs so they compare with the desired state (an unknown object id stays as it is and shows up in the
plan as a recorder to remove).
"""

from __future__ import annotations

from verbatim.contracts.policy import ExportedGroupAssignment, ExportedPolicy, PolicyExport
from verbatim.policy.directory import DirectoryUser, InMemoryDirectory
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


def parse_export(text: str) -> PolicyExport:
    return PolicyExport.model_validate_json(text.lstrip("\ufeff"))


def export_state(export: PolicyExport) -> TenantState:
    upn_of = {i.object_id.casefold(): i.user_principal_name for i in export.application_instances}
    return TenantState(
        instances={
            key(i.user_principal_name): InstanceState(
                user_principal_name=i.user_principal_name,
                display_name=i.display_name,
                application_id=i.application_id,
                object_id=i.object_id,
            )
            for i in export.application_instances
        },
        recording_policies={key(p.name): _policy(p, upn_of) for p in export.recording_policies},
        global_policy=export.global_policy or None,
        global_policy_known="global_policy" in export.model_fields_set,
        user_assignments={
            key(u.user_principal_name): UserAssignmentState(user=u.user_principal_name, policy=u.recording_policy)
            for u in export.users
            if u.recording_policy
        },
        group_assignments=_ranked(export.group_assignments),
        calling_policies={
            key(p.name): CallingPolicyState(
                name=p.name, allow_cloud_recording_for_calls=p.allow_cloud_recording_for_calls
            )
            for p in export.calling_policies
        },
        calling_group_assignments=_ranked(export.calling_group_assignments),
    )


def export_directory(export: PolicyExport) -> InMemoryDirectory | None:
    """The users the export knows (those with a direct assignment); None when it lists none.

    Group members are not in an export (the Teams module does not list them), so jurisdiction checks
    against an export cover directly assigned users only."""
    if not export.users:
        return None
    return InMemoryDirectory(
        DirectoryUser(id=u.id, user_principal_name=u.user_principal_name, usage_location=u.usage_location or None)
        for u in export.users
    )


def _policy(policy: ExportedPolicy, upn_of: dict[str, str]) -> PolicyState:
    recorders = {}
    for recorder in policy.recorders:
        instance = upn_of.get(recorder.instance_object_id.casefold(), recorder.instance_object_id)
        paired = [upn_of.get(p.casefold(), p) for p in recorder.paired_instance_object_ids]
        recorders[key(instance)] = RecorderState(
            instance=instance,
            required_before_call_establishment=recorder.required_before_call_establishment,
            required_before_meeting_join=recorder.required_before_meeting_join,
            required_during_call=recorder.required_during_call,
            required_during_meeting=recorder.required_during_meeting,
            concurrent_invitation_count=recorder.concurrent_invitation_count or 1,
            paired_with=paired[0] if paired else None,
            priority=recorder.priority,
        )
    return PolicyState(
        name=policy.name,
        enabled=policy.enabled,
        description=policy.description or None,
        disable_compliance_recording_audio_notification_for_calls=(
            policy.disable_compliance_recording_audio_notification_for_calls
        ),
        record_rerouted_calls=policy.record_rerouted_calls,
        custom_banner=policy.custom_banner or None,
        recorders=recorders,
    )


def _ranked(assignments: list[ExportedGroupAssignment]) -> dict[str, GroupAssignmentState]:
    return ranked(GroupAssignmentState(group=a.group_id, policy=a.policy, rank=a.rank) for a in assignments)
