"""Every script the generator can write: the export script, and change scripts for plans that between them
take every path through `verbatim.policy.powershell` (`test_cmdlet_table.py` proves that by tracing it).

The plans are real plans (`verbatim.policy.service.plan`) of desired states against tenants built for the
purpose, so each kind of change is written the way `verbatim policy script` writes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.policy.conftest import ADVISERS, RECORDER, RECORDER_2, SALES, TRADERS, VALID
from verbatim.contracts.policy import PolicyPlan
from verbatim.policy.compile import compile_desired
from verbatim.policy.powershell import change_script, export_script
from verbatim.policy.service import CurrentState, current_from_export, plan
from verbatim.policy.state import (
    CallingPolicyState,
    GroupAssignmentState,
    InstanceState,
    PolicyState,
    RecorderState,
    TenantState,
    UserAssignmentState,
)
from verbatim.policy.validation import load_desired_state

DATA = Path(__file__).parent / "data"
OLD_RECORDER = "old-recorder@contoso.onmicrosoft.com"
LEGACY_GROUP = "6f1c2a3b-0000-4000-8000-0000000000a9"
BANNER = "6f1c2a3b-0000-4000-8000-00000000b001"
OLD_BANNER = "6f1c2a3b-0000-4000-8000-00000000b0ff"


def plan_against_export() -> PolicyPlan:
    return plan(load_desired_state(VALID, "policies.yaml"), current_from_export(DATA / "export-partial.json"))


def plan_against_empty_tenant() -> PolicyPlan:
    return plan(load_desired_state(VALID, "policies.yaml"), CurrentState(TenantState(), "an empty tenant"))


def plan_without_changes() -> PolicyPlan:
    validated = load_desired_state(VALID, "policies.yaml")
    return plan(validated, CurrentState(compile_desired(validated.desired, None).state, "an up-to-date tenant"))


# A desired state with every optional setting: a tenant-wide grant, a custom banner, a recorder priority, two
# calling policies with group assignments, and a user whose policy changes.
EVERY_SETTING = (
    VALID.replace("assignments:\n", "assignments:\n  global: Advisers-Relaxed\n")
    .replace("        concurrentInvitationCount: 2\n", "        concurrentInvitationCount: 2\n        priority: 1\n")
    .replace(
        "  - name: Not-Recorded\n    enabled: false\n",
        "  - name: Not-Recorded\n    enabled: false\n"
        f"  - name: Bannered\n    enabled: true\n    customBanner: {BANNER}\n",
    )
    .replace(
        "    - user: dana@contoso.com\n      policy: Advisers-Relaxed\n",
        "    - user: dana@contoso.com\n      policy: Advisers-Relaxed\n"
        "    - user: frank@contoso.com\n      policy: Traders-Strict\n",
    )
    .replace(
        "    allowCloudRecordingForCalls: false\n    groups:\n",
        "    allowCloudRecordingForCalls: false\n    groups:\n"
        f"      - group: {ADVISERS}\n        name: Advisers\n        rank: 2\n",
    )
    .replace(
        "jurisdictions:\n",
        "  - name: Convenience-Recording\n    allowCloudRecordingForCalls: true\njurisdictions:\n",
    )
)
assert EVERY_SETTING.count("global: Advisers-Relaxed") == 1 and "priority: 1" in EVERY_SETTING
assert "Bannered" in EVERY_SETTING and "frank@" in EVERY_SETTING and "Convenience-Recording\n" in EVERY_SETTING
assert f"group: {ADVISERS}" in EVERY_SETTING


def _recorder(instance: str, **values: object) -> RecorderState:
    return RecorderState.model_validate({"instance": instance, **values})


def tenant_to_change() -> TenantState:
    """A tenant in which every kind of object exists in a state the file changes or removes."""
    return TenantState(
        instances={
            RECORDER: InstanceState(
                user_principal_name=RECORDER,
                display_name="Verbatim Recorder (old name)",
                application_id="6f1c2a3b-0000-4000-8000-0000000000ff",
                object_id="6f1c2a3b-0000-4000-8000-00000000f001",
            )
        },
        recording_policies={
            "traders-strict": PolicyState(
                name="Traders-Strict",
                enabled=True,
                description="MiFID II voice recording, fail-closed",
                custom_banner=OLD_BANNER,
                recorders={
                    RECORDER: _recorder(RECORDER, concurrent_invitation_count=2),
                    OLD_RECORDER: _recorder(OLD_RECORDER),
                },
            ),
            "advisers-relaxed": PolicyState(
                name="Advisers-Relaxed",
                enabled=True,
                recorders={RECORDER: _recorder(RECORDER, paired_with=RECORDER_2, concurrent_invitation_count=1)},
            ),
            "bannered": PolicyState(name="Bannered", enabled=True),
            "legacy-pilot": PolicyState(name="Legacy-Pilot", enabled=True),
        },
        global_policy="Legacy-Pilot",
        user_assignments={
            "erik@contoso.com": UserAssignmentState(user="erik@contoso.com", policy="Traders-Strict"),
            "frank@contoso.com": UserAssignmentState(user="frank@contoso.com", policy="Advisers-Relaxed"),
        },
        group_assignments={
            TRADERS: GroupAssignmentState(group=TRADERS, policy="Legacy-Pilot", rank=1),
            LEGACY_GROUP: GroupAssignmentState(group=LEGACY_GROUP, policy="Legacy-Pilot", rank=2),
        },
        calling_policies={
            "no-convenience-recording": CallingPolicyState(
                name="No-Convenience-Recording", allow_cloud_recording_for_calls=True
            )
        },
        calling_group_assignments={
            ADVISERS: GroupAssignmentState(group=ADVISERS, policy="No-Convenience-Recording", rank=1),
            SALES: GroupAssignmentState(group=SALES, policy="No-Convenience-Recording", rank=2),
            TRADERS: GroupAssignmentState(group=TRADERS, policy="No-Convenience-Recording", rank=3),
        },
    )


def plan_with_every_change() -> PolicyPlan:
    return plan(load_desired_state(EVERY_SETTING, "policies.yaml"), CurrentState(tenant_to_change(), "a test tenant"))


def plan_changing_one_recorder() -> PolicyPlan:
    """A plan whose only step looks an application instance up (and creates none)."""
    validated = load_desired_state(VALID, "policies.yaml")
    current = compile_desired(validated.desired, None).state
    traders = current.recording_policies["traders-strict"]
    recorder = traders.recorders[RECORDER].model_copy(update={"required_during_call": False})
    changed = traders.model_copy(update={"recorders": {**traders.recorders, RECORDER: recorder}})
    current = current.model_copy(
        update={"recording_policies": {**current.recording_policies, "traders-strict": changed}}
    )
    return plan(validated, CurrentState(current, "a test tenant"))


def plan_removing_the_tenant_wide_grant() -> PolicyPlan:
    current = TenantState(global_policy="Legacy-Pilot", recording_policies={})
    return plan(load_desired_state("version: 1\n", "policies.yaml"), CurrentState(current, "a test tenant"))


PLANS: dict[str, Callable[[], PolicyPlan]] = {
    "from-export": plan_against_export,
    "from-empty-tenant": plan_against_empty_tenant,
    "no-changes": plan_without_changes,
    "every-change": plan_with_every_change,
    "one-recorder": plan_changing_one_recorder,
    "tenant-wide-removal": plan_removing_the_tenant_wide_grant,
}


def scripts() -> dict[str, str]:
    """Every generated script by golden-file name."""
    return {
        "export.ps1": export_script(),
        **{f"script-{name}.ps1": change_script(make(), "policies.yaml") for name, make in PLANS.items()},
    }
