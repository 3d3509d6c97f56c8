"""The tenant model and Teams' precedence rules (unit), the Graph directory reads with paging, the Teams
policy assignment API, and editing the tenant over /sim (against the running simulator)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.simulator import DEMO_TENANT
from devstack.simulator.tenant import COMPLIANCE, Assignment, TenantModel, TenantStore
from tests.simulator.harness import (
    FRONT_OFFICE,
    NED,
    RECORDER_APP,
    RECORDER_SECRET,
    TARA,
    TOM,
    TRADERS,
    UNA,
    SimClient,
)
from tests.simulator.shapes import fixture, missing_or_mistyped

Run = Callable[[Callable[[SimClient], Any]], None]


def demo() -> TenantStore:
    return TenantStore.load(Path(DEMO_TENANT))


def test_precedence_is_direct_then_group_by_rank_then_global_then_the_global_policy() -> None:
    store = demo()
    tom = store.user(TOM)
    assert tom is not None
    assert store.effective(tom, COMPLIANCE).dump() == {
        "policyType": COMPLIANCE,
        "policyName": "StrictRecording",
        "source": "group",
        "groupId": TRADERS,
        "rank": 1,
    }
    # a higher-ranked group wins over Traders; an unranked one loses to it
    store.set_assignment(Assignment(policy_type=COMPLIANCE, policy_name="AdvisoryRecording", group=FRONT_OFFICE))
    assert store.effective(tom, COMPLIANCE).name == "StrictRecording"
    data = store.snapshot()
    data["groups"].append({"id": "g-top", "displayName": "Top", "members": [TOM]})
    data["assignments"].append(
        {"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "group": "g-top", "rank": 1}
    )
    data["assignments"] = [a for a in data["assignments"] if a.get("group") != TRADERS]
    data["assignments"].append({"policyType": COMPLIANCE, "policyName": "StrictRecording", "group": TRADERS, "rank": 2})
    store.replace(data)
    assert (store.effective(tom, COMPLIANCE).name, store.effective(tom, COMPLIANCE).group_id) == (
        "AdvisoryRecording",
        "g-top",
    )
    # a direct assignment beats every group
    store.set_assignment(Assignment(policy_type=COMPLIANCE, policy_name="StrictRecording", user=TOM))
    assert store.effective(tom, COMPLIANCE).source == "direct"
    # no assignment: a global assignment, then the policy named Global
    una = store.user(UNA)
    assert una is not None
    assert (store.effective(una, COMPLIANCE).name, store.effective(una, COMPLIANCE).source) == ("Global", "default")
    assert store.recording_policy(una) is None  # Global is disabled
    store.set_assignment(
        Assignment.model_validate({"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "global": True})
    )
    assert (store.effective(una, COMPLIANCE).name, store.effective(una, COMPLIANCE).source) == (
        "AdvisoryRecording",
        "global",
    )
    assert store.recording_policy(una) is not None


def test_group_policy_assignment_uses_direct_members_only() -> None:
    store = demo()
    data = store.snapshot()
    data["assignments"].append(
        {"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "group": FRONT_OFFICE, "rank": 2}
    )
    store.replace(data)
    ned, tara = store.user(NED), store.user(TARA)
    assert ned is not None and tara is not None
    assert store.effective(ned, COMPLIANCE).source == "direct"  # Ned: direct assignment wins anyway
    # Tara is in Front Office only through the nested Traders group: Traders' own assignment applies
    assert store.effective(tara, COMPLIANCE).group_id == TRADERS


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["compliancePolicies"][1]["applications"][0].update(
                concurrentInvitationCount=2, pairedApplications=[d["applicationInstances"][0]["id"]]
            ),
            "not both",
        ),
        (
            lambda d: d["assignments"].append(
                {"policyType": COMPLIANCE, "policyName": "AdvisoryRecording", "group": FRONT_OFFICE, "rank": 1}
            ),
            "already used",
        ),
        (lambda d: d["groups"][0]["members"].append("nobody@contoso.onmicrosoft.com"), "neither a user nor a group"),
        (lambda d: d["compliancePolicies"][1]["applications"][0].update(id="missing-instance"), "does not exist"),
        (lambda d: d["users"][0].update(phoneNumbers=["020 7946 0101"]), "E.164"),
        (lambda d: d["assignments"].append({"policyType": COMPLIANCE, "policyName": "Nope", "user": TOM}), "unknown"),
    ],
)
def test_inconsistent_tenants_are_rejected_with_the_reason(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = copy.deepcopy(demo().snapshot())
    edit(data)
    with pytest.raises(ValidationError, match=message):
        TenantModel.model_validate(data)


@pytest.mark.integration
def test_users_and_transitive_members_page_with_next_links(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        users: list[dict[str, Any]] = []
        status, page, _ = await sim.graph("GET", "/v1.0/users", params={"$top": "2", "$select": "id,userPrincipalName"})
        while True:
            assert status == 200 and len(page["value"]) <= 2
            users += page["value"]
            if "@odata.nextLink" not in page:
                break
            status, page, _ = await sim.graph("GET", page["@odata.nextLink"])
        assert len(users) == 8 and set(users[0]) == {"id", "userPrincipalName"}
        _, found, _ = await sim.graph(
            "GET", "/v1.0/users", params={"$filter": "userPrincipalName eq 'tom.trader@contoso.onmicrosoft.com'"}
        )
        assert [u["id"] for u in found["value"]] == [TOM]
        members: list[dict[str, Any]] = []
        link = f"/v1.0/groups/{FRONT_OFFICE}/transitiveMembers?$top=2"
        while link:
            _, page, _ = await sim.graph("GET", link)
            members += page["value"]
            link = page.get("@odata.nextLink")
        kinds = {(m["@odata.type"], m["id"]) for m in members}
        assert kinds == {
            ("#microsoft.graph.group", TRADERS),
            ("#microsoft.graph.user", TOM),
            ("#microsoft.graph.user", TARA),
            ("#microsoft.graph.user", NED),
        }
        _, only_users, _ = await sim.graph("GET", f"/v1.0/groups/{FRONT_OFFICE}/transitiveMembers/microsoft.graph.user")
        assert {m["id"] for m in only_users["value"]} == {TOM, TARA, NED}
        _, direct, _ = await sim.graph("GET", f"/v1.0/groups/{FRONT_OFFICE}/members")
        assert {m["id"] for m in direct["value"]} == {TRADERS, NED}
        assert (await sim.graph("GET", "/v1.0/groups/no-such-group/transitiveMembers"))[0] == 404

    run(body)


@pytest.mark.integration
def test_the_teams_policy_assignment_api_changes_direct_assignments(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        path = "/beta/admin/teams/policy/getPolicyId(type='TeamsComplianceRecordingPolicy',name='AdvisoryRecording')"
        status, found, _ = await sim.graph("GET", path)
        assert status == 200 and missing_or_mistyped(found, fixture("teams-policy-get-policy-id.json")) == []
        assert found["value"][0]["name"] == "Tag:AdvisoryRecording"
        policy_id = found["value"][0]["policyId"]
        assign = {
            "value": [
                {
                    "@odata.type": "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment",
                    "userId": UNA,
                    "policyType": "TeamsComplianceRecordingPolicy",
                    "policyId": policy_id,
                }
            ]
        }
        status, _, _ = await sim.graph("POST", "/beta/admin/teams/policy/userAssignments/assign", json=assign)
        assert status == 204
        effective = await sim.ok("GET", f"/sim/users/{UNA}/effectivePolicies")
        assert (effective["compliance"]["policyName"], effective["compliance"]["source"], effective["recorded"]) == (
            "AdvisoryRecording",
            "direct",
            True,
        )
        status, _, _ = await sim.graph("POST", "/beta/admin/teams/policy/userAssignments/unassign", json=assign)
        assert status == 204
        assert (await sim.ok("GET", f"/sim/users/{UNA}/effectivePolicies"))["compliance"]["source"] == "default"
        bad = copy.deepcopy(assign)
        bad["value"][0]["policyId"] = "not-a-policy"
        status, error, _ = await sim.graph("POST", "/beta/admin/teams/policy/userAssignments/assign", json=bad)
        assert status == 400 and "policyId" in error["error"]["message"]
        recorder = await sim.token(RECORDER_APP, RECORDER_SECRET)
        status, _, _ = await sim.request(
            "POST", "/beta/admin/teams/policy/userAssignments/assign", token=recorder, json=assign
        )
        assert status == 403

    run(body)


@pytest.mark.integration
def test_the_tenant_is_edited_over_sim_with_validation(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        traders = await sim.ok("GET", f"/sim/groups/{TRADERS}")
        await sim.ok("PUT", f"/sim/groups/{TRADERS}", json={**traders, "members": [*traders["members"], UNA]})
        assert (await sim.ok("GET", f"/sim/users/{UNA}/effectivePolicies"))["compliance"][
            "policyName"
        ] == "StrictRecording"
        status, problem, headers = await sim.request(
            "PUT", f"/sim/groups/{TRADERS}", json={**traders, "members": ["ghost@contoso.onmicrosoft.com"]}
        )
        assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
        assert "neither a user nor a group" in problem["detail"]
        status, _, _ = await sim.request("DELETE", "/sim/compliancePolicies/StrictRecording")
        assert status == 409  # still assigned to Traders
        await sim.ok(
            "POST",
            "/sim/assignments",
            expect=201,
            json={
                "policyType": COMPLIANCE,
                "policyName": "StrictRecording",
                "user": "una.unrecorded@contoso.onmicrosoft.com",
            },
        )
        assert (await sim.ok("GET", f"/sim/users/{UNA}/effectivePolicies"))["compliance"]["source"] == "direct"
        status, _, _ = await sim.request("PUT", "/sim/tenant", json={"tenant": {"id": "x"}})
        assert status == 400

    run(body)
