"""The plan: what changes, in which order, what is never touched, and how jurisdictions shape it."""

from __future__ import annotations

from tests.policy.conftest import ADVISERS, RECORDER, SALES, TRADERS, VALID, desired
from verbatim.contracts.policy import PlanChange
from verbatim.policy.compile import compile_desired
from verbatim.policy.directory import DirectoryUser, InMemoryDirectory
from verbatim.policy.plan import diff
from verbatim.policy.state import (
    CallingPolicyState,
    GroupAssignmentState,
    InstanceState,
    TenantState,
    UserAssignmentState,
    ranked,
)

DANA = DirectoryUser(id="u-dana", user_principal_name="dana@contoso.com", usage_location="GB")
ERIK = DirectoryUser(id="u-erik", user_principal_name="erik@contoso.com", usage_location="NO")
GRETA = DirectoryUser(id="u-greta", user_principal_name="greta@contoso.com", usage_location="DE")
OLA = DirectoryUser(id="u-ola", user_principal_name="ola@contoso.com", usage_location="US")


def directory() -> InMemoryDirectory:
    return InMemoryDirectory([DANA, ERIK, GRETA, OLA], {TRADERS: ["u-erik", "u-greta"], SALES: ["u-ola"]})


def desired_state(text: str = VALID) -> TenantState:
    return compile_desired(desired(text), directory()).state


def summary(changes: list[PlanChange]) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.subject if c.policy is None else f"{c.policy}/{c.subject}") for c in changes]


def test_against_an_empty_tenant_everything_is_added_in_dependency_order() -> None:
    changes = list(diff(desired_state(), TenantState()))

    kinds = [c.kind for c in changes]
    assert all(c.action == "add" for c in changes)
    assert kinds == sorted(
        kinds,
        key=[
            "application-instance",
            "recording-policy",
            "recorder-application",
            "calling-policy",
            "group-assignment",
            "user-assignment",
            "calling-group-assignment",
        ].index,
    )
    assert ("add", "user-assignment", "erik@contoso.com") in summary(changes)  # excluded: NO forbids recording


def test_the_desired_state_against_itself_has_no_changes() -> None:
    state = desired_state()

    assert list(diff(state, state)) == []


def test_ranks_are_relative_so_ten_and_twenty_equal_one_and_two() -> None:
    wanted = desired_state(
        VALID.replace("rank: 1\n    - group: 6f1c", "rank: 10\n    - group: 6f1c").replace(
            "policy: Advisers-Relaxed\n      rank: 2", "policy: Advisers-Relaxed\n      rank: 20"
        )
    )
    current = wanted.model_copy(
        update={
            "group_assignments": ranked(
                [
                    GroupAssignmentState(group=TRADERS, policy="Traders-Strict", rank=1),
                    GroupAssignmentState(group=SALES, policy="Advisers-Relaxed", rank=2),
                ]
            )
        }
    )

    assert [a.rank for a in wanted.group_assignments.values()] == [1, 2]
    assert list(diff(wanted, current)) == []


def test_inserting_a_group_at_rank_one_changes_only_that_group() -> None:
    wanted = desired_state()
    current = wanted.model_copy(
        update={"group_assignments": ranked([GroupAssignmentState(group=SALES, policy="Advisers-Relaxed", rank=1)])}
    )

    changes = [c for c in diff(wanted, current) if c.kind == "group-assignment"]

    assert summary(changes) == [("add", "group-assignment", TRADERS)]
    assert changes[0].after == {"policy": "Traders-Strict", "rank": 1}


def test_swapping_two_groups_changes_both_ranks_in_ascending_target_order() -> None:
    wanted = desired_state()
    current = wanted.model_copy(
        update={
            "group_assignments": ranked(
                [
                    GroupAssignmentState(group=SALES, policy="Advisers-Relaxed", rank=1),
                    GroupAssignmentState(group=TRADERS, policy="Traders-Strict", rank=2),
                ]
            )
        }
    )

    changes = [c for c in diff(wanted, current) if c.kind == "group-assignment"]

    assert [(c.subject, c.changed, (c.before or {})["rank"], (c.after or {})["rank"]) for c in changes] == [
        (TRADERS, ["rank"], 2, 1),
        (SALES, ["rank"], 1, 2),
    ]


