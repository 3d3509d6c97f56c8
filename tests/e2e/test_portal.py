"""The compliance portal in a real browser (Debian chromium through playwright) against the local Functions
host running function_app.py: dev sign-in with a token from the Teams/Graph simulator, search, open a
sealed recording, play it with an access reason, and find the access in the ledger and the audit trail."""

from __future__ import annotations

import argparse
import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.emulators import REPO_ROOT
from devstack.testkit.records import T0, TENANT, TRADER, call, party, phone
from tests.api.conftest import world_environment
from tests.api.world import PSTN, World, build_world
from tests.callrecords.conftest import Simulator, _start_simulator
from tests.chat.world import message
from tests.conftest import Azurite, Cosmos
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from verbatim.chat.directory import InMemoryChatDirectory
from verbatim.chat.ingest import ChatIngestor
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.exports import standalone_export_verifier
from verbatim.platform import clients
from verbatim.platform.settings import reload_settings
from verbatim.wiring import container_for
from verbatim.wiring.chat import SnapshotPolicyUsers

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


# The meeting chat of the sealed recording, as Graph's documented meeting chat names it: the thread id in the
# meeting's join URL (chat-get-meeting.json, onlineMeetingInfo.joinWebUrl) is the chat's id.
MEETING_THREAD = "19:meeting_NmU0NTkxYzMtM2Y2My00NzRlLWFmN2YtNTFiMGM5OWM3ZjY2@thread.v2"
JOIN_WEB_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NmU0NTkxYzMtM2Y2My00NzRlLWFmN2YtNTFiMGM5OWM3ZjY2%40"
    "thread.v2/0?context=%7b%22Tid%22%3a%222432b57b-0abd-43db-aa7b-16eadd115d34%22%2c%22Oid%22%3a%2214b779ae-cb64-"
    "47e7-a512-52fd50a4154d%22%7d"
)


def _capture_meeting_chat(world: World) -> None:
    """The sealed recording's call becomes a meeting (its call record carries the join URL) and its chat is
    captured through the ingestor: a post, a post edited once, a post deleted — all while the recording ran."""
    assert world.sealed is not None
    services = container_for(world.settings)
    record = call(world.sealed.call_id, [party(TRADER), phone(PSTN)], seconds=world.sealed.seconds, version=2)
    services.callrecords.store.save_if_newer(
        record.model_copy(update={"join_web_url": JOIN_WEB_URL}), {"id": world.sealed.call_id}
    )
    directory = InMemoryChatDirectory()
    directory.add(
        MEETING_THREAD, [TRADER, "u-colleague"], chat_type="meeting", topic="Rates desk", join_web_url=JOIN_WEB_URL
    )
    ingestor = ChatIngestor(
        repository=services.chat.repository,
        directory=directory,
        policy=SnapshotPolicyUsers(services.policy_snapshots),
        blobs=services.chat.blobs,
        tenant_ids=[TENANT],
        clock=lambda: datetime.now(UTC),
    )
    at = [T0 + timedelta(seconds=s) for s in range(6)]
    for body in (
        message("Agenda: rates.", at[1], chat=MEETING_THREAD, sender=TRADER),
        message("Sterling flat into the auction.", at[2], chat=MEETING_THREAD, sender=TRADER),
        message("Sorry, wrong chat.", at[3], chat=MEETING_THREAD, sender=TRADER),
        message(
            "Sterling flat into the auction at 10:00.",
            at[4],
            chat=MEETING_THREAD,
            sender=TRADER,
            created=at[2],
            edited=at[4],
        ),
        message("", at[5], chat=MEETING_THREAD, sender=TRADER, created=at[3], deleted=at[5]),
    ):
        captured = ChatMessageCaptured(
            tenant_id=TENANT, source="notification", received_at=datetime.now(UTC).isoformat(), raw=json.dumps(body)
        )
        assert ingestor.ingest(captured).action == "stored"


