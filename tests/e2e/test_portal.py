"""The compliance portal in a real browser (Debian chromium through playwright) against the local Functions
host running function_app.py: dev sign-in with a token from the Teams/Graph simulator, search, open a
sealed recording, play it with an access reason, and find the access in the ledger and the audit trail."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.emulators import REPO_ROOT
from tests.api.conftest import world_environment
from tests.api.world import PSTN, World, build_world
from tests.callrecords.conftest import Simulator, _start_simulator
from tests.conftest import Azurite, Cosmos
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from verbatim.platform import clients
from verbatim.platform.settings import reload_settings
from verbatim.wiring import container_for

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    yield from _start_simulator(tmp_path_factory.mktemp("simulator"), "realtime")


@pytest.fixture(scope="module")
def stack(
    azurite_service: Azurite, cosmos_service: Cosmos, simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, RunningHost]]:
    from devstack.provision import provision_cosmos, provision_storage

    root = tmp_path_factory.mktemp("portal")
    env = world_environment(azurite_service, cosmos_service, root / "ledger.pem", f"portal{uuid.uuid4().hex[:8]}")
    env |= {
        "VERBATIM_ENVIRONMENT": "local",
        "AUTH_OPENID_CONFIG_URL": simulator.openid_configuration,
        "AUTH_AUDIENCE": simulator.api_audience,
        "POLICY_SIMULATOR_URL": simulator.http_url,
        "MEDIA_CHUNK_BYTES": str(8 * 1024),
        "DURABLE_TASK_HUB_NAME": f"portal{uuid.uuid4().hex[:8]}",
    }
    launcher = HostLauncher(azurite_service, root)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        world = build_world(settings, synthetic=3)
        try:
            host = launcher.start(REPO_ROOT, env=env)
            yield world, host
        finally:
            launcher.stop_all()
    reload_settings()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A fresh profile per test (playwright takes it as user_data_dir, not as a --user-data-dir flag).
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=LAUNCH_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_an_officer_signs_in_searches_opens_and_plays_a_recording_and_the_access_is_in_the_ledger(
    stack: tuple[World, RunningHost], browser_page: Any, tmp_path: Path
) -> None:
    world, host = stack
    page = browser_page
    shots = Path(os.environ.get("PORTAL_SCREENSHOTS", str(tmp_path)))  # look at them when changing the portal
    assert world.sealed is not None
    media_requests: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: media_requests.append(request.headers) if "/media" in request.url else None,
    )

    page.goto(f"{host.base_url}/api/portal")  # redirected to /api/portal/
    page.get_by_role("button", name="Dev sign-in").click()
    page.wait_for_selector("#who:not([hidden])")
    assert "Compliance.Officer" in page.inner_text("#who-roles")

    page.fill("input[name=participant]", PSTN)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results tbody tr.result")
    rows = page.locator("#results tbody tr.result")
    assert rows.count() == 1 and "recorded" in rows.first.inner_text()
    page.screenshot(path=str(shots / "search.png"), full_page=True)

    rows.first.locator("a").click()
    page.wait_for_selector("#rec-proof .badge.proven")
    # The Integrity panel: the sealed entry's index, the checkpoint it is proven against, the proof's size.
    integrity = page.inner_text("#rec-proof")
    sealed_index = container_for(world.settings).ledger.find(f"sealed:{world.sealed.recording_id}")
    assert sealed_index is not None and f"#{sealed_index.index} (sealed" in integrity
    assert "tree size" in integrity and f"signed by {world.settings.ledger_origin}" in integrity
    assert re.search(r"Proof size\s+\d+ hashes", integrity), integrity
    assert world.sealed.recording_id in page.inner_text("#rec-meta")
    assert "recorded" in page.inner_text("#rec-verdicts")

    page.fill("#reason", "Case 2025-114: trade reconstruction")
    page.get_by_role("button", name="Load and play").click()
    # Polled from here: the portal's CSP (script-src 'self') forbids the eval behind wait_for_function.
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=20)
    page.screenshot(path=str(shots / "recording.png"), full_page=True)

    assert media_requests and all(h.get("range", "").startswith("bytes=") for h in media_requests)
    assert {h.get("x-access-reason") for h in media_requests} == {"Case 2025-114: trade reconstruction"}
    assert len(media_requests) >= 2  # the access copy is larger than one 8 KiB part

    page.goto(f"{host.base_url}/api/portal/#/reports/2025-03-03")
    page.wait_for_selector("#report-signature .badge.valid")
    assert "call-nobody-recorded" in page.inner_text("#report-exceptions")
    page.screenshot(path=str(shots / "report.png"), full_page=True)

    ledger = container_for(world.settings).ledger
    subject = f"recording:{world.sealed.recording_id}"
    entries = [e for e in ledger.entries_for_subject(subject, limit=200) if e.kind == "accessed"]
    assert {(e.actor, e.details["action"]) for e in entries} >= {
        ("dev-officer", "recording.read"),
        ("dev-officer", "media.access"),
    }
    (played,) = [e for e in entries if e.details["action"] == "media.access" and e.actor == "dev-officer"]
    assert played.details["reason"] == "Case 2025-114: trade reconstruction"
    audit = clients.cosmos_database(world.settings).get_container_client("audit")
    records = list(
        audit.query_items(
            "SELECT * FROM c WHERE c.actor = 'dev-officer' AND c.action = 'media.access'",
            enable_cross_partition_query=True,
        )
    )
    assert len(records) == len(media_requests)
