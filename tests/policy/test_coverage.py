"""The coverage audit finds users who must be recorded but are not, once per episode, writes drift and its
resolution to the ledger, and keeps the policy snapshots current."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.callrecords.fake_authority import AUTHORITY, FakeAuthority
from tests.policy.conftest import VALID, desired
from verbatim.contracts.policy import CoverageReport
from verbatim.graph import GraphClient, GraphCredentials, RetryPolicy
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.policy.compile import compile_desired, retention_classes
from verbatim.policy.coverage import DRIFT, DRIFT_RESOLVED, InMemoryCoverageStateStore, audit_coverage
from verbatim.policy.directory import DirectoryUser, InMemoryDirectory
from verbatim.policy.readers import (
    GraphEffectivePolicies,
    StateEffectivePolicies,
    catalog_from_desired,
    tenant_default_policy,
)
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.policy.state import TenantState, UserAssignmentState

TRADERS = "6f1c2a3b-0000-4000-8000-0000000000a1"  # assigned Traders-Strict, must be recorded
DESK_FX = "6f1c2a3b-0000-4000-8000-0000000000f1"  # nested in Traders; no assignment of its own
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ALICE = DirectoryUser(id="u-alice", user_principal_name="alice@contoso.com", usage_location="GB")
BOB = DirectoryUser(id="u-bob", user_principal_name="bob@contoso.com", usage_location="GB")
ERIK = DirectoryUser(id="u-erik", user_principal_name="erik@contoso.com", usage_location="NO")


class World:
    """A tenant (desired state applied), its directory, the audit's stores and a real ledger."""

    def __init__(self) -> None:
        self.desired = desired()
        self.directory = InMemoryDirectory([ALICE, BOB, ERIK], {TRADERS: ["u-alice", DESK_FX], DESK_FX: []})
        self.state: TenantState = compile_desired(self.desired, self.directory).state
        self.coverage = InMemoryCoverageStateStore()
        self.snapshots = InMemoryPolicySnapshotStore()
        self.ledger_store = InMemoryLedgerStore()
        self.ledger = Ledger(self.ledger_store, "main", None)

    def audit(self, at: datetime) -> Any:
        reader = StateEffectivePolicies(
            self.state, self.directory, retention_classes=retention_classes(self.desired), source="test tenant"
        )
        return audit_coverage(
            must_record_groups=[TRADERS],
            directory=self.directory,
            reader=reader,
            now=at,
            state_store=self.coverage,
            snapshots=self.snapshots,
            ledger=self.ledger,
            exclusion_policy=self.desired.jurisdictions.exclusion_policy,
        )

    def ledger_kinds(self) -> list[tuple[str, str]]:
        head = self.ledger_store.read_head("main")
        if head is None:
            return []
        return [(e.kind, e.subject) for e in self.ledger_store.entries("main", 1, head.seq)]


@pytest.fixture
def world() -> World:
    return World()


def test_everyone_in_the_must_record_group_is_recorded_so_there_is_no_drift(world: World) -> None:
    report = world.audit(T0)

    assert (report.must_record_users, report.recorded_users, report.findings) == (1, 1, [])
    assert world.ledger_kinds() == []


def test_a_user_who_joins_a_nested_must_record_group_without_a_policy_is_drift(world: World) -> None:
    world.audit(T0)
    world.directory.add_member(DESK_FX, "u-bob")  # transitive member of Traders; group policy reaches direct only

    report = world.audit(T0 + timedelta(minutes=15))

    assert [(f.user_principal_name, f.severity) for f in report.findings] == [("bob@contoso.com", "alert")]
    assert report.findings[0].message == (
        f"bob@contoso.com is in must-record group {TRADERS} but has no compliance recording policy"
    )
    assert report.new_findings == [report.findings[0].key]
    assert world.ledger_kinds() == [(DRIFT, "user:u-bob")]


def test_a_drift_episode_is_written_once_and_its_resolution_once(world: World) -> None:
    world.directory.add_member(DESK_FX, "u-bob")
    world.audit(T0)
    again = world.audit(T0 + timedelta(minutes=15))
    world.state = world.state.model_copy(
        update={
            "user_assignments": {
                **world.state.user_assignments,
                "bob@contoso.com": UserAssignmentState(user="bob@contoso.com", policy="Traders-Strict"),
            }
        }
    )

    fixed = world.audit(T0 + timedelta(minutes=30))

    assert again.new_findings == [] and len(again.findings) == 1
    assert fixed.findings == [] and len(fixed.resolved_findings) == 1
    assert world.ledger_kinds() == [(DRIFT, "user:u-bob"), (DRIFT_RESOLVED, "user:u-bob")]


