"""A policy user in two calls at once (a trader on a turret line, a call-queue agent, a call on hold during a
meeting): a recording counts for the call it was tied to, never for another call of the same person that merely
overlaps it in time.

The tie is the call chain id. The recorder keeps the `callChainId` of the call it was invited to (the incoming-call
notification's call resource), and a call record's `id` is that call chain id: Microsoft Graph, *Get callRecord*
(microsoft-graph-docs `api-reference/v1.0/api/callrecords-callrecord-get.md`): "You can get the id of a callRecord
in two ways: Subscribe to change notifications to the /communications/callRecords endpoint. Use the callChainId
property of a call." The *call records API FAQ* (`concepts/callrecords-api-faq.md`, "Where can I find the call IDs")
adds that "the callChainId can differ from the call record ID in certain scenarios, such as transfer calls, due to
architecture specifics" — so a recording of another chain may (rarely) be a transferred leg of this call, but
nothing in it says so; crediting it would judge an unrecorded call `recorded` (the worst error of reconciliation),
whereas not crediting it costs at most a `missing` verdict a reviewer can clear.

Before the fix, `recordings_for` (verbatim/reconciliation/evaluate.py) took every recording of the observed user
whose time overlapped the call, so the unrecorded one of two simultaneous calls was judged `recorded` from the
other's recording (found by the resilience and chaos runs: issues 21 and 23). The time-overlap rule survives only
as the fallback for a recording that carries no chain id at all (Graph sent none, or a record from before the
recorder kept it): it is matched by observed user and time, judged as any recording is, and the verdict's
`reasonDetail` says it was matched by time alone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, phone, recording
from tests.reconciliation.test_reconciler import World, stored
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.reconciliation.evaluate import recordings_for

CALLER = "+41445550100"  # an outside caller on the trader's second line


@pytest.fixture
def world() -> World:
    return World()


def test_a_recording_counts_only_for_the_call_whose_chain_id_the_recorder_kept() -> None:
    """The matching rule itself: call A (10 min) and call B (3 min inside A) of the same trader; the recorder was
    invited to A only. B's call record id is B's chain id, which no recording carries."""
    call_a = call("chain-a", [party(TRADER), party(CLIENT)], seconds=600)
    call_b = call("chain-b", [party(TRADER), phone(CALLER)], start=T0 + timedelta(minutes=2), seconds=180)
    of_a = recording("r-a", "chain-a", TRADER, seconds=600)

    assert recordings_for(TRADER, call_a, [of_a]) == [of_a]
    assert recordings_for(TRADER, call_b, [of_a]) == []


def test_the_unrecorded_one_of_a_traders_two_simultaneous_calls_is_missing_not_recorded(world: World) -> None:
    """A turret trader on call A, recorded, takes call B on another line; B's invitation never reached a recorder.
    B must be `missing` (an alert), not `recorded` on the strength of A's recording."""
    world.add(recording("r-a", "chain-a", TRADER, seconds=600))
    world.store_call(call("chain-a", [party(TRADER), party(CLIENT)], seconds=600))
    world.store_call(call("chain-b", [party(TRADER), phone(CALLER)], start=T0 + timedelta(minutes=2), seconds=180))

    world.reconciler.handle(stored("chain-a"))
    world.reconciler.handle(stored("chain-b"))

    a, b = world.verdict("chain-a"), world.verdict("chain-b")
    assert (a.verdict, a.recording_ids) == ("recorded", ["r-a"])
    assert (b.verdict, b.reason, b.recording_ids, b.coverage) == ("missing", "no_invitation", [], 0)
    assert world.alerts() == ["reconciliation.missing"]


