"""Where the effective recording policy of every user comes from, for the coverage audit and the snapshots.

- `GraphEffectivePolicies`: Microsoft Graph's `teamsUserConfiguration` (`/admin/teams/userConfigurations`,
  `effectivePolicyAssignments`), which says which compliance recording policy applies to each user and
  why (direct or group). What the Function App's audit reads, in Azure and (from the simulator) locally.
  Graph does not describe the policy itself, nor name the tenant-wide default (a user on it has no entry),
  so what a policy means (does it record, is it strict, which recorders) and which policy is the tenant
  default come from the published desired state.
- `StateEffectivePolicies`: computed from a full `TenantState` (an export, tests) and direct group
  memberships, by Teams' precedence rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from verbatim.contracts.policy import EffectivePolicy, PolicySource
from verbatim.graph import GraphClient
from verbatim.policy.directory import Directory, DirectoryUser
from verbatim.policy.effective import effective_policy, group_memberships
from verbatim.policy.model import GLOBAL_POLICY, DesiredState
from verbatim.policy.state import TenantState, key

COMPLIANCE = "TeamsComplianceRecordingPolicy"


class EffectivePolicyReader(Protocol):
    source: str

    def effective(self) -> Iterator[EffectivePolicy]:
        """The effective policy of every user the source knows."""
        ...


class StateEffectivePolicies:
    def __init__(
        self,
        state: TenantState,
        directory: Directory,
        *,
        retention_classes: Mapping[str, str] | None = None,
        captures: Mapping[str, Sequence[str]] | None = None,
        source: str = "tenant state",
    ) -> None:
        self.state = state
        self.directory = directory
        self.retention_classes = retention_classes or {}
        self.captures = captures or {}
        self.source = source

    def effective(self) -> Iterator[EffectivePolicy]:
        memberships = group_memberships(self.directory, [a.group for a in self.state.group_assignments.values()])
        for user in self.directory.users():
            yield effective_policy(
                user, self.state, memberships.get(user.id, set()), self.retention_classes, self.captures
            )


class PolicyFacts(BaseModel):
    """What a named policy means for recording."""

    model_config = ConfigDict(frozen=True)

    records: bool
    strict: bool
    recorder_instance_ids: tuple[str, ...] = ()
    retention_class: str | None = None
    capture: tuple[str, ...] = ("audio",)


def catalog_from_desired(desired: DesiredState, directory: Directory | None = None) -> dict[str, PolicyFacts]:
    """Case-folded policy name → facts, from a desired state. Recorders are named by the object id of their
    application instance (a resource account, so an Entra user) when `directory` finds it, else by UPN."""
    ids: dict[str, str] = {}
    for instance in desired.application_instances:
        found = directory.user(instance.user_principal_name) if directory is not None else None
        ids[key(instance.user_principal_name)] = found.id if found else instance.user_principal_name
    return {
        key(p.name): PolicyFacts(
            records=p.records,
            strict=p.records and any(r.strict for r in p.recorders),
            recorder_instance_ids=tuple(sorted(ids.get(key(r.instance), r.instance) for r in p.recorders)),
            retention_class=p.retention_class,
            capture=tuple(p.capture),
        )
        for p in desired.recording_policies
    }


def tenant_default_policy(desired: DesiredState | None) -> str:
    """The policy of users with neither a direct nor a group assignment: the declared tenant-wide grant,
    else the built-in `Global` policy instance."""
    return (desired.assignments.global_ if desired else None) or GLOBAL_POLICY


class GraphEffectivePolicies:
    """Pages through `/admin/teams/userConfigurations`; each user's `TeamsComplianceRecordingPolicy`."""

    def __init__(
        self,
        graph: GraphClient,
        catalog: Mapping[str, PolicyFacts],
        *,
        tenant_default: str = GLOBAL_POLICY,
        page_size: int = 100,
    ) -> None:
        self.graph = graph
        self.catalog = catalog
        self.tenant_default = tenant_default
        self.page_size = page_size
        self.source = f"Graph {graph.base_url} teamsUserConfiguration"

    def effective(self) -> Iterator[EffectivePolicy]:
        params: dict[str, str | int] = {"$top": self.page_size}
        items = list(self.graph.iter_items("/admin/teams/userConfigurations", params=params))
        # Recorders are named by the object id of their resource account; the list carries those accounts.
        resource_accounts = {
            str(item.get("userPrincipalName", "")).casefold(): str(item["id"])
            for item in items
            if item.get("accountType") == "resourceAccount" and item.get("userPrincipalName")
        }
        for item in items:
            if str(item.get("accountType", "user")) not in ("user", "unknownFutureValue"):
                continue  # resource accounts and guests carry no policy of ours
            yield self.from_configuration(item, resource_accounts)

    def for_user(self, user: DirectoryUser) -> EffectivePolicy:
        item = self.graph.get_json(f"/admin/teams/userConfigurations/{user.id}")
        # Microsoft's documented example wraps the entity in "value"; OData (and the simulator) do not.
        wrapped = item.get("value")
        return self.from_configuration(wrapped if isinstance(wrapped, dict) else item)

    def from_configuration(
        self, item: dict[str, Any], resource_accounts: Mapping[str, str] | None = None
    ) -> EffectivePolicy:
        user_id = str(item["id"])
        upn = item.get("userPrincipalName")
        assignment = next(
            (
                a.get("policyAssignment") or {}
                for a in item.get("effectivePolicyAssignments") or []
                if str(a.get("policyType", "")).casefold() == COMPLIANCE.casefold()
            ),
            None,
        )
        source: PolicySource
        if assignment is None:
            # No entry: Teams applies the tenant default (Graph's assignmentType has no value for it).
            name: str | None = self.tenant_default
            source, group_id = "global", None
        else:
            name = str(assignment.get("displayName") or "").removeprefix("Tag:") or None
            source = {"direct": "direct", "group": "group"}.get(  # type: ignore[assignment]
                str(assignment.get("assignmentType", "")).casefold(), "global"
            )
            if name is not None and name.casefold() == GLOBAL_POLICY.casefold():
                source = "global"
            group_id = assignment.get("groupId") or None
        facts = self.catalog.get(key(name)) if name else None
        ids = resource_accounts or {}
        return EffectivePolicy(
            user_id=user_id,
            user_principal_name=upn,
            policy_name=name,
            source=source,
            group_id=group_id,
            records=bool(facts and facts.records),
            strict=bool(facts and facts.strict),
            recorder_instance_ids=sorted(ids.get(r.casefold(), r) for r in facts.recorder_instance_ids)
            if facts
            else [],
            retention_class=facts.retention_class if facts else None,
            capture=list(facts.capture) if facts else ["audio"],
        )
