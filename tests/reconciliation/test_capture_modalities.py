"""A policy that requires a modality (docs/policies.md#what-a-policy-captures): a call whose record says it had a
screen share (or cameras), judged against the user's sealed recordings. Audio fully recorded but the required
modality absent from every sealed recording is `partial` with reason `modality_not_captured`; a modality the call
never had, or one the policy does not require, changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, SALES, T0, TRADER, call, party, recording, snapshot
from tests.reconciliation.test_reconciler import World
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore

SHARED = ("audio", "videoBasedScreenSharing")


@pytest.fixture
def world() -> World:
    world = World()
    world.snapshots = InMemoryPolicySnapshotStore(
        [snapshot(TRADER, capture=SHARED), snapshot(SALES, strict=False), snapshot(CLIENT, records=False)]
    )
    world.reconciler.snapshots = world.snapshots  # the trader's policy requires the screen share
    return world


def test_a_screen_share_the_policy_requires_and_the_recorder_did_not_capture_is_partial_with_reason(
    world: World,
) -> None:
    world.add(recording("r1", "c1", TRADER, seconds=60, modalities=["audio"], capture=["audio", "video"]))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)], modalities=SHARED))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason) == ("partial", "modality_not_captured")
    assert verdict.coverage == 1.0 and verdict.recorded_seconds == 60 and verdict.gaps == []
    assert verdict.reason_detail == (
        "the call had screen sharing (videoBasedScreenSharing), which policy Traders requires, and no sealed "
        "recording of the user holds it: r1 captured audio (the recorder was told to capture audio, video)"
    )
    assert world.alerts() == ["reconciliation.partial"]


def test_a_recording_that_holds_the_screen_share_is_recorded(world: World) -> None:
    world.add(recording("r1", "c2", TRADER, seconds=60, modalities=SHARED))
    world.store_call(call("c2", [party(TRADER), party(CLIENT)], modalities=SHARED))

    world.reconciler.reconcile_call("c2")

    assert (world.verdict("c2").verdict, world.verdict("c2").reason) == ("recorded", "recorded")


def test_a_call_without_a_screen_share_needs_none(world: World) -> None:
    world.add(recording("r1", "c3", TRADER, seconds=60, modalities=["audio"]))
    world.store_call(call("c3", [party(TRADER), party(CLIENT)], modalities=["audio", "video"]))

    world.reconciler.reconcile_call("c3")

    assert world.verdict("c3").verdict == "recorded"


def test_a_policy_that_requires_audio_only_is_recorded_whatever_was_shared() -> None:
    world = World()  # the trader's policy says nothing of capture: audio
    world.add(recording("r1", "c4", TRADER, seconds=60, modalities=["audio"]))
    world.store_call(call("c4", [party(TRADER), party(CLIENT)], modalities=["audio", "video", *SHARED]))

    world.reconciler.reconcile_call("c4")

    assert world.verdict("c4").verdict == "recorded"


def test_a_seal_that_predates_the_record_of_its_modalities_is_not_judged_on_them(world: World) -> None:
    world.add(recording("r1", "c5", TRADER, seconds=60, modalities=None))
    world.store_call(call("c5", [party(TRADER), party(CLIENT)], modalities=SHARED))

    world.reconciler.reconcile_call("c5")

    assert world.verdict("c5").verdict == "recorded"


def test_a_second_recording_still_being_sealed_may_hold_the_share_so_the_verdict_waits(world: World) -> None:
    world.add(recording("r1", "c6", TRADER, seconds=60, modalities=["audio"]))
    world.add(recording("r2", "c6", TRADER, seconds=60, status="stopped"))  # its pair, not sealed yet
    world.store_call(call("c6", [party(TRADER), party(CLIENT)], modalities=SHARED))

    world.reconciler.reconcile_call("c6")
    assert (world.verdict("c6").verdict, world.verdict("c6").reason) == ("pending", "recording_pending")

    world.add(recording("r2", "c6", TRADER, start=T0 + timedelta(seconds=0.2), seconds=59.8, modalities=SHARED))
    world.reconciler.reconcile_call("c6")
    assert world.verdict("c6").verdict == "recorded"
