"""Graph's Teams user configurations (``/admin/teams/userConfigurations``): every Teams account of the
tenant with its effective policy assignments, resolved by the tenant's own precedence rules — the same
resolution that decides which recorders are invited into a user's calls."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from .clock import Clock
from .identity import Identity
from .odata import GraphError, bad_request, base_url, decode_skiptoken, encode_skiptoken, format_datetime, page_size
from .tenant import CALLING, COMPLIANCE, ApplicationInstance, TenantStore, User, policy_id

USER_CONFIGURATION_READ = ("TeamsUserConfiguration.Read.All",)
# Policy types the tenant model knows, listed in name order as in the documented example.
POLICY_TYPES = (CALLING, COMPLIANCE)
PROPERTIES = (
    "id",
    "userPrincipalName",
    "tenantId",
    "effectivePolicyAssignments",
    "telephoneNumbers",
    "isEnterpriseVoiceEnabled",
    "featureTypes",
    "accountType",
    "createdDateTime",
    "modifiedDateTime",
)
# Microsoft documents $filter, $expand and $orderby for the list but not which properties they take;
# the simulator refuses them rather than guess (a client that relies on one fails loudly here).
UNSUPPORTED_OPTIONS = ("$filter", "$expand", "$orderby", "$search", "$skip", "$count")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 999
NAMESPACE = "microsoft.graph.teamsAdministration.teamsUserConfiguration"


def effective_policy_assignments(tenant: TenantStore, user: User) -> list[dict[str, Any]]:
    """`effectivePolicyAssignments` of a user: direct and group assignments, as Graph's `assignmentType`
    says (`direct`, `group`). A user who falls back to the tenant-wide grant or the Global policy has no
    entry for that policy type: the documented enum has no value for it, and Teams' effective-policy
    cmdlet (Get-CsUserPolicyAssignment) likewise returns nothing when the global default applies."""
    out: list[dict[str, Any]] = []
    for policy_type in POLICY_TYPES:
        effective = tenant.effective(user, policy_type)
        if effective.source not in ("direct", "group") or effective.name is None:
            continue
        lookup = tenant.compliance_policy if policy_type == COMPLIANCE else tenant.calling_policy
        policy = lookup(effective.name)
        name = policy.name if policy is not None else effective.name
        assignment: dict[str, Any] = {
            "displayName": name,
            "assignmentType": effective.source,
            "policyId": policy_id(policy_type, name),
        }
        if effective.group_id is not None:
            group = tenant.group(effective.group_id)
            assignment["groupId"] = group.id if group is not None else effective.group_id
        out.append({"policyType": policy_type, "policyAssignment": assignment})
    return out


def _telephone_numbers(numbers: list[str]) -> list[dict[str, str]]:
    return [
        {"telephoneNumber": number, "assignmentCategory": "primary" if index == 0 else "alternate"}
        for index, number in enumerate(numbers)
    ]


def _user_configuration(tenant: TenantStore, user: User) -> dict[str, Any]:
    features = ["Teams"]
    if user.pstn_connectivity != "none":
        features.append("PhoneSystem")
    if user.pstn_connectivity == "callingPlan":
        features.append("CallingPlan")
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "tenantId": tenant.model.tenant.id,
        "effectivePolicyAssignments": effective_policy_assignments(tenant, user),
        "telephoneNumbers": _telephone_numbers(user.phone_numbers),
        "isEnterpriseVoiceEnabled": user.pstn_connectivity != "none",
        "featureTypes": features,
        "accountType": "user",
    }


def _resource_account(tenant: TenantStore, instance: ApplicationInstance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "userPrincipalName": instance.user_principal_name,
        "tenantId": tenant.model.tenant.id,
        "effectivePolicyAssignments": [],
        "telephoneNumbers": _telephone_numbers(instance.phone_numbers),
        "isEnterpriseVoiceEnabled": bool(instance.phone_numbers),
        "featureTypes": ["Teams"],
        "accountType": "resourceAccount",
    }


class UserConfigurations:
    """The routes, and when each account was first seen and last changed (on the simulator's clock)."""

    def __init__(self, tenant: TenantStore, identity: Identity, clock: Clock) -> None:
        self.tenant = tenant
        self.identity = identity
        self.clock = clock
        self._stamps: dict[str, tuple[str, datetime, datetime]] = {}  # id -> (fingerprint, created, modified)
        self._restamp()
        tenant.listeners.append(self._restamp)

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for version in ("v1.0", "beta"):
            routes += [
                web.get(f"/{version}/admin/teams/userConfigurations", self.list_configurations),
                web.get(f"/{version}/admin/teams/userConfigurations/{{key}}", self.get_configuration),
            ]
        return routes

    def accounts(self) -> list[dict[str, Any]]:
        """Every account's configuration without its timestamps: users, then resource accounts."""
        users = [_user_configuration(self.tenant, u) for u in self.tenant.model.users]
        return users + [_resource_account(self.tenant, i) for i in self.tenant.model.application_instances]

    def _restamp(self) -> None:
        now = self.clock.now()
        stamps: dict[str, tuple[str, datetime, datetime]] = {}
        for account in self.accounts():
            fingerprint = hashlib.sha256(json.dumps(account, sort_keys=True).encode()).hexdigest()
            known = self._stamps.get(account["id"].lower())
            if known is None:
                stamps[account["id"].lower()] = (fingerprint, now, now)
            elif known[0] != fingerprint:
                stamps[account["id"].lower()] = (fingerprint, known[1], now)
            else:
                stamps[account["id"].lower()] = known
        self._stamps = stamps

    def _stamped(self, account: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        _, created, modified = self._stamps.get(account["id"].lower(), ("", self.clock.now(), self.clock.now()))
        full = {**account, "createdDateTime": format_datetime(created), "modifiedDateTime": format_datetime(modified)}
        return {k: full[k] for k in select} if select else full

    def _select(self, request: web.Request) -> list[str] | None:
        raw = request.query.get("$select")
        if not raw:
            return None
        fields = [s.strip() for s in raw.split(",") if s.strip()]
        for name in fields:
            if name not in PROPERTIES:
                raise bad_request(f"Could not find a property named '{name}' on type '{NAMESPACE}'.")
        return fields

    async def list_configurations(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *USER_CONFIGURATION_READ)
        for option in UNSUPPORTED_OPTIONS:
            if option in request.query:
                raise bad_request(
                    f"The simulator does not support {option} on userConfigurations: Microsoft does not document "
                    "which properties it takes.",
                    "Request_UnsupportedQuery",
                )
        select = self._select(request)
        accounts = self.accounts()
        size = page_size(request, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        token = request.query.get("$skiptoken")
        start = int(decode_skiptoken(token).get("offset", 0)) if token else 0
        version = request.path.split("/")[1]
        body: dict[str, Any] = {
            "@odata.context": f"{base_url(request)}/{version}/$metadata#admin/teams/userConfigurations",
            "value": [self._stamped(a, select) for a in accounts[start : start + size]],
        }
        if start + size < len(accounts):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)

    async def get_configuration(self, request: web.Request) -> web.Response:
        """One account by its Entra object id (the documented key), as an entity at the top level."""
        self.identity.authorize(request, *USER_CONFIGURATION_READ)
        key = request.match_info["key"]
        account = next((a for a in self.accounts() if a["id"].lower() == key.lower()), None)
        if account is None:
            raise GraphError(404, "NotFound", f"No Teams user configuration with id '{key}'.")
        version = request.path.split("/")[1]
        context = f"{base_url(request)}/{version}/$metadata#admin/teams/userConfigurations/$entity"
        return web.json_response({"@odata.context": context, **self._stamped(account, self._select(request))})
