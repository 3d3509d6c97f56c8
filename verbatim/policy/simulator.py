"""The Teams/Graph simulator as a policy target: read its tenant as the current state, and apply a plan
to it through the same operations the PowerShell script performs in a real tenant.

The simulator's `/sim/...` routes stand in for the Teams PowerShell cmdlets (there is no Graph API for
compliance recording policies); direct user assignments go through the Graph assignment API
(`/beta/admin/teams/policy/userAssignments/assign` and `/unassign`, with the policy id from `getPolicyId`),
which is the one part Graph offers. Every applied change is written to the ledger when one is given.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx

from verbatim.contracts.policy import PlanChange, PolicyPlan
from verbatim.graph import GraphClient
from verbatim.ledger import LedgerWriter
from verbatim.policy.directory import DirectoryUser, InMemoryDirectory
from verbatim.policy.service import CurrentState
from verbatim.policy.state import (
    CallingPolicyState,
    GroupAssignmentState,
    InstanceState,
    PolicyState,
    RecorderState,
    TenantState,
    UserAssignmentState,
    key,
    ranked,
)

log = logging.getLogger(__name__)

COMPLIANCE = "TeamsComplianceRecordingPolicy"
CALLING = "TeamsCallingPolicy"
UNRANKED = 1_000_000  # the simulator puts group assignments without a rank last
POLICY_CHANGED = "policy.changed"


class SimulatorError(ValueError):
    """The simulator refused an operation; the message carries its answer."""


class SimulatorTenant:
    """The simulator's tenant-editing API (`/sim/...`): not Graph, so a plain HTTP client is right here."""

    def __init__(self, base_url: str, http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=30.0)

    def close(self) -> None:
        self._http.close()

    def snapshot(self) -> dict[str, Any]:
        return self._json("GET", "/sim/tenant")

    def put(self, collection: str, item_key: str, item: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", f"/sim/{collection}/{item_key}", item)

    def delete(self, collection: str, item_key: str) -> None:
        self._request("DELETE", f"/sim/{collection}/{item_key}", None, ok=(204, 404))

    def set_assignment(self, assignment: dict[str, Any]) -> None:
        self._request("POST", "/sim/assignments", assignment)

    def remove_assignment(self, removal: dict[str, Any]) -> None:
        self._request("DELETE", "/sim/assignments", removal, ok=(204, 404))

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._request(method, path, body)
        data = response.json()
        if not isinstance(data, dict):
            raise SimulatorError(f"{method} {path}: expected a JSON object")
        return data

    def _request(self, method: str, path: str, body: Any, ok: tuple[int, ...] = ()) -> httpx.Response:
        try:
            response = self._http.request(method, self.base_url + path, json=body)
        except httpx.HTTPError as error:
            raise SimulatorError(f"{method} {self.base_url}{path}: {error}") from error
        if response.is_success or response.status_code in ok:
            return response
        raise SimulatorError(f"{method} {path}: {response.status_code} {response.text[:500]}")


# --- reading ----------------------------------------------------------------------------------------------


def tenant_state(snapshot: dict[str, Any]) -> TenantState:
    """The simulator's tenant model as a `TenantState`."""
    instances = snapshot.get("applicationInstances", [])
    upn_of_instance = {str(i["id"]).casefold(): str(i["userPrincipalName"]) for i in instances}
    users = snapshot.get("users", [])
    upn_of_user = {str(u["id"]).casefold(): str(u["userPrincipalName"]) for u in users}
    upn_of_user |= {str(u["userPrincipalName"]).casefold(): str(u["userPrincipalName"]) for u in users}
    names = {str(g["id"]).casefold(): g.get("displayName") for g in snapshot.get("groups", [])}
    assignments = snapshot.get("assignments", [])

    def of_type(policy_type: str) -> list[dict[str, Any]]:
        return [a for a in assignments if a.get("policyType") == policy_type]

    def groups(policy_type: str) -> dict[str, GroupAssignmentState]:
        return ranked(
            GroupAssignmentState(
                group=str(a["group"]),
                policy=str(a["policyName"]),
                rank=int(a.get("rank") or UNRANKED),
                name=names.get(str(a["group"]).casefold()),
            )
            for a in of_type(policy_type)
            if a.get("group") is not None
        )

    global_policy = next((str(a["policyName"]) for a in of_type(COMPLIANCE) if a.get("global")), None)
    user_assignments = {}
    for a in of_type(COMPLIANCE):
        if a.get("user") is not None:
            upn = upn_of_user.get(str(a["user"]).casefold(), str(a["user"]))
            user_assignments[key(upn)] = UserAssignmentState(user=upn, policy=str(a["policyName"]))
    return TenantState(
        instances={
            key(str(i["userPrincipalName"])): InstanceState(
                user_principal_name=str(i["userPrincipalName"]),
                display_name=str(i.get("displayName", "")),
                application_id=str(i.get("appId", "")),
                object_id=str(i["id"]),
            )
            for i in instances
        },
        recording_policies={
            key(str(p["name"])): _policy(p, upn_of_instance) for p in snapshot.get("compliancePolicies", [])
        },
        global_policy=global_policy,
        user_assignments=user_assignments,
        group_assignments=groups(COMPLIANCE),
        calling_policies={
            key(str(p["name"])): CallingPolicyState(
                name=str(p["name"]), allow_cloud_recording_for_calls=bool(p.get("allowCloudRecordingForCalls", False))
            )
            for p in snapshot.get("callingPolicies", [])
        },
        calling_group_assignments=groups(CALLING),
    )


def _policy(policy: dict[str, Any], upn_of_instance: dict[str, str]) -> PolicyState:
    recorders = {}
    for app in policy.get("applications", []):
        instance = upn_of_instance.get(str(app["id"]).casefold(), str(app["id"]))
        paired = [upn_of_instance.get(str(p).casefold(), str(p)) for p in app.get("pairedApplications", [])]
        recorders[key(instance)] = RecorderState(
            instance=instance,
            required_before_call_establishment=bool(app.get("requiredBeforeCallEstablishment", True)),
            required_before_meeting_join=bool(app.get("requiredBeforeMeetingJoin", True)),
            required_during_call=bool(app.get("requiredDuringCall", True)),
            required_during_meeting=bool(app.get("requiredDuringMeeting", True)),
            concurrent_invitation_count=int(app.get("concurrentInvitationCount", 1)),
            paired_with=paired[0] if paired else None,
            priority=app.get("priority"),
        )
    return PolicyState(
        name=str(policy["name"]),
        enabled=bool(policy.get("enabled", False)),
        description=policy.get("description") or None,
        disable_compliance_recording_audio_notification_for_calls=bool(
            policy.get("disableComplianceRecordingAudioNotificationForCalls", False)
        ),
        record_rerouted_calls=bool(policy.get("recordReroutedCalls", False)),
        custom_banner=policy.get("customBanner") or None,
        recorders=recorders,
    )


def tenant_directory(snapshot: dict[str, Any]) -> InMemoryDirectory:
    """Users (with their country) and group memberships (members as user ids or nested group ids)."""
    users = [
        DirectoryUser(
            id=str(u["id"]),
            user_principal_name=str(u["userPrincipalName"]),
            display_name=u.get("displayName"),
            usage_location=u.get("country"),
        )
        for u in snapshot.get("users", [])
    ]
    id_of = {u.user_principal_name.casefold(): u.id for u in users} | {u.id.casefold(): u.id for u in users}
    groups: dict[str, list[str]] = {}
    for group in snapshot.get("groups", []):
        groups[str(group["id"])] = [id_of.get(str(m).casefold(), str(m)) for m in group.get("members", [])]
    return InMemoryDirectory(users, groups)


def current_from_simulator(base_url: str, sim: SimulatorTenant | None = None) -> CurrentState:
    tenant = sim or SimulatorTenant(base_url)
    try:
        snapshot = tenant.snapshot()
    finally:
        if sim is None:
            tenant.close()
    return CurrentState(
        state=tenant_state(snapshot), target=f"simulator {base_url.rstrip('/')}", directory=tenant_directory(snapshot)
    )


# --- applying ---------------------------------------------------------------------------------------------


class SimulatorApplier:
    """Applies plan changes one by one, reading the simulator's tenant fresh where an edit merges."""

    def __init__(
        self,
        sim: SimulatorTenant,
        graph: GraphClient,
        *,
        ledger: LedgerWriter | None = None,
        actor: str | None = None,
        recorder_webhook: str | None = None,
    ) -> None:
        self.sim = sim
        self.graph = graph
        self.ledger = ledger
        self.actor = actor
        self.recorder_webhook = recorder_webhook
        self._ranked_done: set[str] = set()

    def apply(self, plan: PolicyPlan) -> int:
        for change in plan.changes:
            self._apply_one(change, plan)
            if self.ledger is not None:
                self.ledger.append(POLICY_CHANGED, _subject(change), _details(change, plan), actor=self.actor)
            log.info(
                "policy change applied", extra={"action": change.action, "kind": change.kind, "subject": change.subject}
            )
        return len(plan.changes)

    def _apply_one(self, change: PlanChange, plan: PolicyPlan) -> None:
        handler = {
            "application-instance": self._instance,
            "recording-policy": self._policy,
            "recorder-application": self._recorder,
            "calling-policy": self._calling_policy,
            "global-assignment": self._global,
            "user-assignment": self._user,
        }.get(change.kind)
        if handler is not None:
            handler(change)
        elif change.action == "remove":
            policy_type = CALLING if change.kind == "calling-group-assignment" else COMPLIANCE
            self.sim.remove_assignment({"policyType": policy_type, "group": change.subject})
        else:
            self._ranked(change, plan)

    # -- objects ----------------------------------------------------------------------------------------
    def _instance(self, change: PlanChange) -> None:
        after = change.after or {}
        snapshot = self.sim.snapshot()
        instances = snapshot.get("applicationInstances", [])
        existing = _find(instances, "userPrincipalName", change.subject)
        if existing is None:
            webhook = self.recorder_webhook or next(
                (
                    str(i["webhook"])
                    for i in instances
                    if str(i.get("appId", "")).casefold() == str(after["applicationId"]).casefold()
                ),
                None,
            )
            if webhook is None:
                raise SimulatorError(
                    f"the simulator needs a calling webhook for new application instance {change.subject}: "
                    "no instance of the same bot app exists to copy it from (pass recorder_webhook)"
                )
            item = {"id": str(uuid.uuid4()), "userPrincipalName": change.subject, "webhook": webhook}
        else:
            item = dict(existing)
        item.update({"displayName": str(after["displayName"]), "appId": str(after["applicationId"])})
        self.sim.put("applicationInstances", item["id"], item)

    def _policy(self, change: PlanChange) -> None:
        if change.action == "remove":
            self.sim.delete("compliancePolicies", change.subject)
            return
        after = change.after or {}
        existing = _find(self.sim.snapshot().get("compliancePolicies", []), "name", change.subject)
        item: dict[str, Any] = dict(existing) if existing else {"name": change.subject, "applications": []}
        item.update(
            {
                "enabled": after["enabled"],
                "description": after.get("description"),
                "disableComplianceRecordingAudioNotificationForCalls": after[
                    "disableComplianceRecordingAudioNotificationForCalls"
                ],
                "recordReroutedCalls": after["recordReroutedCalls"],
                "customBanner": after.get("customBanner"),
            }
        )
        self.sim.put("compliancePolicies", str(item["name"]), _without_none(item))

    def _recorder(self, change: PlanChange) -> None:
        snapshot = self.sim.snapshot()
        policy = _find(snapshot.get("compliancePolicies", []), "name", str(change.policy))
        if policy is None:
            raise SimulatorError(f"policy {change.policy} does not exist in the simulator")
        instances = snapshot.get("applicationInstances", [])
        instance_id = _instance_id(instances, change.subject)
        applications = [a for a in policy.get("applications", []) if str(a["id"]).casefold() != instance_id.casefold()]
        if change.action != "remove":
            after = change.after or {}
            application: dict[str, Any] = {
                "id": instance_id,
                "requiredBeforeCallEstablishment": after["requiredBeforeCallEstablishment"],
                "requiredBeforeMeetingJoin": after["requiredBeforeMeetingJoin"],
                "requiredDuringCall": after["requiredDuringCall"],
                "requiredDuringMeeting": after["requiredDuringMeeting"],
                "concurrentInvitationCount": after["concurrentInvitationCount"],
                "pairedApplications": [_instance_id(instances, str(after["pairedWith"]))]
                if after.get("pairedWith")
                else [],
            }
            if after.get("priority") is not None:
                application["priority"] = after["priority"]
            applications.append(application)
        self.sim.put("compliancePolicies", str(policy["name"]), {**policy, "applications": applications})

    def _calling_policy(self, change: PlanChange) -> None:
        existing = _find(self.sim.snapshot().get("callingPolicies", []), "name", change.subject)
        item: dict[str, Any] = dict(existing) if existing else {"name": change.subject}
        item["allowCloudRecordingForCalls"] = (change.after or {})["allowCloudRecordingForCalls"]
        self.sim.put("callingPolicies", str(item["name"]), item)

    # -- assignments ------------------------------------------------------------------------------------
    def _global(self, change: PlanChange) -> None:
        if change.action == "remove":
            self.sim.remove_assignment({"policyType": COMPLIANCE, "global": True})
            return
        policy = (change.after or {})["policy"]
        self.sim.set_assignment({"policyType": COMPLIANCE, "policyName": policy, "global": True})

    def _user(self, change: PlanChange) -> None:
        """Direct assignments through the Graph Teams policy assignment API, as a real tenant allows."""
        user = self.graph.get_json(f"/users/{change.subject}", params={"$select": "id"})
        base = self.graph.base_url
        if change.action == "remove":
            body = {"value": [_assignment_item(str(user["id"]), None)]}
            self.graph.post_json(f"{base}/beta/admin/teams/policy/userAssignments/unassign", body)
            return
        policy = str((change.after or {})["policy"])
        found = self.graph.get_json(
            f"{base}/beta/admin/teams/policy/getPolicyId(type='{COMPLIANCE}',name='{_odata(policy)}')"
        )
        values = found.get("value") or []
        if not values:
            raise SimulatorError(f"getPolicyId found no {COMPLIANCE} named {policy}")
        body = {"value": [_assignment_item(str(user["id"]), str(values[0]["policyId"]))]}
        self.graph.post_json(f"{base}/beta/admin/teams/policy/userAssignments/assign", body)

    def _ranked(self, change: PlanChange, plan: PolicyPlan) -> None:
        """Group assignments of one policy type, all at once on the first of them.

        The simulator keeps ranks as given and refuses two groups on one rank, where Teams shifts the
        others down. So the final order is laid out here — declared groups on ranks 1..n, groups the plan
        removes later below them — and reached without collisions: assignments that must move are first
        parked on free ranks, then set in ascending order.
        """
        policy_type = CALLING if change.kind == "calling-group-assignment" else COMPLIANCE
        if policy_type in self._ranked_done:
            return
        self._ranked_done.add(policy_type)
        current = [
            a
            for a in self.sim.snapshot().get("assignments", [])
            if a.get("policyType") == policy_type and a.get("group")
        ]
        layout = _layout(current, [c for c in plan.changes if c.kind == change.kind])
        by_group = {str(a["group"]).casefold(): a for a in current}
        top = max([int(a.get("rank") or 0) for a in current] + [len(layout)])
        parked = 0
        for group, (_, rank) in layout.items():
            existing = by_group.get(group)
            if existing is not None and existing.get("rank") != rank:
                parked += 1
                self.sim.set_assignment(
                    {
                        "policyType": policy_type,
                        "policyName": existing["policyName"],
                        "group": existing["group"],
                        "rank": top + parked,
                    }
                )
        for group, (policy, rank) in sorted(layout.items(), key=lambda item: item[1][1]):
            existing = by_group.get(group)
            if existing is None or existing.get("rank") != rank or key(str(existing["policyName"])) != key(policy):
                name = existing["group"] if existing else group
                self.sim.set_assignment({"policyType": policy_type, "policyName": policy, "group": name, "rank": rank})


def _layout(current: list[dict[str, Any]], changes: list[PlanChange]) -> dict[str, tuple[str, int]]:
    """Final (policy, rank) per case-folded group: declared groups 1..n, groups to remove after them.

    Adds and changes carry their declared rank; groups the plan leaves alone keep their relative order
    and fill the remaining ranks (see `verbatim.policy.plan._ranked_assignments`)."""
    removed = {key(c.subject) for c in changes if c.action == "remove"}
    placed = {
        key(c.subject): (str((c.after or {})["policy"]), int(str((c.after or {})["rank"])))
        for c in changes
        if c.action != "remove"
    }
    ordered = sorted(current, key=lambda a: int(a.get("rank") or UNRANKED))
    untouched = [a for a in ordered if key(str(a["group"])) not in placed and key(str(a["group"])) not in removed]
    total = len(placed) + len(untouched)
    free = iter(sorted(set(range(1, total + 1)) - {rank for _, rank in placed.values()}))
    layout = dict(placed)
    for assignment in untouched:
        layout[key(str(assignment["group"]))] = (str(assignment["policyName"]), next(free))
    leaving = [a for a in ordered if key(str(a["group"])) in removed]
    for offset, assignment in enumerate(leaving, start=1):
        layout[key(str(assignment["group"]))] = (str(assignment["policyName"]), total + offset)
    return layout


def apply_to_simulator(
    plan: PolicyPlan,
    base_url: str,
    *,
    graph: GraphClient,
    ledger: LedgerWriter | None = None,
    actor: str | None = None,
    recorder_webhook: str | None = None,
) -> int:
    """Apply `plan` to the simulator at `base_url` (its Graph through `graph`); returns the number of changes
    applied."""
    sim = SimulatorTenant(base_url)
    try:
        return SimulatorApplier(sim, graph, ledger=ledger, actor=actor, recorder_webhook=recorder_webhook).apply(plan)
    finally:
        sim.close()


def _find(items: list[dict[str, Any]], field: str, value: str) -> dict[str, Any] | None:
    return next((item for item in items if str(item.get(field, "")).casefold() == value.casefold()), None)


def _instance_id(instances: list[dict[str, Any]], upn: str) -> str:
    found = _find(instances, "userPrincipalName", upn)
    if found is None:
        raise SimulatorError(f"application instance {upn} does not exist in the simulator")
    return str(found["id"])


def _assignment_item(user_id: str, policy_id: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment",
        "userId": user_id,
        "policyType": COMPLIANCE,
    }
    if policy_id is not None:
        item["policyId"] = policy_id
    return item


def _odata(text: str) -> str:
    return text.replace("'", "''")


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def _subject(change: PlanChange) -> str:
    if change.kind == "recorder-application":
        return f"policy:{change.kind}:{change.policy}/{change.subject}"
    return f"policy:{change.kind}:{change.subject}"


def _details(change: PlanChange, plan: PolicyPlan) -> dict[str, Any]:
    return {
        "action": change.action,
        "kind": change.kind,
        "subject": change.subject,
        "policy": change.policy,
        "before": change.before,
        "after": change.after,
        "changed": change.changed,
        "target": plan.target,
        "desiredSha256": plan.desired_sha256,
    }