def test_a_late_recording_of_one_call_changes_no_verdict_of_a_simultaneous_call(world: World) -> None:
    """The other order: both call records first (both `missing`), then A's recording is sealed. Its
    `recording.indexed` re-evaluates every call of the trader it overlaps, and only A's verdict may change."""
    world.store_call(call("chain-a", [party(TRADER), party(CLIENT)], seconds=600))
    world.store_call(call("chain-b", [party(TRADER), phone(CALLER)], start=T0 + timedelta(minutes=2), seconds=180))
    world.reconciler.reconcile_call("chain-a")
    world.reconciler.reconcile_call("chain-b")

    world.add(recording("r-a", "chain-a", TRADER, seconds=600))
    world.reconciler.handle(RecordingIndexed(recording_id="r-a", at="2025-03-03T10:00:00.000000Z"))

    assert (world.verdict("chain-a").verdict, world.verdict("chain-a").recording_ids) == ("recorded", ["r-a"])
    assert (world.verdict("chain-b").verdict, world.verdict("chain-b").recording_ids) == ("missing", [])
    assert world.alerts() == ["reconciliation.missing", "reconciliation.missing", "reconciliation.resolved"]


def test_each_of_two_recorded_simultaneous_calls_lists_only_its_own_recording(world: World) -> None:
    world.add(
        recording("r-a", "chain-a", TRADER, seconds=600),
        recording(
            "r-b", "chain-b", TRADER, start=T0 + timedelta(minutes=2), seconds=180, others=(), phone_numbers=(CALLER,)
        ),
    )
    world.store_call(call("chain-a", [party(TRADER), party(CLIENT)], seconds=600))
    world.store_call(call("chain-b", [party(TRADER), phone(CALLER)], start=T0 + timedelta(minutes=2), seconds=180))

    world.reconciler.reconcile_call("chain-a")
    world.reconciler.reconcile_call("chain-b")

    assert world.verdict("chain-a").recording_ids == ["r-a"]
    assert world.verdict("chain-b").recording_ids == ["r-b"]


def test_a_recording_of_another_chain_is_not_credited_even_when_it_covers_the_call(world: World) -> None:
    """Graph's FAQ: the chain id "can differ from the call record ID in certain scenarios, such as transfer calls".
    A recording of another chain that covers this call exactly is still not evidence of *this* call: the verdict is
    `missing`, a false alarm a reviewer can clear, never a false `recorded`."""
    world.add(recording("r1", "another-chain", TRADER, start=T0 + timedelta(seconds=1), seconds=59))
    world.store_call(call("c8", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c8")

    assert (world.verdict("c8").verdict, world.verdict("c8").recording_ids) == ("missing", [])


def test_a_recording_without_a_chain_id_falls_back_to_observed_user_and_time_and_says_so(world: World) -> None:
    """The documented fallback: a recording that carries no chain id is matched by observed user and time overlap,
    judged like any other (here it covers the call: `recorded`, reason `recorded`), and the verdict's detail says
    the match rests on time alone — such a recording overlapping two calls of the user counts for both."""
    world.add(recording("r1", None, TRADER, start=T0 + timedelta(seconds=1), seconds=59))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason, verdict.recording_ids) == ("recorded", "recorded", ["r1"])
    assert verdict.reason_detail == (
        "recording r1 carries no call chain id: matched to this call by observed user and time alone"
    )


def test_a_tied_recording_needs_no_fallback_note(world: World) -> None:
    world.add(recording("r1", "c1", TRADER, start=T0 + timedelta(seconds=1), seconds=59))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c1")

    assert (world.verdict("c1").verdict, world.verdict("c1").reason_detail) == ("recorded", "")


def test_a_partial_verdict_from_a_chainless_recording_keeps_its_reason_and_adds_the_fallback_note(
    world: World,
) -> None:
    world.add(recording("r1", None, TRADER, seconds=25, interrupted=True))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)], seconds=60))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert verdict.reason_detail.startswith("recording r1 was interrupted")
    assert verdict.reason_detail.endswith(
        "; recording r1 carries no call chain id: matched to this call by observed user and time alone"
    )
