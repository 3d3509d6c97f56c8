"""The invariant checker's reading of what the simulator reports (no stack): an adviser whose every invitation
failed (no ready recorder behind the load balancer) counts as 'invitation failed'; one leg that answered does not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devstack.chaos.invariants import STORAGE_RECOVERY, _invitation_failed, storage_outages
from devstack.chaos.run import PROFILES, plan
from devstack.chaos.traffic import PlacedCall


def advisory_call(legs: list[dict[str, Any]]) -> tuple[PlacedCall, str]:
    calls, _ = plan(1, PROFILES["full"])
    planned = next(c for c in calls if c.kind == "advisory-1:1")
    upn = planned.policy_users[0]
    return PlacedCall(planned, datetime.now(UTC), state={"recorders": legs}), upn


def test_every_invitation_failed_is_read_from_the_simulators_legs() -> None:
    call, upn = advisory_call([{"observedParticipant": "a", "state": "failed"}])
    assert _invitation_failed(call, upn)


def test_a_leg_that_was_established_means_the_invitation_did_not_fail() -> None:
    call, upn = advisory_call(
        [{"observedParticipant": "a", "state": "failed"}, {"observedParticipant": "a", "state": "terminated"}]
    )
    assert not _invitation_failed(call, upn)
    call, upn = advisory_call([])
    assert not _invitation_failed(call, upn)


def test_a_storage_pause_explains_a_call_placed_before_the_recorders_are_back_in_rotation() -> None:
    """ci seed 1 at 09:01: a PSTN call placed 1.1 s after a 5.9-s Azurite pause ended was blocked at set-up (the
    recorders report ready only after their storage back-off, up to 10 s); one placed later is not explained."""
    from datetime import timedelta

    from devstack.chaos.faults import FaultRecord, PlannedFault

    calls, _ = plan(1, PROFILES["full"])
    start = datetime(2026, 12, 7, 9, 1, 36, tzinfo=UTC)
    pause = FaultRecord(PlannedFault(0, "pause", "azurite", 5.9), start, start + timedelta(seconds=5.9))
    soon = PlacedCall(calls[0], start + timedelta(seconds=7), ended_at=start + timedelta(seconds=7.1))
    late = PlacedCall(calls[0], start + timedelta(seconds=5.9) + STORAGE_RECOVERY + timedelta(seconds=1))
    late.ended_at = late.placed_at + timedelta(seconds=1)
    assert storage_outages(soon, [pause]) == [pause]
    assert storage_outages(late, [pause]) == []
