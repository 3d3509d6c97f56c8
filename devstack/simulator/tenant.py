"""The simulated tenant: directory (users, groups, app registrations, application instances), Teams
compliance recording and calling policies, their assignments, and Teams' precedence rules
(direct user assignment > group assignment by rank > global assignment > the ``Global`` policy).

Loaded from YAML or JSON; every edit re-validates the whole model so the tenant never holds dangling
references.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
COMPLIANCE = "TeamsComplianceRecordingPolicy"
CALLING = "TeamsCallingPolicy"
POLICY_TYPES = (COMPLIANCE, CALLING)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class TenantInfo(_Model):
    id: str = Field(min_length=1, max_length=64)
    domain: str = Field(min_length=3, max_length=253)
    display_name: str = Field(default="Contoso", max_length=256)


class AppRegistration(_Model):
    """An Entra app registration: a confidential client (a secret: client credentials) or a single-page app
    (no secret; `spa` redirect URIs: authorization code flow with PKCE, redeemed cross-origin)."""

    app_id: str = Field(min_length=1, max_length=64)
    display_name: str = Field(max_length=256)
    # A simulator-only credential, never a real secret: the simulator is a local test double.
    client_secret: str | None = Field(default=None, min_length=1, max_length=256)
    roles: list[str] = Field(default_factory=list, description="Graph application permissions granted")
    api_roles: list[str] = Field(default_factory=list, description="app roles on the tenant's API audience")
    spa_redirect_uris: list[str] = Field(default_factory=list, max_length=256)
    delegated_permissions: list[str] = Field(
        default_factory=list, description="scopes of the tenant's API the app may request (admin-consented)"
    )

    @model_validator(mode="after")
    def _client_type(self) -> AppRegistration:
        if self.client_secret is None and not self.spa_redirect_uris:
            raise ValueError(f"app {self.app_id}: a client secret or spa redirect URIs are required")
        for uri in self.spa_redirect_uris:
            if "#" in uri or not re.match(r"^(https://|http://(localhost|127\.0\.0\.1)[:/])", uri):
                raise ValueError(f"app {self.app_id}: redirect URI {uri!r} must be https (http only on loopback)")
        return self


class ApiRoleAssignment(_Model):
    """An app role of the tenant's API assigned to a user or a group (its direct members), as on the API's
    enterprise application; it becomes the `roles` claim of that user's tokens for the API."""

    principal: str = Field(min_length=1, max_length=256, description="user id or UPN, or group id")
    role: str = Field(min_length=1, max_length=120)


def _check_phones(values: list[str]) -> list[str]:
    for number in values:
        if not E164.match(number):
            raise ValueError(f"phone number {number!r} is not E.164 (+ and 7-15 digits)")
    return values


class User(_Model):
    id: str = Field(min_length=1, max_length=64)
    user_principal_name: str = Field(min_length=3, max_length=256)
    display_name: str = Field(max_length=256)
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None
    job_title: str | None = None
    department: str | None = None
    phone_numbers: list[str] = Field(default_factory=list)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="usageLocation, ISO 3166 alpha-2")
    pstn_connectivity: Literal["none", "callingPlan", "directRouting"] = "none"
    account_enabled: bool = True

    _phones = field_validator("phone_numbers")(_check_phones)


class Group(_Model):
    id: str = Field(min_length=1, max_length=64)
    display_name: str = Field(max_length=256)
    description: str | None = None
    security_enabled: bool = True
    mail_enabled: bool = False
    members: list[str] = Field(default_factory=list, description="user ids or UPNs, or group ids (nested)")


