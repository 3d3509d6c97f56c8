"""A recording with video in the portal, in a real browser (Debian chromium through playwright): an officer opens
it, gives a reason, and the player plays the MP4 access copy (audio with the screen share) as a <video>; the
timeline says when the screen was shared; a screenshot is kept (docs/video.md)."""

from __future__ import annotations

from typing import Any

from tests.api.world import World, seal_recording
from tests.e2e.test_portal import OSCAR, axe, browser, first_page, shot, sign_in, simulator, stack  # noqa: F401
from tests.funchost.conftest import RunningHost, wait_for
from verbatim.wiring import container_for


def test_an_officer_plays_a_recording_with_its_screen_share_in_the_portal(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    world, host = stack
    sealed = seal_recording(world.settings, seconds=6.0, video=True, phone_number=None)
    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.goto(f"{host.base_url}/api/portal/#/recording/{sealed.recording_id}")
    page.wait_for_selector("#rec-proof .badge")
    assert page.locator("video#player").count() == 1
    assert "shared their screen" in page.inner_text("#rec-timeline")
    page.fill("#reason", "Case 2025-131: screen share review")
    page.get_by_role("button", name="Load and play").click()
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=60)
    # The picture is decoded: the browser knows the video's size (1280x720, the simulator's screen share).
    size = page.evaluate(
        "[document.querySelector('#player').videoWidth, document.querySelector('#player').videoHeight]"
    )
    assert size == [1280, 720], size
    page.evaluate("(() => { const p = document.querySelector('#player'); p.pause(); p.currentTime = 2.5; })()")
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=20)
    assert "access copy with video" in page.inner_text("#play-status")
    axe(page, "recording with video")
    shot(page, "recording-video")
    ledger = container_for(world.settings).ledger
    entries = ledger.entries_for_subject(f"recording:{sealed.recording_id}", limit=50)
    played = [e for e in entries if e.kind == "accessed" and e.details["action"] == "media.video"]
    assert played and played[0].details["reason"] == "Case 2025-131: screen share review"
