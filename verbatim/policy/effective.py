"""Which compliance recording policy applies to a user, by Teams' precedence rules.

A direct (per-user) assignment wins; then the assignment of the best-ranked group the user is a direct
member of (rank 1 first); then the tenant-wide grant; then the built-in `Global` policy instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from verbatim.contracts.policy import EffectivePolicy, PolicySource
from verbatim.policy.directory import Directory, DirectoryUser
from verbatim.policy.model import GLOBAL_POLICY
from verbatim.policy.state import TenantState, key


def group_memberships(directory: Directory, group_ids: Iterable[str]) -> dict[str, set[str]]:
    """user id → case-folded ids of the given groups the user is a direct member of."""
    memberships: dict[str, set[str]] = {}
    for group_id in group_ids:
        for user in directory.members(group_id):
            memberships.setdefault(user.id, set()).add(key(group_id))
    return memberships


def effective_policy(
    user: DirectoryUser,
    state: TenantState,
    groups_of_user: set[str],
    retention_classes: Mapping[str, str] | None = None,
    captures: Mapping[str, Sequence[str]] | None = None,
) -> EffectivePolicy:
    """The effective policy of `user` in `state`; `groups_of_user` are case-folded direct-membership ids."""
    policy_name: str | None = None
    source: PolicySource = "none"
    group_id: str | None = None
    direct = state.user_assignments.get(key(user.user_principal_name)) or state.user_assignments.get(key(user.id))
    if direct is not None:
        policy_name, source = direct.policy, "direct"
    else:
        candidates = [a for g, a in state.group_assignments.items() if g in groups_of_user]
        if candidates:
            best = min(candidates, key=lambda a: a.rank)
            policy_name, source, group_id = best.policy, "group", best.group
        elif state.global_policy:
            policy_name, source = state.global_policy, "global"
        elif key(GLOBAL_POLICY) in state.recording_policies:
            policy_name, source = state.recording_policies[key(GLOBAL_POLICY)].name, "global"
    policy = state.recording_policies.get(key(policy_name)) if policy_name else None
    return EffectivePolicy(
        user_id=user.id,
        user_principal_name=user.user_principal_name,
        policy_name=policy.name if policy else policy_name,
        source=source,
        group_id=group_id,
        records=bool(policy and policy.records),
        strict=bool(policy and policy.records and policy.strict),
        recorder_instance_ids=sorted(
            (state.instances[k].object_id or state.instances[k].user_principal_name)
            if k in state.instances
            else recorder.instance
            for k, recorder in (policy.recorders.items() if policy else [])
        ),
        retention_class=(retention_classes or {}).get(key(policy_name)) if policy_name else None,
        capture=list((captures or {}).get(key(policy_name), ["audio"])) if policy_name else ["audio"],
    )


def effective_policies(
    users: Iterable[DirectoryUser],
    state: TenantState,
    memberships: Mapping[str, set[str]],
    retention_classes: Mapping[str, str] | None = None,
    captures: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, EffectivePolicy]:
    """user id → effective policy, for each of `users`."""
    return {
        user.id: effective_policy(user, state, memberships.get(user.id, set()), retention_classes, captures)
        for user in users
    }