class LoadBalancer(_Model):
    """The bot's side of the network, not Teams': an Azure Load Balancer in front of the recorder's scale set.

    The instance's ``webhook`` is the load-balanced address; each incoming-call notification goes to one backend
    whose health probe answers 200 (probed when the notification is sent), and the answer's ``callbackUri`` pins
    every later notification of that call to the instance that answered (Microsoft's PolicyRecordingBot sample:
    a load-balanced port for ``/api/calling``, a per-instance port for ``callbackUri``; see docs/recorder.md)."""

    backends: list[str] = Field(min_length=1, max_length=16, description="each instance's calling webhook")
    probe_path: str = Field(default="/health", pattern=r"^/[^?#]*$", max_length=256)

    @field_validator("backends")
    @classmethod
    def _http(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith(("http://", "https://")):
                raise ValueError("a backend must be an http(s) URL")
        if len(set(values)) != len(values):
            raise ValueError("backends must be distinct")
        return values


class ApplicationInstance(_Model):
    """A Teams resource account bound to a bot app (New-CsOnlineApplicationInstance)."""

    id: str = Field(min_length=1, max_length=64, description="object id of the resource account")
    user_principal_name: str = Field(min_length=3, max_length=256)
    display_name: str = Field(max_length=256)
    app_id: str = Field(min_length=1, max_length=64, description="the bot's app id")
    webhook: str = Field(min_length=8, max_length=2048, description="the bot's calling webhook")
    phone_numbers: list[str] = Field(default_factory=list)
    load_balancer: LoadBalancer | None = Field(default=None, description="simulator only: instances behind webhook")

    _phones = field_validator("phone_numbers")(_check_phones)

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook must be an http(s) URL")
        return value


class RecordingApplication(_Model):
    """One entry of -ComplianceRecordingApplications (New-CsTeamsComplianceRecordingApplication)."""

    id: str = Field(min_length=1, max_length=64, description="application instance object id")
    required_before_call_establishment: bool = True
    required_before_meeting_join: bool = True
    required_during_call: bool = True
    required_during_meeting: bool = True
    concurrent_invitation_count: int = Field(default=1, ge=1, le=2)
    paired_applications: list[str] = Field(default_factory=list, max_length=1)
    priority: int | None = None

    @model_validator(mode="after")
    def _one_resiliency_mechanism(self) -> RecordingApplication:
        if self.concurrent_invitation_count > 1 and self.paired_applications:
            raise ValueError("use ConcurrentInvitationCount or a paired application, not both")
        return self


class CompliancePolicy(_Model):
    """A TeamsComplianceRecordingPolicy instance; ``name`` without the ``Tag:`` prefix (``Global`` is global)."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^/:]+$")
    enabled: bool = False
    description: str | None = None
    applications: list[RecordingApplication] = Field(default_factory=list)
    warn_user_on_removal: bool = True
    disable_compliance_recording_audio_notification_for_calls: bool = False
    record_rerouted_calls: bool = False
    custom_banner: str | None = None
    custom_prompts_enabled: bool | None = None
    custom_prompts_package_id: str | None = None

    @property
    def identity(self) -> str:
        return "Global" if self.name == "Global" else f"Tag:{self.name}"


class CallingPolicy(_Model):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^/:]+$")
    allow_cloud_recording_for_calls: bool = False
    prevent_compliance_recording: Literal["None", "All"] = "None"

    @property
    def identity(self) -> str:
        return "Global" if self.name == "Global" else f"Tag:{self.name}"


class Assignment(_Model):
    """Grant-Cs<PolicyType> to a user, a group (with rank) or the whole tenant."""

    policy_type: Literal["TeamsComplianceRecordingPolicy", "TeamsCallingPolicy"]
    policy_name: str = Field(min_length=1, max_length=128)
    user: str | None = None
    group: str | None = None
    rank: int | None = Field(default=None, ge=1)
    global_: bool = Field(default=False, alias="global")

    @model_validator(mode="after")
    def _one_scope(self) -> Assignment:
        scopes = [self.user is not None, self.group is not None, self.global_]
        if sum(scopes) != 1:
            raise ValueError("an assignment targets exactly one of user, group or global")
        if self.rank is not None and self.group is None:
            raise ValueError("rank applies to group assignments only")
        return self

    @property
    def scope(self) -> str:
        return "user" if self.user is not None else "group" if self.group is not None else "global"


class TenantModel(_Model):
    tenant: TenantInfo
    api_audience: str = "api://verbatim"
    api_scopes: list[str] = Field(default_factory=lambda: ["user_impersonation"])
    api_role_assignments: list[ApiRoleAssignment] = Field(default_factory=list)
    applications: list[AppRegistration] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    application_instances: list[ApplicationInstance] = Field(default_factory=list)
    compliance_policies: list[CompliancePolicy] = Field(default_factory=list)
    calling_policies: list[CallingPolicy] = Field(default_factory=list)
    assignments: list[Assignment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> TenantModel:
        _unique("user id", [u.id.lower() for u in self.users])
        _unique("user principal name", [u.user_principal_name.lower() for u in self.users])
        _unique("group id", [g.id.lower() for g in self.groups])
        _unique("application instance id", [a.id.lower() for a in self.application_instances])
        _unique("app registration", [a.app_id.lower() for a in self.applications])
        _unique("compliance policy", [p.name.lower() for p in self.compliance_policies])
        _unique("calling policy", [p.name.lower() for p in self.calling_policies])
        principals = {u.id.lower() for u in self.users} | {u.user_principal_name.lower() for u in self.users}
        group_ids = {g.id.lower() for g in self.groups}
        for group in self.groups:
            for member in group.members:
                if member.lower() not in principals | group_ids:
                    raise ValueError(f"group {group.id}: member {member!r} is neither a user nor a group")
        for assignment in self.api_role_assignments:
            if assignment.principal.lower() not in principals | group_ids:
                raise ValueError(f"app role assignment to unknown principal {assignment.principal!r}")
        instances = {a.id.lower() for a in self.application_instances}
        for policy in self.compliance_policies:
            for app in policy.applications:
                for ref in [app.id, *app.paired_applications]:
                    if ref.lower() not in instances:
                        raise ValueError(f"policy {policy.name}: application instance {ref!r} does not exist")
        names = {
            COMPLIANCE: {p.name.lower() for p in self.compliance_policies},
            CALLING: {p.name.lower() for p in self.calling_policies},
        }
        ranks: dict[tuple[str, int], str] = {}
        seen: set[tuple[str, str, str]] = set()
        for a in self.assignments:
            if a.policy_name.lower() not in names[a.policy_type]:
                raise ValueError(f"assignment refers to unknown {a.policy_type} {a.policy_name!r}")
            target = (a.user or a.group or "global").lower()
            key = (a.policy_type, a.scope, target)
            if key in seen:
                raise ValueError(f"{a.policy_type} is assigned twice to {a.scope} {target}")
            seen.add(key)
            if a.user is not None and a.user.lower() not in principals:
                raise ValueError(f"assignment to unknown user {a.user!r}")
            if a.group is not None:
                if a.group.lower() not in group_ids:
                    raise ValueError(f"assignment to unknown group {a.group!r}")
                if a.rank is not None:
                    other = ranks.get((a.policy_type, a.rank))
                    if other is not None:
                        raise ValueError(
                            f"rank {a.rank} for {a.policy_type} is already used by group {other}; ranks are unique"
                        )
                    ranks[(a.policy_type, a.rank)] = a.group
        return self


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what}: {value}")
        seen.add(value)


@dataclass(frozen=True)
class EffectivePolicy:
    """The policy that applies to a user and where it comes from."""

    policy_type: str
    name: str | None
    source: Literal["direct", "group", "global", "default", "none"]
    group_id: str | None = None
    rank: int | None = None

    def dump(self) -> dict[str, Any]:
        return {
            "policyType": self.policy_type,
            "policyName": self.name,
            "source": self.source,
            "groupId": self.group_id,
            "rank": self.rank,
        }


def policy_id(policy_type: str, name: str) -> str:
    """A stable opaque id like Graph's getPolicyId returns (43 url-safe base64 characters)."""
    digest = hashlib.sha256(f"{policy_type.lower()}:{name.lower()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class TenantError(ValueError):
    """An edit that would leave the tenant inconsistent."""


class TenantStore:
    """The current tenant model with lookups, policy resolution and validated edits."""

    def __init__(self, model: TenantModel) -> None:
        self.model = model
        self.listeners: list[Callable[[], None]] = []  # called after every accepted edit
        self._index()

    @classmethod
    def load(cls, path: Path) -> TenantStore:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        return cls(TenantModel.model_validate(data))

    def _index(self) -> None:
        m = self.model
        self.users_by_key = {u.id.lower(): u for u in m.users} | {u.user_principal_name.lower(): u for u in m.users}
        self.users_by_phone = {p: u for u in m.users for p in u.phone_numbers}
        self.groups_by_id = {g.id.lower(): g for g in m.groups}
        self.instances_by_id = {a.id.lower(): a for a in m.application_instances}
        self.apps_by_id = {a.app_id.lower(): a for a in m.applications}
        self.compliance_by_name = {p.name.lower(): p for p in m.compliance_policies}
        self.calling_by_name = {p.name.lower(): p for p in m.calling_policies}

    # -- lookups --------------------------------------------------------------------------------------
    def user(self, key: str) -> User | None:
        return self.users_by_key.get(key.lower())

    def group(self, group_id: str) -> Group | None:
        return self.groups_by_id.get(group_id.lower())

    def instance(self, instance_id: str) -> ApplicationInstance | None:
        return self.instances_by_id.get(instance_id.lower())

    def app_registration(self, app_id: str) -> AppRegistration | None:
        return self.apps_by_id.get(app_id.lower())

    def api_roles_of(self, user: User) -> list[str]:
        """The API's app roles assigned to `user` directly or to a group it is a direct member of (Entra does
        not carry app role assignments to members of nested groups)."""
        keys = {user.id.lower(), user.user_principal_name.lower()}
        groups = {g.id.lower() for g in self.model.groups if keys & {m.lower() for m in g.members}}
        return sorted({a.role for a in self.model.api_role_assignments if a.principal.lower() in keys | groups})

    def compliance_policy(self, name: str) -> CompliancePolicy | None:
        return self.compliance_by_name.get(name.removeprefix("Tag:").lower())

    def calling_policy(self, name: str) -> CallingPolicy | None:
        return self.calling_by_name.get(name.removeprefix("Tag:").lower())

    def policy_by_id(self, policy_type: str, pid: str) -> str | None:
        names: Iterable[str]
        if policy_type.lower() == COMPLIANCE.lower():
            names = [p.name for p in self.model.compliance_policies]
        elif policy_type.lower() == CALLING.lower():
            names = [p.name for p in self.model.calling_policies]
        else:
            return None
        for name in names:
            if policy_id(policy_type, name) == pid:
                return name
        return None

    def direct_member_ids(self, group: Group) -> list[str]:
        """Users that are direct members (group policy assignment ignores nested groups)."""
        out = []
        for member in group.members:
            user = self.user(member)
            if user is not None:
                out.append(user.id)
        return out

    def transitive_members(self, group: Group) -> list[User | Group]:
        """All users and groups below ``group``, each once, in a stable order."""
        seen: set[str] = {group.id.lower()}
        out: list[User | Group] = []
        stack = list(reversed(group.members))
        while stack:
            key = stack.pop().lower()
            user = self.users_by_key.get(key)
            if user is not None:
                if user.id.lower() not in seen:
                    seen.add(user.id.lower())
                    out.append(user)
                continue
            nested = self.groups_by_id.get(key)
            if nested is not None and nested.id.lower() not in seen:
                seen.add(nested.id.lower())
                out.append(nested)
                stack.extend(reversed(nested.members))
        return out

    # -- precedence -----------------------------------------------------------------------------------
    def effective(self, user: User, policy_type: str) -> EffectivePolicy:
        """Teams' precedence: direct user > group by rank (1 wins; unranked last) > global > ``Global``."""
        mine = [a for a in self.model.assignments if a.policy_type == policy_type]
        keys = {user.id.lower(), user.user_principal_name.lower()}
        for a in mine:
            if a.user is not None and a.user.lower() in keys:
                return EffectivePolicy(policy_type, a.policy_name, "direct")
        candidates: list[tuple[int, int, Assignment]] = []
        for order, a in enumerate(mine):
            if a.group is None:
                continue
            group = self.group(a.group)
            if group is not None and user.id in self.direct_member_ids(group):
                candidates.append((a.rank if a.rank is not None else 1_000_000, order, a))
        if candidates:
            _, _, best = min(candidates, key=lambda c: (c[0], c[1]))
            return EffectivePolicy(policy_type, best.policy_name, "group", best.group, best.rank)
        for a in mine:
            if a.global_:
                return EffectivePolicy(policy_type, a.policy_name, "global")
        lookup = self.compliance_policy if policy_type == COMPLIANCE else self.calling_policy
        if lookup("Global") is not None:
            return EffectivePolicy(policy_type, "Global", "default")
        return EffectivePolicy(policy_type, None, "none")

    def recording_policy(self, user: User) -> CompliancePolicy | None:
        """The effective compliance policy if it is enabled and names at least one recorder."""
        effective = self.effective(user, COMPLIANCE)
        if effective.name is None:
            return None
        policy = self.compliance_policy(effective.name)
        if policy is None or not policy.enabled or not policy.applications:
            return None
        return policy

    # -- edits ----------------------------------------------------------------------------------------
    def replace(self, data: dict[str, Any]) -> None:
        try:
            model = TenantModel.model_validate(data)
        except ValueError as error:
            raise TenantError(str(error)) from error
        self.model = model
        self._index()
        for listener in self.listeners:
            listener()

    def snapshot(self) -> dict[str, Any]:
        return self.model.dump()

    def upsert(self, collection: str, key_field: str, key: str, item: dict[str, Any]) -> None:
        data = self.snapshot()
        items: list[dict[str, Any]] = data.setdefault(collection, [])
        item = {**item, key_field: item.get(key_field, key)}
        if str(item[key_field]).lower() != key.lower():
            raise TenantError(f"{key_field} in the body ({item[key_field]}) differs from the URL ({key})")
        for index, existing in enumerate(items):
            if str(existing.get(key_field, "")).lower() == key.lower():
                items[index] = item
                break
        else:
            items.append(item)
        self.replace(data)

    def delete(self, collection: str, key_field: str, key: str) -> bool:
        data = self.snapshot()
        items: list[dict[str, Any]] = data.get(collection, [])
        kept = [i for i in items if str(i.get(key_field, "")).lower() != key.lower()]
        if len(kept) == len(items):
            return False
        data[collection] = kept
        self.replace(data)
        return True

    def set_assignment(self, assignment: Assignment) -> None:
        """Add or replace the assignment of this policy type to the same user/group/global scope."""
        data = self.snapshot()
        target = (assignment.user or assignment.group or "global").lower()
        kept = [
            a
            for a in data.get("assignments", [])
            if not (
                a["policyType"] == assignment.policy_type
                and _scope_of(a) == assignment.scope
                and str(a.get("user") or a.get("group") or "global").lower() == target
            )
        ]
        kept.append(assignment.dump())
        data["assignments"] = kept
        self.replace(data)

    def remove_assignment(self, policy_type: str, scope: str, target: str) -> bool:
        data = self.snapshot()
        before = data.get("assignments", [])
        kept = [
            a
            for a in before
            if not (
                a["policyType"].lower() == policy_type.lower()
                and _scope_of(a) == scope
                and str(a.get("user") or a.get("group") or "global").lower() == target.lower()
            )
        ]
        if len(kept) == len(before):
            return False
        data["assignments"] = kept
        self.replace(data)
        return True


def _scope_of(assignment: dict[str, Any]) -> str:
    if assignment.get("user") is not None:
        return "user"
    if assignment.get("group") is not None:
        return "group"
    return "global"
