"""The tenant over HTTP: Graph directory reads used by policy automation (``/users``,
``/groups/{id}/transitiveMembers`` with paging), the Teams policy assignment API (beta, and its v1.0
counterpart), and the simulator's own ``/sim/...`` routes that read and edit the tenant model."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from .identity import Identity
from .odata import (
    GraphError,
    bad_request,
    base_url,
    decode_skiptoken,
    encode_skiptoken,
    not_found,
    page_size,
    read_json,
    read_model,
    validate,
)
from .tenant import (
    CALLING,
    COMPLIANCE,
    ApplicationInstance,
    AppRegistration,
    Assignment,
    CallingPolicy,
    CompliancePolicy,
    Group,
    TenantError,
    TenantStore,
    User,
    policy_id,
)

USER_READ = ("User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All")
GROUP_READ = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All")
POLICY_ASSIGN = ("TeamsPolicyUserAssign.ReadWrite.All",)
DEFAULT_USER_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

# collection name in /sim/... -> (key field, pydantic model)
SIM_COLLECTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "users": ("id", User),
    "groups": ("id", Group),
    "applicationInstances": ("id", ApplicationInstance),
    "applications": ("appId", AppRegistration),
    "compliancePolicies": ("name", CompliancePolicy),
    "callingPolicies": ("name", CallingPolicy),
}


def user_json(user: User, select: list[str] | None = None) -> dict[str, Any]:
    full: dict[str, Any] = {
        "id": user.id,
        "businessPhones": list(user.phone_numbers),
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": user.job_title,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "usageLocation": user.country,
        "accountEnabled": user.account_enabled,
        "department": user.department,
        "country": user.country,
    }
    fields = select or list(DEFAULT_USER_FIELDS)
    return {k: full.get(k) for k in fields}


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "securityEnabled": group.security_enabled,
        "mailEnabled": group.mail_enabled,
        "groupTypes": [],
    }


_FILTER_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")
_FILTER_STARTS = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$")
_FILTERABLE = {"id", "userPrincipalName", "displayName", "mail", "usageLocation", "department", "jobTitle"}


def _user_filter(expression: str | None) -> tuple[str, str, str] | None:
    if not expression:
        return None
    for op, pattern in (("eq", _FILTER_EQ), ("startswith", _FILTER_STARTS)):
        match = pattern.match(expression)
        if match:
            field, value = match.group(1), match.group(2).replace("''", "'")
            if field not in _FILTERABLE:
                raise bad_request(
                    f"Filtering on '{field}' is not supported by the simulator.", "Request_UnsupportedQuery"
                )
            return op, field, value
    raise bad_request(
        "Unsupported $filter: the simulator supports \"<property> eq '<value>'\" and "
        "\"startswith(<property>,'<value>')\".",
        "Request_UnsupportedQuery",
    )


class AssignItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    odata_type: str | None = Field(default=None, alias="@odata.type")
    user_id: str = Field(alias="userId", min_length=1)
    policy_type: str = Field(alias="policyType", min_length=1)
    policy_id: str | None = Field(default=None, alias="policyId")


class AssignBody(BaseModel):
    value: list[AssignItem] = Field(min_length=1, max_length=1000)


class AssignmentRemoval(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    policy_type: str = Field(alias="policyType")
    user: str | None = None
    group: str | None = None
    global_: bool = Field(default=False, alias="global")


_POLICY_ID_CALL = re.compile(
    r"^(?:microsoft\.graph\.teamsAdministration\.)?getPolicyId\((.*)\)$",
)
_FN_ARG = re.compile(r"(\w+)\s*=\s*'((?:[^']|'')*)'")


class Directory:
    def __init__(self, tenant: TenantStore, identity: Identity) -> None:
        self.tenant = tenant
        self.identity = identity

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for version in ("v1.0", "beta"):
            routes += [
                web.get(f"/{version}/users", self.list_users),
                web.get(f"/{version}/users/{{key}}", self.get_user),
                web.get(f"/{version}/groups", self.list_groups),
                web.get(f"/{version}/groups/{{gid}}", self.get_group),
                web.get(f"/{version}/groups/{{gid}}/members", self.members),
                web.get(f"/{version}/groups/{{gid}}/transitiveMembers", self.members),
                web.get(f"/{version}/groups/{{gid}}/transitiveMembers/microsoft.graph.user", self.members),
                web.post(f"/{version}/admin/teams/policy/userAssignments/assign", self.assign),
                web.post(f"/{version}/admin/teams/policy/userAssignments/unassign", self.unassign),
                web.get(f"/{version}/admin/teams/policy/{{fn}}", self.get_policy_id),
            ]
        routes += [
            web.get("/sim/tenant", self.sim_get_tenant),
            web.put("/sim/tenant", self.sim_put_tenant),
            web.get("/sim/assignments", self.sim_list_assignments),
            web.post("/sim/assignments", self.sim_set_assignment),
            web.delete("/sim/assignments", self.sim_remove_assignment),
            web.get("/sim/users/{key}/effectivePolicies", self.sim_effective),
        ]
        for name in SIM_COLLECTIONS:
            routes += [
                web.get(f"/sim/{name}", self.sim_list),
                web.get(f"/sim/{name}/{{key}}", self.sim_get),
                web.put(f"/sim/{name}/{{key}}", self.sim_put),
                web.delete(f"/sim/{name}/{{key}}", self.sim_delete),
            ]
        return routes

    # -- Graph: users and groups ----------------------------------------------------------------------
    def _select(self, request: web.Request) -> list[str] | None:
        raw = request.query.get("$select")
        return [s.strip() for s in raw.split(",") if s.strip()] if raw else None

    def _page(
        self, request: web.Request, items: list[dict[str, Any]], context: str, default: int = 100
    ) -> web.Response:
        size = page_size(request, default, 999)
        start = 0
        token = request.query.get("$skiptoken")
        if token:
            start = int(decode_skiptoken(token).get("offset", 0))
        chunk = items[start : start + size]
        body: dict[str, Any] = {"@odata.context": f"{base_url(request)}/v1.0/$metadata#{context}", "value": chunk}
        if start + size < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)

    async def list_users(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *USER_READ)
        criterion = _user_filter(request.query.get("$filter"))
        select = self._select(request)
        out = []
        for user in self.tenant.model.users:
            if criterion is not None:
                op, field, value = criterion
                actual = str(user_json(user, [field]).get(field) or "")
                if op == "eq" and actual.lower() != value.lower():
                    continue
                if op == "startswith" and not actual.lower().startswith(value.lower()):
                    continue
            out.append(user_json(user, select))
        return self._page(request, out, "users")

    async def get_user(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *USER_READ)
        user = self.tenant.user(request.match_info["key"])
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{request.match_info['key']}' does not exist.")
        return web.json_response(user_json(user, self._select(request)))

    async def list_groups(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *GROUP_READ)
        return self._page(request, [group_json(g) for g in self.tenant.model.groups], "groups")

    async def get_group(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *GROUP_READ)
        return web.json_response(group_json(self._group(request)))

    def _group(self, request: web.Request) -> Group:
        group = self.tenant.group(request.match_info["gid"])
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{request.match_info['gid']}' does not exist.")
        return group

    async def members(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *GROUP_READ)
        group = self._group(request)
        transitive = "/transitiveMembers" in request.path
        users_only = request.path.endswith("/microsoft.graph.user")
        if transitive:
            found = self.tenant.transitive_members(group)
        else:
            found = []
            for key in group.members:
                member = self.tenant.user(key) or self.tenant.group(key)
                if member is not None:
                    found.append(member)
        select = self._select(request)
        out: list[dict[str, Any]] = []
        for member in found:
            if isinstance(member, User):
                out.append({"@odata.type": "#microsoft.graph.user", **user_json(member, select)})
            elif not users_only:
                out.append({"@odata.type": "#microsoft.graph.group", **group_json(member)})
        kind = "transitiveMembers" if transitive else "members"
        return self._page(request, out, f"directoryObjects/{kind}")

    # -- Graph: Teams policy assignment ---------------------------------------------------------------
    def _policy_type(self, raw: str) -> str:
        for known in (COMPLIANCE, CALLING):
            if raw.lower() == known.lower():
                return known
        raise bad_request(
            f"Policy type '{raw}' is not supported by the simulator (supported: {COMPLIANCE}, {CALLING}).",
            "InvalidPolicyType",
        )

    async def get_policy_id(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *POLICY_ASSIGN)
        match = _POLICY_ID_CALL.match(request.match_info["fn"])
        if not match:
            raise not_found(f"Resource not found for the segment '{request.match_info['fn']}'.")
        args = {k.lower(): v.replace("''", "'") for k, v in _FN_ARG.findall(match.group(1))}
        if "type" not in args or "name" not in args:
            raise bad_request("getPolicyId needs type='<policyType>' and name='<policyName>'.")
        policy_type = self._policy_type(args["type"])
        name = args["name"].removeprefix("Tag:")
        lookup = self.tenant.compliance_policy if policy_type == COMPLIANCE else self.tenant.calling_policy
        policy = lookup(name)
        if policy is None:
            raise not_found(f"No {policy_type} named '{name}'.", "PolicyNotFound")
        return web.json_response(
            {
                "@odata.context": f"{base_url(request)}/beta/$metadata#Collection("
                "microsoft.graph.teamsAdministration.policyIdentifierDetail)",
                "value": [
                    {
                        "@odata.type": "#microsoft.graph.teamsAdministration.policyIdentifierDetail",
                        "name": policy.identity,
                        "policyId": policy_id(policy_type, policy.name),
                    }
                ],
            }
        )

    async def assign(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *POLICY_ASSIGN)
        body = await read_model(request, AssignBody)
        planned: list[Assignment] = []
        for index, item in enumerate(body.value):
            user = self.tenant.user(item.user_id)
            if user is None:
                raise bad_request(f"value[{index}]: user '{item.user_id}' does not exist.", "UserNotFound")
            policy_type = self._policy_type(item.policy_type)
            if not item.policy_id:
                raise bad_request(f"value[{index}]: policyId is required.")
            name = self.tenant.policy_by_id(policy_type, item.policy_id)
            if name is None:
                raise bad_request(
                    f"value[{index}]: no {policy_type} has policyId '{item.policy_id}'.", "PolicyNotFound"
                )
            planned.append(Assignment(policy_type=policy_type, policy_name=name, user=user.id))
        try:
            for assignment in planned:
                self._clear_direct(assignment.policy_type, assignment.user or "")
                self.tenant.set_assignment(assignment)
        except TenantError as error:
            raise bad_request(str(error)) from error
        return web.Response(status=204)

    def _clear_direct(self, policy_type: str, user_id: str) -> None:
        user = self.tenant.user(user_id)
        if user is None:
            return
        for key in (user.id, user.user_principal_name):
            self.tenant.remove_assignment(policy_type, "user", key)

    async def unassign(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *POLICY_ASSIGN)
        body = await read_model(request, AssignBody)
        for index, item in enumerate(body.value):
            user = self.tenant.user(item.user_id)
            if user is None:
                raise bad_request(f"value[{index}]: user '{item.user_id}' does not exist.", "UserNotFound")
            self._clear_direct(self._policy_type(item.policy_type), user.id)
        return web.Response(status=204)

    # -- /sim: the tenant model -----------------------------------------------------------------------
    async def sim_get_tenant(self, request: web.Request) -> web.Response:
        return web.json_response(self.tenant.snapshot())

    async def sim_put_tenant(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise bad_request("The tenant must be a JSON object.")
        try:
            self.tenant.replace(data)
        except TenantError as error:
            raise bad_request(str(error), "InvalidTenant") from error
        return web.json_response(self.tenant.snapshot())

    def _collection(self, request: web.Request) -> tuple[str, str, type[BaseModel]]:
        name = request.path.split("/")[2]
        key_field, model = SIM_COLLECTIONS[name]
        return name, key_field, model

    async def sim_list(self, request: web.Request) -> web.Response:
        name, _, _ = self._collection(request)
        return web.json_response({"value": self.tenant.snapshot().get(name, [])})

    async def sim_get(self, request: web.Request) -> web.Response:
        name, key_field, _ = self._collection(request)
        key = request.match_info["key"]
        for item in self.tenant.snapshot().get(name, []):
            if str(item.get(key_field, "")).lower() == key.lower():
                return web.json_response(item)
            if name == "users" and str(item.get("userPrincipalName", "")).lower() == key.lower():
                return web.json_response(item)
        raise not_found(f"No {name} item '{key}'.")

    async def sim_put(self, request: web.Request) -> web.Response:
        name, key_field, model = self._collection(request)
        key = request.match_info["key"]
        data = await read_json(request)
        if not isinstance(data, dict):
            raise bad_request("The body must be a JSON object.")
        data.setdefault(key_field, key)
        item = validate(model, data)
        try:
            self.tenant.upsert(name, key_field, key, item.model_dump(by_alias=True, mode="json", exclude_none=True))
        except TenantError as error:
            raise bad_request(str(error), "InvalidTenant") from error
        return web.json_response(item.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def sim_delete(self, request: web.Request) -> web.Response:
        name, key_field, _ = self._collection(request)
        key = request.match_info["key"]
        try:
            deleted = self.tenant.delete(name, key_field, key)
        except TenantError as error:
            raise GraphError(409, "Conflict", f"Cannot delete {name} '{key}': {error}") from error
        if not deleted:
            raise not_found(f"No {name} item '{key}'.")
        return web.Response(status=204)

    async def sim_list_assignments(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.tenant.snapshot().get("assignments", [])})

    async def sim_set_assignment(self, request: web.Request) -> web.Response:
        assignment = await read_model(request, Assignment)
        if assignment.user is not None:
            user = self.tenant.user(assignment.user)
            if user is None:
                raise bad_request(f"User '{assignment.user}' does not exist.")
            self._clear_direct(assignment.policy_type, user.id)
            assignment = assignment.model_copy(update={"user": user.id})
        try:
            self.tenant.set_assignment(assignment)
        except TenantError as error:
            raise bad_request(str(error), "InvalidTenant") from error
        return web.json_response(assignment.dump(), status=201)

    async def sim_remove_assignment(self, request: web.Request) -> web.Response:
        body = await read_model(request, AssignmentRemoval)
        policy_type = self._policy_type(body.policy_type)
        if body.user is not None:
            user = self.tenant.user(body.user)
            removed = False
            if user is not None:
                for key in (user.id, user.user_principal_name):
                    removed = self.tenant.remove_assignment(policy_type, "user", key) or removed
        elif body.group is not None:
            removed = self.tenant.remove_assignment(policy_type, "group", body.group)
        elif body.global_:
            removed = self.tenant.remove_assignment(policy_type, "global", "global")
        else:
            raise bad_request("Say which assignment to remove: user, group or global.")
        if not removed:
            raise not_found("No such assignment.")
        return web.Response(status=204)

    async def sim_effective(self, request: web.Request) -> web.Response:
        user = self.tenant.user(request.match_info["key"])
        if user is None:
            raise not_found(f"No user '{request.match_info['key']}'.")
        compliance = self.tenant.effective(user, COMPLIANCE)
        calling = self.tenant.effective(user, CALLING)
        policy = self.tenant.recording_policy(user)
        recorders = []
        if policy is not None:
            for app in policy.applications:
                recorders.append(
                    {
                        "applicationInstanceId": app.id,
                        "pairedApplications": app.paired_applications,
                        "concurrentInvitationCount": app.concurrent_invitation_count,
                    }
                )
        calling_policy = self.tenant.calling_policy(calling.name) if calling.name else None
        return web.json_response(
            {
                "userId": user.id,
                "userPrincipalName": user.user_principal_name,
                "compliance": compliance.dump(),
                "calling": calling.dump(),
                "recorded": policy is not None,
                "recorders": recorders,
                "allowCloudRecordingForCalls": bool(calling_policy and calling_policy.allow_cloud_recording_for_calls),
            }
        )
