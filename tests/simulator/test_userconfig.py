"""Graph's Teams user configurations (`/admin/teams/userConfigurations`): shaped like Microsoft's documented
example, paged, guarded by TeamsUserConfiguration.Read.All, and carrying the effective policy assignments
of the simulator's own precedence rules — after /sim edits and after the beta assignment API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.simulator.tenant import CALLING, COMPLIANCE
from devstack.simulator.userconfig import PROPERTIES
from tests.simulator.harness import (
    CORA,
    FRONT_OFFICE,
    FUNCTIONS_APP,
    FUNCTIONS_SECRET,
    NED,
    RECORDER_APP,
    RECORDER_INSTANCE,
    RECORDER_SECRET,
    TARA,
    TENANT_ID,
    TOM,
    TRADERS,
    UNA,
    SimClient,
)
from tests.simulator.shapes import extra_names, fixture, missing_or_mistyped

pytestmark = pytest.mark.integration

Run = Callable[[Callable[[SimClient], Any]], None]
LIST = "/v1.0/admin/teams/userConfigurations"
# Every property of teamsUserConfiguration, effectivePolicyAssignment, policyAssignment and
# assignedTelephoneNumber (Graph v1.0 resource pages).
DOCUMENTED = set(PROPERTIES) | {
    "policyType",
    "policyAssignment",
    "assignmentType",
    "displayName",
    "groupId",
    "policyId",
    "telephoneNumber",
    "assignmentCategory",
}


async def all_configurations(sim: SimClient, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    status, page, _ = await sim.graph("GET", LIST, params=params)
    while True:
        assert status == 200, page
        items += page["value"]
        if "@odata.nextLink" not in page:
            return items
        status, page, _ = await sim.graph("GET", page["@odata.nextLink"])


async def assignments_of(sim: SimClient, user_id: str) -> dict[str, dict[str, Any]]:
    """policy type → policyAssignment, from the single-user route."""
    status, body, _ = await sim.graph("GET", f"{LIST}/{user_id}")
    assert status == 200, body
    return {a["policyType"]: a["policyAssignment"] for a in body["effectivePolicyAssignments"]}


async def policy_id(sim: SimClient, name: str) -> str:
    path = f"/beta/admin/teams/policy/getPolicyId(type='{COMPLIANCE}',name='{name}')"
    status, body, _ = await sim.graph("GET", path)
    assert status == 200, body
    return str(body["value"][0]["policyId"])


async def fresh_token(sim: SimClient, app_id: str, secret: str) -> str:
    """A new token (the client caches tokens; roles are read when a token is issued)."""
    status, body, _ = await sim.request(
        "POST",
        f"/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert status == 200, body
    return str(body["access_token"])


async def agrees_with_the_simulators_resolution(sim: SimClient) -> None:
    """Every user's entries say what /sim/users/{id}/effectivePolicies (the resolution that decides
    invitations) says: an entry for direct and group sources, none for the tenant default."""
    for item in await all_configurations(sim):
        if item["accountType"] != "user":
            continue
        effective = await sim.ok("GET", f"/sim/users/{item['id']}/effectivePolicies")
        entries = {a["policyType"]: a["policyAssignment"] for a in item["effectivePolicyAssignments"]}
        for policy_type, resolved in ((COMPLIANCE, effective["compliance"]), (CALLING, effective["calling"])):
            if resolved["source"] in ("direct", "group"):
                entry = entries[policy_type]
                assert (entry["displayName"], entry["assignmentType"], entry.get("groupId")) == (
                    resolved["policyName"],
                    resolved["source"],
                    resolved["groupId"],
                ), (item["userPrincipalName"], policy_type)
            else:
                assert policy_type not in entries, (item["userPrincipalName"], policy_type)


def test_user_configurations_match_microsofts_documented_examples_field_by_field(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        # Ned: a calling policy through the Front Office group, then a direct compliance policy — the
        # same two kinds of entry, in the same order, as the documented example.
        ned = next(i for i in await all_configurations(sim) if i["id"] == NED)
        documented = fixture("teams-user-configurations-list.json")["value"][0]
        assert missing_or_mistyped(ned, documented) == []
        assert extra_names(ned, documented) <= DOCUMENTED
        status, single, _ = await sim.graph("GET", f"{LIST}/{NED}")
        assert status == 200
        assert missing_or_mistyped(single, fixture("teams-user-configuration-get.json")["value"]) == []
        assert single["@odata.context"].endswith("/v1.0/$metadata#admin/teams/userConfigurations/$entity")
        assert {k: v for k, v in single.items() if k != "@odata.context"} == ned
        assert ned["tenantId"] == TENANT_ID and ned["accountType"] == "user"
        assert ned["telephoneNumbers"] == [{"telephoneNumber": "+14255550103", "assignmentCategory": "primary"}]
        assert ned["isEnterpriseVoiceEnabled"] is True and ned["featureTypes"] == [
            "Teams",
            "PhoneSystem",
            "CallingPlan",
        ]
        compliance = {a["policyType"]: a["policyAssignment"] for a in ned["effectivePolicyAssignments"]}[COMPLIANCE]
        assert compliance["policyId"] == await policy_id(sim, "AdvisoryRecording")  # the id getPolicyId gives

    run(body)


def test_user_configurations_page_with_top_and_next_links(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        status, first, _ = await sim.graph("GET", LIST, params={"$top": "2"})
        assert status == 200 and len(first["value"]) == 2 and "$skiptoken" in first["@odata.nextLink"]
        assert first["@odata.context"].endswith("/v1.0/$metadata#admin/teams/userConfigurations")
        everything = await all_configurations(sim, **{"$top": "2"})
        ids = [i["id"] for i in everything]
        assert len(ids) == len(set(ids)) == 9  # eight users and the recorder's resource account
        assert {TOM, TARA, NED, UNA, CORA, RECORDER_INSTANCE} <= set(ids)
        assert [i["accountType"] for i in everything if i["id"] == RECORDER_INSTANCE] == ["resourceAccount"]
        assert ids == [i["id"] for i in await all_configurations(sim)]  # one default page, same order
        selected = await all_configurations(sim, **{"$select": "id,effectivePolicyAssignments", "$top": "4"})
        assert {frozenset(i) for i in selected} == {frozenset({"id", "effectivePolicyAssignments"})}
        for params, code in (
            ({"$filter": "accountType eq 'user'"}, "Request_UnsupportedQuery"),
            ({"$select": "nonsense"}, "BadRequest"),
            ({"$top": "0"}, "BadRequest"),
        ):
            status, error, _ = await sim.graph("GET", LIST, params=params)
            assert (status, error["error"]["code"]) == (400, code), params
        status, error, _ = await sim.graph("GET", f"{LIST}/00000000-0000-4000-8000-000000000000")
        assert status == 404 and error["error"]["code"] == "NotFound"
        status, beta, _ = await sim.graph("GET", f"/beta/admin/teams/userConfigurations/{TOM}")
        assert status == 200 and beta["@odata.context"].endswith(
            "/beta/$metadata#admin/teams/userConfigurations/$entity"
        )

    run(body)


def test_user_configurations_need_a_graph_token_with_teams_user_configuration_read_all(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        for path in (LIST, f"{LIST}/{TOM}"):
            status, error, headers = await sim.request("GET", path)
            assert status == 401 and error["error"]["code"] == "InvalidAuthenticationToken"
            assert "Bearer" in headers["WWW-Authenticate"]
        recorder = await sim.token(RECORDER_APP, RECORDER_SECRET)
        status, error, _ = await sim.request("GET", LIST, token=recorder)
        assert status == 403 and "TeamsUserConfiguration.Read.All" in error["error"]["message"]
        # the Function App without that one permission: the policy assignment permission does not stand in
        app = await sim.ok("GET", f"/sim/applications/{FUNCTIONS_APP}")
        roles = [r for r in app["roles"] if r != "TeamsUserConfiguration.Read.All"]
        assert "TeamsPolicyUserAssign.ReadWrite.All" in roles
        await sim.ok("PUT", f"/sim/applications/{FUNCTIONS_APP}", json={**app, "roles": roles})
        without = await fresh_token(sim, FUNCTIONS_APP, FUNCTIONS_SECRET)
        status, error, _ = await sim.request("GET", f"{LIST}/{TOM}", token=without)
        assert status == 403 and "TeamsUserConfiguration.Read.All" in error["error"]["message"]

    run(body)


def test_effective_assignments_follow_precedence_after_sim_edits(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await agrees_with_the_simulators_resolution(sim)
        before = (await sim.graph("GET", f"{LIST}/{UNA}"))[1]
        assert COMPLIANCE not in await assignments_of(sim, UNA)  # on the disabled Global policy: no entry
        await sim.advance(minutes=5)

        # Una joins Traders: the group's policy, with the group's id
        traders = await sim.ok("GET", f"/sim/groups/{TRADERS}")
        await sim.ok("PUT", f"/sim/groups/{TRADERS}", json={**traders, "members": [*traders["members"], UNA]})
        joined = (await sim.graph("GET", f"{LIST}/{UNA}"))[1]
        assert {a["policyType"]: a["policyAssignment"] for a in joined["effectivePolicyAssignments"]}[COMPLIANCE] == {
            "displayName": "StrictRecording",
            "assignmentType": "group",
            "policyId": await policy_id(sim, "StrictRecording"),
            "groupId": TRADERS,
        }
        assert joined["createdDateTime"] == before["createdDateTime"]
        assert joined["modifiedDateTime"] > before["modifiedDateTime"]
        await agrees_with_the_simulators_resolution(sim)

        # a better-ranked group wins over Traders; Traders again once that assignment is gone
        await sim.ok("PUT", "/sim/groups/g-desk", json={"id": "g-desk", "displayName": "Desk", "members": [UNA]})
        await sim.ok(
            "POST",
            "/sim/assignments",
            expect=201,
            json={"policyType": COMPLIANCE, "policyName": "StrictRecording", "group": TRADERS, "rank": 2},
        )
        await sim.ok(
            "POST",
            "/sim/assignments",
            expect=201,
            json={"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "group": "g-desk", "rank": 1},
        )
        desk = (await assignments_of(sim, UNA))[COMPLIANCE]
        assert (desk["displayName"], desk["assignmentType"], desk["groupId"]) == (
            "AdvisoryRecording",
            "group",
            "g-desk",
        )
        assert (await assignments_of(sim, TOM))[COMPLIANCE]["groupId"] == TRADERS  # Tom is not in Desk
        await agrees_with_the_simulators_resolution(sim)

        # a direct assignment beats every group, and has no groupId
        await sim.ok(
            "POST",
            "/sim/assignments",
            expect=201,
            json={"policyType": COMPLIANCE, "policyName": "StrictRecording", "user": UNA},
        )
        direct = (await assignments_of(sim, UNA))[COMPLIANCE]
        assert (direct["displayName"], direct["assignmentType"], "groupId" in direct) == (
            "StrictRecording",
            "direct",
            False,
        )
        await agrees_with_the_simulators_resolution(sim)

        # a tenant-wide grant: users without a direct or group assignment get it, and no entry says so
        await sim.ok(
            "POST",
            "/sim/assignments",
            expect=201,
            json={"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "global": True},
        )
        assert (await sim.ok("GET", f"/sim/users/{CORA}/effectivePolicies"))["compliance"]["source"] == "global"
        assert COMPLIANCE not in await assignments_of(sim, CORA)
        await agrees_with_the_simulators_resolution(sim)

        # Front Office's calling policy reaches its direct member Ned, not Tom (a member through Traders)
        assert (await assignments_of(sim, NED))[CALLING]["groupId"] == FRONT_OFFICE
        assert CALLING not in await assignments_of(sim, TOM)

    run(body)


def test_the_beta_assignment_api_shows_in_the_effective_assignments(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        advisory = await policy_id(sim, "AdvisoryRecording")
        item = {"userId": TOM, "policyType": COMPLIANCE, "policyId": advisory}
        status, _, _ = await sim.graph(
            "POST", "/beta/admin/teams/policy/userAssignments/assign", json={"value": [item]}
        )
        assert status == 204

        assigned = (await assignments_of(sim, TOM))[COMPLIANCE]
        assert assigned == {"displayName": "AdvisoryRecording", "assignmentType": "direct", "policyId": advisory}
        await agrees_with_the_simulators_resolution(sim)

        status, _, _ = await sim.graph(
            "POST", "/beta/admin/teams/policy/userAssignments/unassign", json={"value": [item]}
        )
        assert status == 204
        back = (await assignments_of(sim, TOM))[COMPLIANCE]
        assert (back["displayName"], back["assignmentType"], back["groupId"]) == ("StrictRecording", "group", TRADERS)

    run(body)