def test_removals_come_last_and_undeclared_recording_objects_are_removed() -> None:
    wanted = desired_state()
    current = wanted.model_copy(
        update={
            "user_assignments": {
                **wanted.user_assignments,
                "zoe@contoso.com": UserAssignmentState(user="zoe@contoso.com", policy="Traders-Strict"),
            },
            "group_assignments": ranked(
                [*wanted.group_assignments.values(), GroupAssignmentState(group=ADVISERS, policy="Legacy", rank=3)]
            ),
            "recording_policies": {
                **wanted.recording_policies,
                "legacy": wanted.recording_policies["not-recorded"].model_copy(update={"name": "Legacy"}),
            },
        }
    )

    assert summary(list(diff(wanted, current))) == [
        ("remove", "user-assignment", "zoe@contoso.com"),
        ("remove", "group-assignment", ADVISERS),
        ("remove", "recording-policy", "Legacy"),
    ]


def test_the_global_policy_undeclared_instances_and_calling_policies_are_never_removed() -> None:
    wanted = desired_state()
    current = wanted.model_copy(
        update={
            "recording_policies": {
                **wanted.recording_policies,
                "global": wanted.recording_policies["not-recorded"].model_copy(update={"name": "Global"}),
            },
            "instances": {
                **wanted.instances,
                "aa@contoso.com": InstanceState(
                    user_principal_name="aa@contoso.com", display_name="AA", application_id="x"
                ),
            },
            "calling_policies": {
                **wanted.calling_policies,
                "allowcalling": CallingPolicyState(name="AllowCalling", allow_cloud_recording_for_calls=True),
            },
            "calling_group_assignments": ranked(
                [
                    *wanted.calling_group_assignments.values(),
                    GroupAssignmentState(group=SALES, policy="AllowCalling", rank=2),
                ]
            ),
        }
    )

    assert list(diff(wanted, current)) == []


def test_identities_compare_without_case() -> None:
    wanted = desired_state()
    shouted = wanted.model_copy(
        update={
            "user_assignments": {
                k: a.model_copy(update={"policy": a.policy.upper(), "user": a.user.upper()})
                for k, a in wanted.user_assignments.items()
            }
        }
    )

    assert list(diff(wanted, shouted)) == []


def test_a_changed_recorder_shows_only_the_parameters_that_differ() -> None:
    wanted = desired_state()
    strict = wanted.recording_policies["traders-strict"]
    recorder = strict.recorders[RECORDER.casefold()]
    current = wanted.model_copy(
        update={
            "recording_policies": {
                **wanted.recording_policies,
                "traders-strict": strict.model_copy(
                    update={
                        "recorders": {
                            RECORDER.casefold(): recorder.model_copy(
                                update={"paired_with": None, "concurrent_invitation_count": 2, "priority": 7}
                            )
                        }
                    }
                ),
            }
        }
    )

    (change,) = diff(wanted, current)

    assert (change.action, change.kind, change.policy) == ("change", "recorder-application", "Traders-Strict")
    assert change.changed == ["concurrentInvitationCount", "pairedWith"]  # priority is not declared: not compared


def test_jurisdictions_warn_for_consent_countries_and_exclude_forbidden_ones() -> None:
    compiled = compile_desired(desired(), directory())

    assert compiled.state.user_assignments["erik@contoso.com"].policy == "Not-Recorded"
    assert [(f.kind, f.subject) for f in compiled.findings] == [
        ("jurisdiction-exclusion", "erik@contoso.com"),
        ("jurisdiction", "greta@contoso.com"),
    ]
    assert compiled.findings[1].message == (
        "greta@contoso.com is in DE, which requires consent to recording, and is recorded by Traders-Strict (group)"
    )
    assert "works council agreement pending" in compiled.findings[0].message


def test_users_whose_effective_policy_does_not_record_raise_no_jurisdiction_finding() -> None:
    text = VALID.replace(
        "      policy: Advisers-Relaxed\n  groups:",
        "      policy: Advisers-Relaxed\n    - user: greta@contoso.com\n      policy: Not-Recorded\n  groups:",
    )

    compiled = compile_desired(desired(text), directory())

    assert [f.subject for f in compiled.findings] == ["erik@contoso.com"]