def test_an_officer_sees_a_meetings_chat_beside_its_recording_with_every_version_and_finds_chats(
    stack: tuple[World, RunningHost], browser_page: Any, tmp_path: Path
) -> None:
    world, host = stack
    page = browser_page
    shots = Path(os.environ.get("PORTAL_SCREENSHOTS", str(tmp_path)))
    assert world.sealed is not None
    _capture_meeting_chat(world)

    page.goto(f"{host.base_url}/api/portal/")
    page.get_by_role("button", name="Dev sign-in").click()
    page.wait_for_selector("#who:not([hidden])")

    # Beside the recording: every message on the recording's timeline, edits struck through, the deletion marked.
    page.goto(f"{host.base_url}/api/portal/#/recording/{world.sealed.recording_id}")
    page.wait_for_selector("#rec-chat li.message")
    assert "Rates desk — 3 messages" in page.inner_text("#rec-chat-status")
    messages = page.locator("#rec-chat li.message")
    assert [messages.nth(i).locator("button.offset").inner_text() for i in range(3)] == ["+0:01", "+0:02", "+0:03"]
    edited = messages.nth(1).locator("li.version")
    assert [edited.nth(i).get_attribute("class") for i in range(2)] == ["version posted", "version edited"]
    assert edited.nth(0).inner_text().find("Sterling flat into the auction.") >= 0
    struck = edited.nth(0).locator(".text").evaluate("e => getComputedStyle(e).textDecorationLine")
    assert struck == "line-through"
    assert "at 10:00." in edited.nth(1).inner_text()
    assert edited.nth(1).locator(".text").evaluate("e => getComputedStyle(e).textDecorationLine") == "none"
    deleted = messages.nth(2)
    assert deleted.get_attribute("class") == "message deleted"
    assert "Sorry, wrong chat." in deleted.locator("li.version").nth(0).inner_text()
    assert deleted.locator("li.version").nth(1).locator(".text").inner_text() == "deleted"

    # Its offset seeks the player on the same timeline.
    page.fill("#reason", "Case 2025-115: the meeting and its chat")
    page.get_by_role("button", name="Load and play").click()
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=20)
    page.evaluate("(() => { const p = document.querySelector('#player'); p.pause(); p.currentTime = 0; })()")
    messages.nth(2).locator("button.offset").click()
    assert page.evaluate("document.querySelector('#player').currentTime") == 3
    page.screenshot(path=str(shots / "recording-chat.png"), full_page=True)

    # The Chats page: by participant and time, then by a word (the edited-away text is found too), then the chat.
    page.goto(f"{host.base_url}/api/portal/#/chats")
    form = page.locator("#chat-form")
    form.locator("input[name=participant]").fill("u-trader")
    form.locator("input[name=from]").fill("2025-03-03T00:00")
    form.locator("input[name=to]").fill("2025-03-04T00:00")
    page.get_by_role("button", name="List chats").click()
    page.wait_for_selector("#chats tbody tr")
    row = page.locator("#chats tbody tr").filter(has_text="Rates desk")
    assert row.count() == 1 and "meeting" in row.inner_text()
    search = page.locator("#chat-search-form")
    search.locator("input[name=q]").fill("sterling")
    search.locator("input[name=from]").fill("2025-03-03T00:00")
    search.locator("input[name=to]").fill("2025-03-04T00:00")
    page.get_by_role("button", name="Search messages").click()
    page.wait_for_selector("#chat-hits tbody tr")
    hits = page.locator("#chat-hits tbody tr")
    assert hits.count() == 2 and "2 messages (terms)" in page.inner_text("#chat-status")
    hits.first.locator("a").click()
    page.wait_for_selector("#chat-messages li.message")
    assert page.inner_text("#chat-title") == "Rates desk"
    assert page.locator("#chat-messages li.message").count() == 3
    page.screenshot(path=str(shots / "chat.png"), full_page=True)

    # Every read is in the ledger under the chat, by the officer.
    ledger = container_for(world.settings).ledger
    reads = [e for e in ledger.entries_for_subject(f"chat:{MEETING_THREAD}", limit=200) if e.kind == "accessed"]
    assert {(e.actor, e.details["action"], e.details.get("via")) for e in reads} >= {
        ("dev-officer", "chat.read", "meeting"),
        ("dev-officer", "chat.read", None),
    }


def test_an_officer_exports_the_searched_recordings_downloads_the_package_and_it_verifies(
    stack: tuple[World, RunningHost], browser_page: Any, tmp_path: Path
) -> None:
    world, host = stack
    page = browser_page
    shots = Path(os.environ.get("PORTAL_SCREENSHOTS", str(tmp_path)))
    assert world.sealed is not None
    page.goto(f"{host.base_url}/api/portal/")
    page.get_by_role("button", name="Dev sign-in").click()
    page.wait_for_selector("#who:not([hidden])")
    page.fill("input[name=participant]", PSTN)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results tbody tr.result")

    page.get_by_role("link", name="Exports").click()
    page.wait_for_selector("#view-exports:not([hidden])")
    assert f"participant={PSTN}" in page.inner_text("#export-search-summary")
    page.fill("#export-reason", "FCA request 2026/117")
    page.fill("#export-title", "Calls with the PSTN caller")
    page.get_by_role("button", name="Export", exact=True).click()
    completed = page.locator("#exports tbody tr.export", has=page.locator(".badge.completed"))
    completed.first.wait_for(timeout=180_000)
    row = completed.first.inner_text()
    assert "Calls with the PSTN caller" in row and "completed" in row
    page.screenshot(path=str(shots / "exports.png"), full_page=True)

    with page.expect_download(timeout=60_000) as started:
        completed.first.get_by_role("button", name="Download").click()
    package = tmp_path / "export.zip"
    started.value.save_as(package)
    quiet = argparse.Namespace(key=None, key_file=None, fingerprint=None, quiet=True, json=False)
    report = standalone_export_verifier.verify(package, quiet)
    assert report.verified, [f.message for f in report.findings]
    assert report.facts["recordings"] == 1  # the one recording with the PSTN caller

    export_id = report.facts["exportId"]
    kinds = [e.kind for e in container_for(world.settings).ledger.entries_for_subject(f"export:{export_id}", limit=20)]
    assert kinds[0] == "export.created" and "export.completed" in kinds and "export.downloaded" in kinds
