"""The invariant checker's reading of what the simulator reports (no stack): an adviser whose every invitation
failed (no ready recorder behind the load balancer) counts as 'invitation failed'; one leg that answered does not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devstack.chaos.invariants import _invitation_failed
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
