"""The portal's side of issue 13, findings 1 and 3: a reader sees "Evidence store not locked" while the recordings
container's default WORM policy is not locked (always on Azurite, which cannot lock it), and a recording whose
sealed evidence was changed is shown as tampered with its player disabled. Debian's chromium through playwright
against the local Functions host; the person signs in with the local stack's token paste.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.world import seal_recording
from tests.e2e.test_portal import CHROMIUM, LAUNCH_FLAGS
from tests.security.conftest import OFFICER, Stack
from verbatim.wiring import container_for


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=LAUNCH_FLAGS, headless=True
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _sign_in(page: Any, stack: Stack, subject: str) -> None:
    page.goto(f"{stack.api}/portal/")
    page.wait_for_selector("#token-form:not([hidden])")
    page.fill("#token", stack.token(OFFICER, subject=subject))
    page.get_by_role("button", name="Use this token").click()
    page.wait_for_selector("#who:not([hidden])")


def test_a_reader_sees_that_the_evidence_store_is_not_locked(stack: Stack, page: Any) -> None:
    _sign_in(page, stack, "portal-officer-1")
    page.wait_for_selector("#store-warning:not([hidden])")
    assert "Evidence store not locked" in page.inner_text("#store-warning")


def test_a_tampered_recording_is_shown_as_such_and_cannot_be_played(stack: Stack, page: Any) -> None:
    fresh = seal_recording(stack.settings, seconds=6.0)
    record = container_for(stack.settings).recording_finder.get(fresh.recording_id)
    assert record is not None and record.seal is not None and record.seal.access_copy_blob is not None
    assert stack.world.sealed is not None
    # Another recording's access copy under this one's sealed name (what write access to the container allows).
    container_for(stack.settings).recording_blobs.write(record.seal.access_copy_blob, stack.world.sealed.access_bytes)

    _sign_in(page, stack, "portal-officer-2")
    page.goto(f"{stack.api}/portal/#/recording/{fresh.recording_id}")
    page.wait_for_selector("#rec-proof .badge.tampered")
    assert "access copy" in page.inner_text("#rec-proof")
    assert page.locator("#play").is_disabled()
