"""The coverage audit timer also runs at start-up, so the first calls after a deployment find their users'
policies; on Flex Consumption a start-up comes with every scale-out and wake-up, so an audit starts only when
none finished in the last five minutes and none is under way (a claim, taken with If-Match in Cosmos). After
an audit that wrote snapshots, reconciliation decides the verdicts that were waiting for a policy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from devstack.testkit.records import call, party
from tests.callrecords.helpers import cosmos_items, drain, handler
from tests.policy.conftest import Simulator
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.contracts.policy import CoverageReport, EffectivePolicy
from verbatim.platform import clients
from verbatim.platform.settings import Settings
from verbatim.policy.coverage import (
    AUDIT_CLAIM_TIMEOUT,
    AUDIT_MIN_INTERVAL,
    CoverageStateStore,
    InMemoryCoverageStateStore,
    audit_coverage,
    audit_once,
)
from verbatim.policy.directory import InMemoryDirectory
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.policy.stores import CosmosCoverageStateStore
from verbatim.wiring import container_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "demo-tenant.yaml"
TOM, UNA = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101", "4c3d5e6f-7081-4c9d-aebf-d2e3f4a5b104"


class OneUser:
    source = "test tenant"

    def effective(self) -> Iterator[EffectivePolicy]:
        yield EffectivePolicy(user_id="u-1", user_principal_name="one@contoso.com", policy_name="P", records=True)


def counting_audit(store: CoverageStateStore, at: datetime, runs: list[datetime]) -> Callable[[], CoverageReport]:
    """The real audit over a one-user tenant, counting its runs."""

    def run() -> CoverageReport:
        runs.append(at)
        time.sleep(0.05)  # long enough for instances starting together to overlap
        return audit_coverage(
            must_record_groups=[],
            directory=InMemoryDirectory(),
            reader=OneUser(),
            now=at,
            state_store=store,
            snapshots=InMemoryPolicySnapshotStore(),
        )

    return run


def test_an_audit_starts_unless_one_finished_within_the_interval() -> None:
    store, runs = InMemoryCoverageStateStore(), []
    for at in (T0, T0 + timedelta(minutes=1), T0 + AUDIT_MIN_INTERVAL - timedelta(seconds=1), T0 + AUDIT_MIN_INTERVAL):
        audit_once(store, at, counting_audit(store, at, runs))

    assert runs == [T0, T0 + AUDIT_MIN_INTERVAL]
    assert store.load().claimed_at is None  # a finished audit leaves no claim behind
    assert timedelta(minutes=15) > AUDIT_MIN_INTERVAL  # every scheduled tick still audits


def test_a_failed_audit_releases_its_claim_and_a_dead_instances_claim_expires() -> None:
    store, runs = InMemoryCoverageStateStore(), []

    def broken() -> CoverageReport:
        raise RuntimeError("Graph is down")

    with pytest.raises(RuntimeError):
        audit_once(store, T0, broken)
    assert audit_once(store, T0 + timedelta(seconds=1), counting_audit(store, T0, runs)) is not None

    later = T0 + timedelta(hours=1)
    assert store.claim(later)  # an instance claims, then dies before finishing
    assert audit_once(store, later + AUDIT_MIN_INTERVAL, counting_audit(store, later, runs)) is None
    assert audit_once(store, later + AUDIT_CLAIM_TIMEOUT, counting_audit(store, later, runs)) is not None
    assert len(runs) == 2


def test_instances_starting_together_audit_once_against_cosmos(stack_env: Settings) -> None:
    control = clients.cosmos_database(stack_env).get_container_client("control")
    runs: list[datetime] = []
    barrier = threading.Barrier(6)

    def start_up(_: int) -> CoverageReport | None:
        store = CosmosCoverageStateStore(control)
        barrier.wait()
        return audit_once(store, T0, counting_audit(store, T0, runs))

    with ThreadPoolExecutor(6) as pool:
        reports = list(pool.map(start_up, range(6)))

    assert len(runs) == 1 and sum(r is not None for r in reports) == 1
    state = CosmosCoverageStateStore(control).load()
    assert (state.last_run, state.claimed_at) == (T0, None)


def test_the_timer_is_declared_to_run_at_start_up() -> None:
    from functions import policy as triggers

    (binding,) = [b.get_dict_repr() for b in triggers.audit_policy_coverage._function.get_bindings()]
    assert (binding["type"], binding["schedule"], binding.get("runOnStartup")) == (
        "timerTrigger",
        "0 */15 * * * *",
        True,
    )


@pytest.mark.integration
def test_a_call_before_the_first_audit_waits_for_it_then_is_decided(simulator: Simulator, stack_env: Settings) -> None:
    from functions import policy as triggers
    from functions import reconciliation
    from verbatim.policy.service import publish_desired_state
    from verbatim.policy.stores import CosmosDesiredStateStore

    database = clients.cosmos_database(stack_env)
    control = database.get_container_client("control")
    now = datetime.now(UTC)
    publish_desired_state(CosmosDesiredStateStore(control), EXAMPLE.read_text(), actor="admin", now=now)
    timer = handler(triggers.audit_policy_coverage)
    reconcile = handler(reconciliation.reconcile)
    drain(stack_env, "reconciliation-requests")

    # Deployed before the call: a trader (strict policy) called an unrecorded colleague; nobody is observed yet.
    # (The call ended longer ago than the grace for a recorder's report: only the policy is awaited here.)
    runtime = container_for(stack_env).reconciliation
    early = call("c-first", [party(TOM), party(UNA)], start=now - timedelta(minutes=20), seconds=30)
    runtime.reconciler.calls.save_if_newer(early, {"id": "c-first"})
    stored = CallRecordStored(call_record_id="c-first", version=1, type="peerToPeer", stored_at="2026-03-02T09:00:00Z")
    reconcile(func.QueueMessage(body=stored.model_dump_json(by_alias=True).encode()))
    waiting = {v["userId"]: (v["verdict"], v["reason"]) for v in cosmos_items(stack_env, "verdicts")}
    assert waiting == {TOM: ("pending", "policy_unknown"), UNA: ("pending", "policy_unknown")}

    # The start-up audit observes every user and asks reconciliation to decide what waited.
    timer(TimerRequest(past_due=False))
    (message,) = drain(stack_env, "reconciliation-requests")
    assert message["schema"] == "policies.observed" and message["snapshotsWritten"] >= 2
    reconcile(func.QueueMessage(body=json.dumps(message).encode()))

    (verdict,) = cosmos_items(stack_env, "verdicts")
    assert (verdict["userId"], verdict["verdict"], verdict["reason"]) == (TOM, "missing", "no_invitation")
    assert verdict["policy"]["policyName"] == "StrictRecording" and verdict["policy"]["certain"] is False
    alerts = [a["action"] for a in cosmos_items(stack_env, "audit") if a["category"] == "alert"]
    assert alerts == ["reconciliation.missing"]

    # Another instance starting a moment later does not audit again.
    audited = CosmosCoverageStateStore(control).load().last_run
    timer(TimerRequest(past_due=False))
    assert CosmosCoverageStateStore(control).load().last_run == audited
    assert drain(stack_env, "reconciliation-requests") == []