def test_a_policy_that_does_not_record_is_drift_too(world: World) -> None:
    world.state = world.state.model_copy(
        update={
            "recording_policies": {
                **world.state.recording_policies,
                "traders-strict": world.state.recording_policies["traders-strict"].model_copy(
                    update={"enabled": False}
                ),
            }
        }
    )

    report = world.audit(T0)

    assert [f.key.split(":")[1] for f in report.findings] == ["not-recording"]
    assert "effective policy Traders-Strict (group) does not record" in report.findings[0].message


def test_a_user_excluded_by_jurisdiction_is_reported_as_information_not_alert(world: World) -> None:
    world.directory.add_member(TRADERS, "u-erik")
    world.state = compile_desired(world.desired, world.directory).state  # erik (NO) gets Not-Recorded directly

    report = world.audit(T0)

    assert [(f.user_principal_name, f.severity) for f in report.findings] == [("erik@contoso.com", "info")]
    assert "excluded by jurisdiction (Not-Recorded)" in report.findings[0].message


def test_snapshots_are_written_on_change_only_with_the_previous_run_as_change_window(world: World) -> None:
    first = world.audit(T0)
    second = world.audit(T0 + timedelta(minutes=15))
    world.directory.groups[TRADERS].remove("u-alice")

    third = world.audit(T0 + timedelta(minutes=30))

    assert (first.snapshots_written, second.snapshots_written, third.snapshots_written) == (3, 0, 1)
    history = world.snapshots.history("u-alice")
    assert [s.effective.policy_name for s in history] == ["Traders-Strict", None]
    assert history[0].effective.retention_class == "mifid-5y" and history[0].effective.strict is True
    assert history[1].changed_after == T0 + timedelta(minutes=15)
    assert world.snapshots.effective_at("u-alice", T0 + timedelta(minutes=5)).must_record is True
    assert world.snapshots.effective_at("u-alice", T0 + timedelta(minutes=20)).must_record is None  # in the window
    assert world.snapshots.effective_at("u-alice", T0 + timedelta(minutes=31)).must_record is False


def test_an_unreadable_group_is_reported_and_the_rest_is_audited(world: World) -> None:
    class Failing(InMemoryDirectory):
        def transitive_members(self, group_id: str) -> list[DirectoryUser]:
            from verbatim.graph import GraphNotFound

            if group_id == "6f1c2a3b-0000-4000-8000-00000000dead":
                raise GraphNotFound("no such group", status=404)
            return super().transitive_members(group_id)

    directory = Failing([ALICE], {TRADERS: ["u-alice"]})
    report = audit_coverage(
        must_record_groups=[TRADERS, "6f1c2a3b-0000-4000-8000-00000000dead"],
        directory=directory,
        reader=StateEffectivePolicies(world.state, directory),
        now=T0,
        state_store=InMemoryCoverageStateStore(),
    )

    assert report.recorded_users == 1
    assert len(report.problems) == 1 and "00000000dead" in report.problems[0]


# --- Graph teamsUserConfiguration ------------------------------------------------------------------------


def user_configuration(user_id: str, upn: str, assignment: dict[str, Any] | None, kind: str = "user") -> dict[str, Any]:
    assignments = [{"policyType": "TeamsMeetingPolicy", "policyAssignment": {"displayName": "Global"}}]
    if assignment is not None:
        assignments.append({"policyType": "TeamsComplianceRecordingPolicy", "policyAssignment": assignment})
    return {"id": user_id, "userPrincipalName": upn, "accountType": kind, "effectivePolicyAssignments": assignments}


def graph_serving(pages: list[list[dict[str, Any]]]) -> GraphClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/admin/teams/userConfigurations"
        page = int(request.url.params.get("page", "0"))
        body: dict[str, Any] = {"value": pages[page]}
        if page + 1 < len(pages):
            body["@odata.nextLink"] = f"https://graph.test/v1.0/admin/teams/userConfigurations?page={page + 1}"
        return httpx.Response(200, json=body)

    return graph_answering(handler)


def graph_answering(handler: Callable[[httpx.Request], httpx.Response]) -> GraphClient:
    credentials = GraphCredentials(
        client_id="app", client_secret="s3cret", authority_host=AUTHORITY, transport=FakeAuthority().transport()
    )
    return GraphClient(
        base_url="https://graph.test",
        tenant_id="tenant-1",
        credentials=credentials,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(base_delay=0.001, max_delay=0.002),
        sleep=lambda seconds: None,
    )


