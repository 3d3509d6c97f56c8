"""Issue 22 in the portal, in a real browser (Debian chromium through playwright): a recording whose evidence is
sealed but whose access copy is still being made says so and offers no replay (the API would answer 409); once the
access copy is sealed, the same page plays it."""

from __future__ import annotations

from typing import Any

from tests.api.world import World, seal_access_copy, seal_recording
from tests.e2e.test_portal import browser, load_and_play, open_recording, simulator, stack  # noqa: F401
from tests.funchost.conftest import RunningHost


def test_the_portal_says_the_access_copy_is_not_ready_then_plays_it_once_sealed(
    stack: tuple[World, RunningHost],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    world, host = stack
    sealed = seal_recording(world.settings, seconds=6.0, phone_number=None, access_copy=False)
    page = open_recording(browser, host, sealed.recording_id)
    assert "Access copy not ready" in page.inner_text("#play-status")
    assert page.get_by_role("button", name="Load and play").is_disabled()

    seal_access_copy(world.settings, sealed)

    page.evaluate("location.hash = '#/'")  # away and back: the page reads the recording again
    page.wait_for_function("!document.querySelector('#rec-proof')")
    page.evaluate(f"location.hash = '#/recording/{sealed.recording_id}'")
    page.wait_for_selector("#rec-proof .badge")
    assert "not ready" not in page.inner_text("#play-status")
    load_and_play(page, "Case 2025-222: replay once sealed")
    assert "access copy" in page.inner_text("#play-status")
