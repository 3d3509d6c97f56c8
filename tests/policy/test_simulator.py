"""The whole loop against the Teams/Graph simulator (a real process): the example file matches the demo
tenant; plan, apply and plan again shows no changes; jurisdictions warn and exclude; drift is found when a
user joins a must-record group without a policy, by the audit reading Graph (the simulator's
`/admin/teams/userConfigurations`) and by the Function App's timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from tests.policy.conftest import Simulator
from verbatim.cli import main
from verbatim.contracts.policy import CoverageReport, EffectivePolicy
from verbatim.graph import graph_client
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.platform.settings import Settings, get_settings, reload_settings
from verbatim.policy.coverage import DRIFT, DRIFT_RESOLVED, InMemoryCoverageStateStore, audit_coverage
from verbatim.policy.directory import GraphDirectory
from verbatim.policy.readers import (
    GraphEffectivePolicies,
    StateEffectivePolicies,
    catalog_from_desired,
    tenant_default_policy,
)
from verbatim.policy.service import plan
from verbatim.policy.simulator import apply_to_simulator, current_from_simulator
from verbatim.policy.validation import load_desired_state
from verbatim.wiring import current

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "demo-tenant.yaml"
TRADERS = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a01"
FRONT_OFFICE = "8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b02"
RECORDER_INSTANCE = "0d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6"
TOM, NED, UNA = (
    "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101",
    "3b2c4d5e-6f70-4b8c-9dae-c1d2e3f4a103",
    "4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104",
)


def changed_example() -> str:
    """The example, changed in every way a plan can change a tenant."""
    text = EXAMPLE.read_text()
    edits = [
        (
            "applicationId: 2b7e4f10-6c3a-4d8e-a1f2-0c9d8e7f6a51\n",
            "applicationId: 2b7e4f10-6c3a-4d8e-a1f2-0c9d8e7f6a51\n"
            "  - userPrincipalName: verbatim.recorder2@contoso.onmicrosoft.com\n"
            "    displayName: Verbatim Recorder (second deployment)\n"
            "    applicationId: 2b7e4f10-6c3a-4d8e-a1f2-0c9d8e7f6a51\n",
        ),
        ("        concurrentInvitationCount: 1\n", "        pairedWith: verbatim.recorder2@contoso.onmicrosoft.com\n"),
        (
            "    description: Advisers; recording is attempted but never blocks a call\n",
            "    description: Advisers; recording is attempted but never blocks a call\n"
            "    recordReroutedCalls: true\n",
        ),
        (
            "\nassignments:\n",
            "\n  - name: ExcludedByLaw\n    enabled: false\n    description: Users where recording is forbidden\n"
            "\nassignments:\n",
        ),
        (
            "    - user: ned.adviser@contoso.onmicrosoft.com\n      policy: AdvisoryRecording\n",
            "    - user: una.unrecorded@contoso.onmicrosoft.com\n      policy: AdvisoryRecording\n",
        ),
        (
            "      name: Traders\n      policy: StrictRecording\n      rank: 1\n",
            "      name: Traders\n      policy: StrictRecording\n      rank: 2\n"
            f"    - group: {FRONT_OFFICE}\n      name: Front Office\n      policy: AdvisoryRecording\n      rank: 1\n",
        ),
        (
            "        name: Front Office\n        rank: 1\n\njurisdictions:\n",
            "        name: Front Office\n        rank: 2\n"
            "  - name: NoRecording\n    allowCloudRecordingForCalls: false\n    groups:\n"
            f"      - group: {TRADERS}\n        rank: 1\n\njurisdictions:\n",
        ),
        (
            "  rules:\n",
            "  exclusionPolicy: ExcludedByLaw\n  rules:\n"
            "    - countries: [US]\n      rule: forbidden\n      action: exclude\n"
            "    - countries: [GB]\n      rule: consent-required\n      action: warn\n",
        ),
    ]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


LEGACY_DESK = "6f1c2a3b-0000-4000-8000-00000000de5c"
CORA = "5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105"


def add_legacy_policy(sim: Simulator) -> None:
    """What the file does not declare: a policy, its group assignment and a direct assignment to it."""
    import httpx

    sim.put("groups", LEGACY_DESK, {"id": LEGACY_DESK, "displayName": "Legacy desk", "members": [CORA]})
    sim.put("compliancePolicies", "Legacy", {"name": "Legacy", "enabled": True, "description": "old pilot"})
    for assignment in (
        {"policyType": "TeamsComplianceRecordingPolicy", "policyName": "Legacy", "group": LEGACY_DESK, "rank": 5},
        {"policyType": "TeamsComplianceRecordingPolicy", "policyName": "Legacy", "user": CORA},
    ):
        httpx.post(f"{sim.http_url}/sim/assignments", json=assignment, timeout=10).raise_for_status()


def test_the_example_file_matches_the_demo_tenant(simulator: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "plan", str(EXAMPLE), "--target", "sim"]) == 0
    assert "No changes: the tenant matches the desired state." in capsys.readouterr().out


def test_plan_apply_and_plan_again_shows_no_changes(
    simulator: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_legacy_policy(simulator)
    desired_file = tmp_path / "policies.yaml"
    desired_file.write_text(changed_example())
    validated = load_desired_state(desired_file.read_text(), str(desired_file))
    before = plan(validated, current_from_simulator(simulator.http_url))
    ledger_store = InMemoryLedgerStore()

    assert main(["policy", "plan", str(desired_file), "--target", "sim"]) == 2
    graph = graph_client(reload_settings().model_copy(update={"graph_base_url": simulator.http_url}))
    applied = apply_to_simulator(
        before, simulator.http_url, graph=graph, ledger=Ledger(ledger_store, "main", None), actor="test@contoso.com"
    )
    graph.close()
    capsys.readouterr()
    code_after = main(["policy", "plan", str(desired_file), "--target", "sim"])

    assert code_after == 0, capsys.readouterr().out
    assert {(c.action, c.kind) for c in before.changes} >= {
        ("add", "application-instance"),
        ("add", "recording-policy"),
        ("change", "recording-policy"),
        ("change", "recorder-application"),
        ("add", "calling-policy"),
        ("add", "calling-group-assignment"),
        ("add", "group-assignment"),
        ("add", "user-assignment"),
        ("remove", "user-assignment"),
        ("remove", "group-assignment"),
        ("remove", "recording-policy"),
    }
    head = ledger_store.read_head("main")
    assert applied == len(before.changes) and head is not None and head.seq == applied
    entries = ledger_store.entries("main", 1, applied)
    assert {e.kind for e in entries} == {"policy.changed"} and {e.actor for e in entries} == {"test@contoso.com"}
    # What the tenant now does: Tom strict through Traders (paired recorders), Una and Ned excluded (US).
    tom, una, ned = simulator.effective(TOM), simulator.effective(UNA), simulator.effective(NED)
    assert (tom["compliance"]["policyName"], tom["recorded"]) == ("StrictRecording", True)
    assert len(tom["recorders"][0]["pairedApplications"]) == 1
    assert (una["compliance"]["policyName"], una["compliance"]["source"], una["recorded"]) == (
        "ExcludedByLaw",
        "direct",
        False,
    )
    assert (ned["compliance"]["policyName"], ned["recorded"]) == ("ExcludedByLaw", False)


def test_jurisdiction_rules_warn_and_exclude_against_the_simulator(simulator: Simulator) -> None:
    validated = load_desired_state(changed_example(), "policies.yaml")

    result = plan(validated, current_from_simulator(simulator.http_url))

    findings = {(f.kind, f.subject) for f in result.findings}
    assert {
        ("jurisdiction", "tom.trader@contoso.onmicrosoft.com"),
        ("jurisdiction", "tara.trader@contoso.onmicrosoft.com"),
        ("jurisdiction-exclusion", "ned.adviser@contoso.onmicrosoft.com"),
        ("jurisdiction-exclusion", "una.unrecorded@contoso.onmicrosoft.com"),
    } <= findings
    excluded = [c for c in result.changes if c.kind == "user-assignment" and c.action != "remove"]
    assert {(c.subject, (c.after or {})["policy"]) for c in excluded} == {
        ("ned.adviser@contoso.onmicrosoft.com", "ExcludedByLaw"),
        ("una.unrecorded@contoso.onmicrosoft.com", "ExcludedByLaw"),
    }


def test_drift_is_found_through_graph_when_a_user_joins_a_must_record_group_without_a_policy(
    simulator: Simulator,
) -> None:
    """The audit as the timer runs it: group members and effective policies from Graph (the simulator's
    `/v1.0/groups/.../transitiveMembers` and `/v1.0/admin/teams/userConfigurations`), never `/sim`."""
    validated = load_desired_state(EXAMPLE.read_text(), "demo-tenant.yaml")
    groups = [g.group for g in validated.desired.must_record.groups]
    coverage = InMemoryCoverageStateStore()
    ledger_store = InMemoryLedgerStore()
    graph = graph_client(get_settings())
    directory = GraphDirectory(graph)
    reader = GraphEffectivePolicies(
        graph,
        catalog_from_desired(validated.desired, directory),
        tenant_default=tenant_default_policy(validated.desired),
        page_size=2,  # the demo tenant's six accounts take three pages
    )

    def audit(at: datetime) -> CoverageReport:
        return audit_coverage(
            must_record_groups=groups,
            directory=directory,
            reader=reader,
            now=at,
            state_store=coverage,
            ledger=Ledger(ledger_store, "main", None),
        )

    try:
        clean = audit(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        front_office = next(g for g in simulator.tenant()["groups"] if g["id"] == FRONT_OFFICE)
        simulator.put("groups", FRONT_OFFICE, {**front_office, "members": [*front_office["members"], UNA]})
        drifted = audit(datetime(2026, 3, 2, 9, 15, tzinfo=UTC))
        # the fix goes through Graph too: a direct assignment with the beta assignment API
        policy = graph.get_json(
            f"{graph.base_url}/beta/admin/teams/policy/getPolicyId("
            "type='TeamsComplianceRecordingPolicy',name='AdvisoryRecording')"
        )["value"][0]["policyId"]
        graph.post_json(
            f"{graph.base_url}/beta/admin/teams/policy/userAssignments/assign",
            {"value": [{"userId": UNA, "policyType": "TeamsComplianceRecordingPolicy", "policyId": policy}]},
        )
        fixed = audit(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    finally:
        graph.close()

    assert clean.source == f"Graph {simulator.http_url} teamsUserConfiguration"
    assert (clean.must_record_users, clean.recorded_users, clean.findings) == (3, 3, [])
    assert [
        (f.user_principal_name, f.severity, f.effective.policy_name, f.effective.source) for f in drifted.findings
    ] == [("una.unrecorded@contoso.onmicrosoft.com", "alert", "Global", "global")]
    assert (fixed.recorded_users, fixed.findings, fixed.resolved_findings) == (4, [], drifted.new_findings)
    head = ledger_store.read_head("main")
    assert head is not None and [e.kind for e in ledger_store.entries("main", 1, head.seq)] == [DRIFT, DRIFT_RESOLVED]


def test_graph_and_the_simulators_own_resolution_agree_on_every_users_effective_policy(simulator: Simulator) -> None:
    """The Graph reader (what the timer uses) and a full read of the simulator's tenant (what `--target sim`
    plans against) resolve every user alike, after edits of every kind of assignment."""
    validated = load_desired_state(EXAMPLE.read_text(), "demo-tenant.yaml")
    add_legacy_policy(simulator)  # a group and a direct assignment the file does not declare
    front_office = next(g for g in simulator.tenant()["groups"] if g["id"] == FRONT_OFFICE)
    simulator.put("groups", FRONT_OFFICE, {**front_office, "members": [*front_office["members"], UNA]})
    graph = graph_client(get_settings())
    try:
        via_graph = {
            p.user_id: p
            for p in GraphEffectivePolicies(
                graph,
                catalog_from_desired(validated.desired, GraphDirectory(graph)),
                tenant_default=tenant_default_policy(validated.desired),
            ).effective()
        }
    finally:
        graph.close()
    current = current_from_simulator(simulator.http_url)
    assert current.directory is not None
    via_state = {p.user_id: p for p in StateEffectivePolicies(current.state, current.directory).effective()}

    def resolution(policy: EffectivePolicy) -> tuple[object, ...]:
        return (policy.policy_name, policy.source, policy.group_id)

    assert {u: resolution(p) for u, p in via_graph.items()} == {u: resolution(p) for u, p in via_state.items()}
    assert resolution(via_graph[CORA]) == ("Legacy", "direct", None)
    assert resolution(via_graph[UNA]) == ("Global", "global", None)  # no entry in Graph: the tenant default
    assert via_graph[TOM].recorder_instance_ids == via_state[TOM].recorder_instance_ids == [RECORDER_INSTANCE]


def test_the_timer_audits_the_published_desired_state_into_cosmos(
    simulator: Simulator, stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions import policy as triggers
    from verbatim.platform import clients
    from verbatim.policy.service import publish_desired_state
    from verbatim.policy.stores import CosmosCoverageStateStore, CosmosDesiredStateStore

    database = clients.cosmos_database(stack_env)
    control = database.get_container_client("control")
    publish_desired_state(
        CosmosDesiredStateStore(control), EXAMPLE.read_text(), actor="admin", now=datetime.now(UTC) - timedelta(hours=1)
    )
    front_office = next(g for g in simulator.tenant()["groups"] if g["id"] == FRONT_OFFICE)
    simulator.put("groups", FRONT_OFFICE, {**front_office, "members": [*front_office["members"], UNA]})
    timer = triggers.audit_policy_coverage._function.get_user_function()
    monkeypatch.delenv("POLICY_SIMULATOR_URL")  # the timer needs Graph only
    reload_settings()

    timer(TimerRequest(past_due=False))

    report = CosmosCoverageStateStore(control).load().last_report
    assert report is not None and report.source == f"Graph {simulator.http_url} teamsUserConfiguration"
    assert [f.user_id for f in report.findings] == [UNA]
    assert report.snapshots_written == 8  # every user of the demo tenant, first observation
    drift = [e for e in current().ledger.entries_for_subject(f"user:{UNA}") if e.kind == "policy.drift"]
    assert len(drift) == 1
    snapshots = list(
        database.get_container_client("policy_snapshots").query_items(
            "SELECT * FROM c WHERE c.userId = @u", parameters=[{"name": "@u", "value": TOM}], partition_key=TOM
        )
    )
    assert [
        (
            s["effective"]["policyName"],
            s["effective"]["source"],
            s["effective"]["groupId"],
            s["effective"]["strict"],
            s["effective"]["retentionClass"],
            s["effective"]["recorderInstanceIds"],
        )
        for s in snapshots
    ] == [("StrictRecording", "group", TRADERS, True, "default", [RECORDER_INSTANCE])]


def test_an_admin_re_runs_the_coverage_audit_over_http_at_most_once_per_interval(
    simulator: Simulator, stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal's "Re-run the audit now" button: Recorder.Admin only; the same claim as the timer, so a second
    press within five minutes is a 409 saying when the last audit ran, and the report is the one GET returns."""
    import json

    from functions import policy as triggers
    from tests.callrecords.helpers import handler
    from tests.callrecords.oidc import AUDIENCE, openid_provider
    from tests.policy.test_http import request
    from verbatim.platform import clients
    from verbatim.policy.service import publish_desired_state
    from verbatim.policy.stores import CosmosDesiredStateStore

    control = clients.cosmos_database(stack_env).get_container_client("control")
    publish_desired_state(CosmosDesiredStateStore(control), EXAMPLE.read_text(), actor="admin", now=datetime.now(UTC))
    run = handler(triggers.run_coverage_audit)
    with openid_provider() as provider:
        monkeypatch.setenv("AUTH_OPENID_CONFIG_URL", provider.config_url)
        monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
        monkeypatch.delenv("POLICY_SIMULATOR_URL")
        reload_settings()
        admin = provider.mint(roles=["Recorder.Admin"], name="Ada Admin", oid="admin-oid")
        officer = provider.mint(roles=["Compliance.Officer"])

        refused = run(request("POST", "v1/policy/coverage/audit", token=officer))
        first = run(request("POST", "v1/policy/coverage/audit", token=admin))
        second = run(request("POST", "v1/policy/coverage/audit", token=admin))
        last = handler(triggers.last_coverage_report)(request("GET", "v1/policy/coverage", token=officer))

    assert refused.status_code == 403
    report = json.loads(first.get_body())
    assert first.status_code == 201, report
    assert report["source"] == f"Graph {simulator.http_url} teamsUserConfiguration" and report["mustRecordUsers"] > 0
    assert second.status_code == 409 and second.mimetype == "application/problem+json"
    assert "five minutes apart" in json.loads(second.get_body())["detail"]
    assert json.loads(last.get_body())["auditedAt"] == report["auditedAt"]