def test_graph_effective_policies_follow_pages_and_read_the_compliance_policy_type() -> None:
    graph = graph_serving(
        [
            [
                user_configuration(
                    "u-alice",
                    "alice@contoso.com",
                    {"assignmentType": "group", "displayName": "Tag:Traders-Strict", "groupId": TRADERS},
                ),
                user_configuration(
                    "u-dana", "dana@contoso.com", {"assignmentType": "direct", "displayName": "Advisers-Relaxed"}
                ),
            ],
            [
                user_configuration("u-bob", "bob@contoso.com", None),
                user_configuration("u-rec", "verbatim-recorder@contoso.onmicrosoft.com", None, kind="resourceAccount"),
                user_configuration("u-old", "old@contoso.com", {"assignmentType": "direct", "displayName": "Legacy"}),
            ],
        ]
    )
    reader = GraphEffectivePolicies(graph, catalog_from_desired(desired()))

    found = {p.user_id: p for p in reader.effective()}

    assert sorted(found) == ["u-alice", "u-bob", "u-dana", "u-old"]
    alice = found["u-alice"]
    assert (alice.policy_name, alice.source, alice.group_id, alice.records, alice.strict, alice.retention_class) == (
        "Traders-Strict",
        "group",
        TRADERS,
        True,
        True,
        "mifid-5y",
    )
    assert (found["u-dana"].source, found["u-dana"].records, found["u-dana"].strict) == ("direct", True, False)
    # no compliance entry: the tenant default, the built-in Global policy (not declared, so not trusted to record)
    assert (found["u-bob"].policy_name, found["u-bob"].source, found["u-bob"].records) == ("Global", "global", False)
    assert (found["u-old"].policy_name, found["u-old"].records) == ("Legacy", False)  # unknown policy: not trusted
    # recorders named by their resource account's object id, found in the same list
    assert alice.recorder_instance_ids == ["u-rec"]


def test_a_user_without_a_compliance_entry_has_the_declared_tenant_wide_policy() -> None:
    text = VALID.replace("assignments:\n  users:\n", "assignments:\n  global: Advisers-Relaxed\n  users:\n", 1)
    assert text != VALID
    declared = desired(text)
    graph = graph_serving([[user_configuration("u-bob", "bob@contoso.com", None)]])
    reader = GraphEffectivePolicies(
        graph, catalog_from_desired(declared), tenant_default=tenant_default_policy(declared)
    )

    (bob,) = reader.effective()

    assert (bob.policy_name, bob.source, bob.group_id, bob.records, bob.strict) == (
        "Advisers-Relaxed",
        "global",
        None,
        True,
        False,
    )
    assert tenant_default_policy(desired()) == "Global" and tenant_default_policy(None) == "Global"


def test_one_users_configuration_is_read_with_or_without_the_documented_value_wrapper() -> None:
    item = user_configuration(
        "u-alice", "alice@contoso.com", {"assignmentType": "group", "displayName": "Traders-Strict", "groupId": TRADERS}
    )

    def reader_answering(body: dict[str, Any]) -> GraphEffectivePolicies:
        def handler(request: httpx.Request) -> httpx.Response:
            assert request.url.path == "/v1.0/admin/teams/userConfigurations/u-alice"
            return httpx.Response(200, json=body)

        return GraphEffectivePolicies(graph_answering(handler), catalog_from_desired(desired()))

    user = DirectoryUser(id="u-alice", user_principal_name="alice@contoso.com")
    for body in (item, {"value": item}):
        found = reader_answering(body).for_user(user)
        assert (found.policy_name, found.source, found.group_id, found.records) == (
            "Traders-Strict",
            "group",
            TRADERS,
            True,
        )


def test_the_report_lists_every_policy_user_not_only_a_count(world: World) -> None:
    """Must-record members whatever their policy (recorded, none, excluded), and users a policy records though no
    must-record group names them: the list the coverage page shows."""
    dana = DirectoryUser(id="u-dana", user_principal_name="dana@contoso.com", usage_location="GB")
    world.directory = InMemoryDirectory([ALICE, BOB, ERIK, dana], world.directory.groups)
    world.directory.add_member(DESK_FX, "u-bob")
    world.directory.add_member(TRADERS, "u-erik")
    world.state = compile_desired(world.desired, world.directory).state  # dana: Advisers-Relaxed, directly

    report = world.audit(T0)

    listed = [(u.user_principal_name, u.must_record, u.policy_name, u.records, u.strict) for u in report.users]
    assert listed == [
        ("alice@contoso.com", True, "Traders-Strict", True, True),
        ("bob@contoso.com", True, None, False, False),
        ("dana@contoso.com", False, "Advisers-Relaxed", True, False),
        ("erik@contoso.com", True, "Not-Recorded", False, False),
    ]
    assert report.must_record_users == 3 and report.recorded_users == 1
    assert next(u for u in report.users if u.user_id == "u-bob").groups == [TRADERS]


def test_a_report_stored_by_a_version_1_audit_still_reads_without_its_user_list(world: World) -> None:
    stored = world.audit(T0).model_dump(mode="json", by_alias=True, exclude={"users"}) | {"schemaVersion": 1}

    read = CoverageReport.model_validate(stored)

    assert read.schema_version == 2 and read.users is None and read.must_record_users == 1
