"""Issue 21: with ConcurrentInvitationCount 2 (or a paired application) two recorder instances record the same
call leg for the same policy user. Reconciliation judges the user on the union of the two recordings' sealed
evidence: one instance killed mid-call still gives `recorded` when the other captured the whole presence; a
stretch neither captured is still a gap; and the verdict lists both recordings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording
from tests.reconciliation.test_coverage_from_sealed_parts import sealed_in_parts
from tests.reconciliation.test_reconciler import World


@pytest.fixture
def world() -> World:
    return World()


def test_one_instance_killed_mid_call_is_recorded_when_the_other_captured_the_whole_presence(world: World) -> None:
    world.add(sealed_in_parts("killed", "c1", [(0.0, 8.0, True)], reported_seconds=8.0))
    world.add(recording("survivor", "c1", TRADER, start=T0 + timedelta(seconds=0.4), seconds=39.6))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)], seconds=40))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason, verdict.gaps) == ("recorded", "recorded", [])
    assert verdict.coverage == pytest.approx(1.0, abs=1e-3)  # the killed one held the first 0.4 s
    assert sorted(verdict.recording_ids) == ["killed", "survivor"]


def test_the_same_killed_recording_alone_is_partial(world: World) -> None:
    # The control: without the second invitation the same kill loses the rest of the call.
    world.add(sealed_in_parts("killed", "c2", [(0.0, 8.0, True)], reported_seconds=8.0))
    world.store_call(call("c2", [party(TRADER), party(CLIENT)], seconds=40))

    world.reconciler.reconcile_call("c2")

    verdict = world.verdict("c2")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert verdict.coverage == pytest.approx(0.2, abs=1e-3)


def test_gaps_in_one_capture_filled_by_the_other_count_and_a_stretch_neither_captured_stays_a_gap(
    world: World,
) -> None:
    world.add(sealed_in_parts("a", "c3", [(0.0, 10.0, True), (20.0, 20.0, False)], reported_seconds=40.0))
    world.add(sealed_in_parts("b", "c3", [(8.0, 7.0, True)], reported_seconds=7.0))  # 8 s to 15 s
    world.store_call(call("c3", [party(TRADER), party(CLIENT)], seconds=40))

    world.reconciler.reconcile_call("c3")

    verdict = world.verdict("c3")
    assert verdict.verdict == "partial"
    assert [round(g.seconds, 3) for g in verdict.gaps] == [5.0]  # 15 s to 20 s: in neither recording
    assert verdict.coverage == pytest.approx(35 / 40, abs=1e-3)
