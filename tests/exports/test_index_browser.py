"""`index.html` of a package in a real browser (Debian chromium through playwright), opened from `file://` in the
unpacked folder as a recipient opens it: every recording is listed, nothing is requested from anywhere but the
package's own files, no script runs, and the access copy plays. The screenshot is kept in the test's artefacts
(`EXPORT_SCREENSHOTS`, else the test's temporary folder)."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.exports.conftest import ExportWorld
from tests.funchost.conftest import wait_for
from verbatim.exports import names

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=LAUNCH_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_the_index_opens_offline_lists_every_recording_and_plays_an_access_copy(
    export_world: ExportWorld, browser_page: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "package"
    with zipfile.ZipFile(export_world.package) as archive:
        archive.extractall(folder)
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if message.type == "error" else None)

    page.goto((folder / names.INDEX_HTML).as_uri())
    rows = page.locator("tbody tr")
    assert rows.count() == len(export_world.recordings)
    listed = json.loads((folder / names.PACKAGE_MANIFEST).read_bytes())["recordings"]
    for n, sealed in enumerate(export_world.recordings):
        text = rows.nth(n).inner_text()
        assert sealed.recording_id in text and names.control_number(n) in text
        assert (listed[n]["verdict"] or "n/a") in text  # reconciliation's verdict for the observed user
    assert listed[0]["verdict"] == "recorded"
    # The page's own script policy: no script may run (an inline one would be refused, and there is none).
    assert page.locator("script").count() == 0

    player = rows.first.locator("audio")
    player.evaluate("audio => audio.play()")
    wait_for(lambda: player.evaluate("audio => audio.currentTime") > 0.2, timeout=20, interval=0.2)
    assert player.evaluate("audio => audio.error") is None
    assert player.evaluate("audio => audio.duration") == pytest.approx(export_world.recordings[0].seconds, abs=0.1)

    shots = Path(os.environ.get("EXPORT_SCREENSHOTS", str(tmp_path)))
    shot = shots / "export-index.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    assert requests and all(url.startswith("file://") for url in requests), requests
    played = folder / rows.first.locator("audio").get_attribute("src")
    assert played.as_uri() in requests and played.name == "access-copy.ogg"
    assert violations == []
