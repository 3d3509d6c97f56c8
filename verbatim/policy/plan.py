"""The plan: what must be added, changed or removed to turn the current tenant state into the desired one.

Scope — what the file owns, and what it never touches:
- recording policies, their recorder applications, every recording-policy assignment (users, groups, the
  tenant-wide grant) are owned: anything the file does not declare is removed. The built-in `Global`
  policy is changed only when the file declares it, and never removed;
- application instances and calling policies are owned only when declared (a tenant has resource accounts
  for auto attendants and calling policies for other reasons), so they are added or changed, never removed;
- calling-policy group assignments are owned for the calling policies the file declares.

Changes come out in the order they must be applied: instances, policies, recorders, calling policies,
then assignments (ascending rank, so Teams' rank insertion ends in the declared order), and removals last,
so nobody loses a recording policy before the replacement is in place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from verbatim.contracts.policy import ChangeKind, PlanChange, PlanFinding, PolicyPlan
from verbatim.policy.model import GLOBAL_POLICY, DesiredState
from verbatim.policy.state import GroupAssignmentState, StateModel, TenantState, key, ranked


def desired_sha256(desired: DesiredState) -> str:
    data = desired.model_dump(mode="json", by_alias=True)
    for policy in data["recordingPolicies"]:
        # `capture: [audio]` is what a policy without it means: left out, so that the hash of a file that does not
        # use it (every version 1 file) stayed what it was before the field existed.
        if policy.get("capture") == ["audio"]:
            del policy["capture"]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def make_plan(
    desired: DesiredState,
    desired_state: TenantState,
    current: TenantState,
    *,
    target: str,
    findings: list[PlanFinding] | None = None,
) -> PolicyPlan:
    return PolicyPlan(
        target=target,
        desired_sha256=desired_sha256(desired),
        changes=list(diff(desired_state, current)),
        findings=list(findings or []),
    )


def diff(desired: TenantState, current: TenantState) -> Iterator[PlanChange]:
    """Every change, in the order in which it has to be applied."""
    # 1. application instances (declared ones only)
    for k, instance in desired.instances.items():
        yield from _compare("application-instance", instance.user_principal_name, instance, current.instances.get(k))
    # 2. recording policies' own parameters
    for k, policy in desired.recording_policies.items():
        yield from _compare("recording-policy", policy.name, policy, current.recording_policies.get(k))
    # 3. recorder applications of declared policies: add/change, then removals of undeclared recorders
    removals: list[PlanChange] = []
    for k, policy in desired.recording_policies.items():
        existing = current.recording_policies.get(k)
        existing_recorders = existing.recorders if existing else {}
        for r_key, recorder in policy.recorders.items():
            yield from _compare(
                "recorder-application", recorder.instance, recorder, existing_recorders.get(r_key), policy=policy.name
            )
        for r_key, recorder in existing_recorders.items():
            if r_key not in policy.recorders:
                removals.append(_removed("recorder-application", recorder.instance, recorder, policy=policy.name))
    yield from removals
    # 4. calling policies (declared ones only)
    for k, calling in desired.calling_policies.items():
        yield from _compare("calling-policy", calling.name, calling, current.calling_policies.get(k))
    # 5. assignments: tenant-wide, groups by rank, users, calling groups by rank
    if not current.global_policy_known:
        if desired.global_policy:
            yield PlanChange(
                action="add",
                kind="global-assignment",
                subject=GLOBAL_POLICY,
                after={"policy": desired.global_policy},
                changed=["policy"],
            )
    elif key(desired.global_policy or "") != key(current.global_policy or ""):
        yield PlanChange(
            action="add"
            if current.global_policy is None
            else ("remove" if desired.global_policy is None else "change"),
            kind="global-assignment",
            subject=GLOBAL_POLICY,
            before={"policy": current.global_policy} if current.global_policy else None,
            after={"policy": desired.global_policy} if desired.global_policy else None,
            changed=["policy"],
        )
    yield from _ranked_assignments("group-assignment", desired.group_assignments, current.group_assignments)
    for k, assignment in sorted(desired.user_assignments.items()):
        yield from _compare("user-assignment", assignment.user, assignment, current.user_assignments.get(k))
    owned_calling = {
        k: a for k, a in current.calling_group_assignments.items() if key(a.policy) in desired.calling_policies
    }
    yield from _ranked_assignments("calling-group-assignment", desired.calling_group_assignments, owned_calling)
    # 6. removals: assignments first, then policies nobody is assigned any more
    for k, assignment in sorted(current.user_assignments.items()):
        if k not in desired.user_assignments:
            yield _removed("user-assignment", assignment.user, assignment)
    yield from _ranked_removals("group-assignment", desired.group_assignments, current.group_assignments)
    yield from _ranked_removals("calling-group-assignment", desired.calling_group_assignments, owned_calling)
    for k, policy in sorted(current.recording_policies.items()):
        if k not in desired.recording_policies and k != key(GLOBAL_POLICY):
            yield _removed("recording-policy", policy.name, policy)


def _compare(
    kind: ChangeKind, subject: str, wanted: StateModel, existing: StateModel | None, *, policy: str | None = None
) -> Iterator[PlanChange]:
    label = getattr(wanted, "name", None) if kind.endswith("group-assignment") else None
    if existing is None:
        yield PlanChange(
            action="add",
            kind=kind,
            subject=subject,
            policy=policy,
            label=label,
            after=_values(wanted.parameters()),
            changed=sorted(wanted.parameters()),
        )
        return
    before, after = existing.comparable(), wanted.comparable()
    changed = [name for name in after if before.get(name) != after[name]]
    if changed:
        yield PlanChange(
            action="change",
            kind=kind,
            subject=subject,
            policy=policy,
            label=label or (getattr(existing, "name", None) if kind.endswith("group-assignment") else None),
            before=_values(existing.parameters()),
            after=_values(wanted.parameters()),
            changed=changed,
        )


def _removed(kind: ChangeKind, subject: str, existing: StateModel, *, policy: str | None = None) -> PlanChange:
    label = getattr(existing, "name", None) if kind.endswith("group-assignment") else None
    return PlanChange(
        action="remove", kind=kind, subject=subject, policy=policy, label=label, before=_values(existing.parameters())
    )


def _ranked_assignments(
    kind: ChangeKind, desired: Mapping[str, GroupAssignmentState], current: Mapping[str, GroupAssignmentState]
) -> Iterator[PlanChange]:
    """Adds and changes in ascending target rank.

    Ranks are relative: a kept group changes rank only when its order among the groups that are both
    declared and present changes. A new group inserted at rank 1 pushes the others down in Teams without
    them being changes, and removing a group closes the gap.
    """
    common = [k for k in desired if k in current]
    desired_order = ranked(desired[k] for k in common)
    current_order = ranked(current[k] for k in common)
    for k, assignment in sorted(desired.items(), key=lambda item: item[1].rank):
        existing = current.get(k)
        if existing is None:
            yield from _compare(kind, assignment.group, assignment, None)
            continue
        changed = []
        if key(assignment.policy) != key(existing.policy):
            changed.append("policy")
        if desired_order[k].rank != current_order[k].rank:
            changed.append("rank")
        if changed:
            yield PlanChange(
                action="change",
                kind=kind,
                subject=assignment.group,
                label=assignment.name or existing.name,
                before=_values(existing.parameters()),
                after=_values(assignment.parameters()),
                changed=changed,
            )


def _ranked_removals(
    kind: ChangeKind, desired: Mapping[str, GroupAssignmentState], current: Mapping[str, GroupAssignmentState]
) -> Iterator[PlanChange]:
    for k, assignment in sorted(current.items(), key=lambda item: item[1].rank):
        if k not in desired:
            yield _removed(kind, assignment.group, assignment)


def _values(parameters: dict[str, Any]) -> dict[str, str | int | bool | None]:
    return {name: value for name, value in parameters.items()}
