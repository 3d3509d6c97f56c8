"""A call whose users the policy coverage audit has not observed yet (the first minutes after a deployment, a
new user) gets a `pending` verdict (`policy_unknown`) per user of the tenant — never no verdict at all — and
the verdict is decided once the audit has written their snapshots: judged on the recordings if their policy
recorded, withdrawn if it did not. Service layer, in-memory stores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from tests.reconciliation.test_reconciler import World
from verbatim.contracts.reconciliation import PoliciesObserved
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.service import parse_request

NEW_TRADER = "u-new-trader"
FIRST_AUDIT = T0 + timedelta(minutes=10)  # the deployment's first audit runs after the call


@pytest.fixture
def world() -> World:
    fresh = World()
    fresh.snapshots = InMemoryPolicySnapshotStore()  # nobody observed yet
    fresh.reconciler.snapshots = fresh.snapshots
    return fresh


def first_audit(world: World, *, recorded: tuple[str, ...], unrecorded: tuple[str, ...]) -> None:
    """What the audit writes on its first run: one snapshot per user, valid from then on."""
    for user in recorded:
        world.snapshots.add(snapshot(user, since=FIRST_AUDIT))
    for user in unrecorded:
        world.snapshots.add(snapshot(user, records=False, since=FIRST_AUDIT))


def observed() -> PoliciesObserved:
    return PoliciesObserved(snapshots_written=2, at="2025-03-03T09:10:00.000000Z")


def test_users_the_audit_has_not_observed_get_a_pending_verdict_not_none(world: World) -> None:
    world.store_call(call("c1", [party(NEW_TRADER), party(CLIENT)]))

    outcome = world.reconciler.reconcile_call("c1")

    assert [(v.user_id, v.verdict, v.reason) for v in outcome.verdicts] == [
        (CLIENT, "pending", "policy_unknown"),
        (NEW_TRADER, "pending", "policy_unknown"),
    ]
    verdict = world.verdict("c1", NEW_TRADER)
    assert verdict.policy.certain is False and not verdict.explained
    assert "not observed" in verdict.reason_detail
    assert world.alerts() == []  # nothing is known to be wrong yet


def test_once_observed_a_user_whose_policy_recorded_is_judged_and_one_whose_did_not_is_withdrawn(
    world: World,
) -> None:
    world.store_call(call("c2", [party(NEW_TRADER), party(CLIENT)]))
    world.reconciler.reconcile_call("c2")

    first_audit(world, recorded=(NEW_TRADER,), unrecorded=(CLIENT,))
    outcomes = world.reconciler.handle(parse_request(observed().model_dump_json(by_alias=True)))

    assert [o.call_id for o in outcomes] == ["c2"]
    verdict = world.verdict("c2", NEW_TRADER)
    assert (verdict.verdict, verdict.reason) == ("missing", "no_invitation")
    assert (verdict.policy.policy_name, verdict.policy.certain) == ("Traders", False)  # the first observation
    assert [(h.verdict, h.reason) for h in verdict.history] == [("pending", "policy_unknown")]
    assert f"c2:{CLIENT}" not in world.verdicts.verdicts  # the client never had to be recorded
    assert world.alerts() == ["reconciliation.missing"]

    # Redelivered, and nothing waits any more: nothing changes.
    assert world.reconciler.handle(observed()) == []
    assert world.alerts() == ["reconciliation.missing"]


def test_a_recorded_call_of_a_user_observed_after_it_is_recorded(world: World) -> None:
    world.add(recording("r1", "c3", NEW_TRADER, start=T0 + timedelta(seconds=1), seconds=59))
    world.store_call(call("c3", [party(NEW_TRADER), party(CLIENT)]))
    world.reconciler.reconcile_call("c3")
    assert world.verdict("c3", NEW_TRADER).verdict == "recorded"  # the recorder was invited: judged at once

    first_audit(world, recorded=(NEW_TRADER,), unrecorded=(CLIENT,))
    world.reconciler.handle(observed())

    assert world.verdict("c3", NEW_TRADER).verdict == "recorded"
    assert [v.user_id for v in world.verdicts.for_call("c3")] == [NEW_TRADER]


def test_only_verdicts_waiting_for_a_policy_are_revisited(world: World) -> None:
    world.snapshots.add(snapshot(TRADER, since=T0 - timedelta(days=1)))
    world.snapshots.add(snapshot(CLIENT, records=False, since=T0 - timedelta(days=1)))
    world.add(recording("r1", "c4", TRADER, status="stopped"))  # pending too, but waiting for its seal
    world.store_call(call("c4", [party(TRADER), party(CLIENT)]))
    world.reconciler.reconcile_call("c4")
    assert (world.verdict("c4").verdict, world.verdict("c4").reason) == ("pending", "recording_pending")

    assert world.reconciler.handle(observed()) == []


def test_a_user_of_no_known_tenant_is_not_awaited(world: World) -> None:
    world.store_call(call("c5", [party(NEW_TRADER), party("u-somebody", tenant=None)]))  # type: ignore[arg-type]

    outcome = world.reconciler.reconcile_call("c5")

    assert [v.user_id for v in outcome.verdicts] == [NEW_TRADER]
