"""A recording that is one of a pair (2N recording, issue 21) in the portal, in a real browser: the recording's page
says which other recording (and recorder instance) it is paired with and how long the union of both is; the officer
chooses between this recorder's own copy and the pair's copy of the union of both recorders, and each plays for as
long as it covers (docs/resilience.md: serving the pair's access copy); each read is in the ledger with its reason."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from devstack.testkit.records import T0
from tests.api.world import World, seal_recording
from tests.e2e.test_portal import OSCAR, axe, browser, open_recording, shot, simulator, stack  # noqa: F401
from tests.funchost.conftest import RunningHost, wait_for
from verbatim.wiring import container_for

REASON = "Case 2025-140: both recorders"


def _play(page: Any, copy: str) -> float:
    page.check(f"#copies input[value={copy}]")
    page.fill("#reason", REASON)
    page.get_by_role("button", name="Load and play").click()
    wait_for(lambda: page.evaluate("document.querySelector('#player').dataset.copy") == copy, timeout=60)
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 1, timeout=60)
    page.evaluate("document.querySelector('#player').pause()")
    return float(page.evaluate("document.querySelector('#player').duration"))


def test_an_officer_plays_this_recorders_copy_or_the_union_of_both_recorders(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    world, host = stack
    chain = f"call-{uuid.uuid4().hex[:10]}"
    # recorder-1 was killed 5 s in; recorder-2 answered half a second later and recorded to the end (9.5 s)
    killed = seal_recording(world.settings, seconds=5.0, chain=chain, instance="recorder-1", phone_number=None)
    survivor = seal_recording(
        world.settings,
        seconds=9.0,
        chain=chain,
        instance="recorder-2",
        started_at=T0 + timedelta(seconds=0.5),
        phone_number=None,
    )
    page = open_recording(browser, host, killed.recording_id)
    pair = page.inner_text("#rec-pair")
    assert survivor.recording_id in pair and "recorder-2" in pair and "union of both 9.5 s" in pair, pair
    assert page.is_visible("#copies")
    assert "this recorder's copy (recorder-1)" in page.inner_text("#copies")

    own = _play(page, "own")
    assert abs(own - 5.0) < 0.2, own  # the killed recorder's own capture stops where it was killed
    assert "access copy." in page.inner_text("#play-status")
    union = _play(page, "pair")
    assert abs(union - 9.5) < 0.2, union  # the union: the survivor's capture fills what the killed one missed
    assert "both recorders (union)" in page.inner_text("#play-status")
    axe(page, "recording of a pair")
    shot(page, "recording-pair")

    ledger = container_for(world.settings).ledger
    reads = {
        e.details["action"]: e
        for e in ledger.entries_for_subject(f"recording:{killed.recording_id}", limit=100)
        if e.kind == "accessed" and e.actor == OSCAR.oid and e.details["action"].startswith("media.")
    }
    assert set(reads) == {"media.access", "media.pair"}
    assert reads["media.pair"].details["reason"] == REASON
