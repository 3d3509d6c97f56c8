"""The compliance portal in a real browser (Debian chromium through playwright) against the local Functions host
running function_app.py, Azurite, the Cosmos emulator and the Teams/Graph simulator.

People sign in as they would with Entra ID: MSAL.js (served from portal/vendor) runs the authorization code flow
with PKCE against the simulator's authorize endpoint, in a popup where a demo person is chosen. Then: every page as
an Officer, an Auditor and a Recorder.Admin, each seeing only what its role may, with axe-core run on each page
(no serious or critical violation) and screenshots kept as artefacts; a search, a replay and the access in the
ledger and the audit trail; a legal hold placed and released by two officers (four eyes) with both in the ledger;
the live page showing a call while its recorder sends heartbeats, flagging it when they stop and dropping it when
it ends; silent renewal of the access token with the refresh token.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devstack.emulators import REPO_ROOT
from devstack.testkit.records import SALES, T0, TENANT, TRADER, UPNS, call, party, phone, recording
from tests.api.conftest import world_environment
from tests.api.world import PSTN, World, build_world
from tests.callrecords.conftest import Simulator, _start_simulator
from tests.chat.world import message
from tests.conftest import Azurite, Cosmos
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from verbatim.chat.directory import InMemoryChatDirectory
from verbatim.chat.ingest import ChatIngestor
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.contracts.reconciliation import Verdict
from verbatim.contracts.recorder import (
    CallParticipant,
    CaptureProgress,
    Identity,
    ObservedUser,
    RecordingStarted,
    RecordingStopped,
)
from verbatim.evidence import names
from verbatim.evidence.progress import write_progress
from verbatim.exports import standalone_export_verifier
from verbatim.lifecycle.records import record_event
from verbatim.platform import clients
from verbatim.platform.settings import reload_settings
from verbatim.platform.times import format_datetime
from verbatim.policy.service import publish_desired_state
from verbatim.policy.stores import CosmosCoverageStateStore, CosmosDesiredStateStore
from verbatim.wiring import container_for
from verbatim.wiring.chat import SnapshotPolicyUsers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
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
SHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", str(REPO_ROOT / ".devstack" / "artefacts" / "portal")))
PORTAL_APP = "5e0c8b3a-7d41-4f2e-9a6b-1c2d3e4f5a60"


@dataclass(frozen=True)
class Person:
    name: str
    oid: str
    roles: tuple[str, ...]


CORA = Person("Cora Compliance", "5d4e6f70-8192-4dae-bfc0-e3f4a5b6c105", ("Compliance.Officer",))
OSCAR = Person("Oscar Officer", "6e5f7a81-92a3-4ebf-80d1-f4a5b6c7d107", ("Compliance.Officer",))
AUDE = Person("Aude Auditor", "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c03", ("Compliance.Auditor",))
ADAM = Person("Adam Admin", "0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d04", ("Recorder.Admin",))

# What each role may open (the nav shows exactly these; the API refuses the rest).
PAGES_OF = {
    "Compliance.Officer": ["Recordings", "Chats", "Live", "Legal holds", "Completeness", "Coverage", "Exports"],
    "Compliance.Auditor": [
        "Recordings",
        "Chats",
        "Live",
        "Legal holds",
        "Completeness",
        "Coverage",
        "Reports",
        "Exports",
        "Audit trail",
    ],
    "Recorder.Admin": ["Coverage", "Policy"],
}
ROUTES = {
    "Recordings": "search",
    "Chats": "chats",
    "Live": "live",
    "Legal holds": "holds",
    "Completeness": "verdicts",
    "Coverage": "coverage",
    "Reports": "reports",
    "Exports": "exports",
    "Audit trail": "audit",
    "Policy": "policy",
}
DEMO_POLICIES = REPO_ROOT / "policies" / "demo-tenant.yaml"


def published_policies() -> str:
    """The demo tenant's desired state with one change: Una (not Ned) is an adviser recorded by AdvisoryRecording."""
    text = DEMO_POLICIES.read_text()
    before = "    - user: ned.adviser@contoso.onmicrosoft.com\n      policy: AdvisoryRecording\n"
    assert before in text
    return text.replace(before, "    - user: una.unrecorded@contoso.onmicrosoft.com\n      policy: AdvisoryRecording\n")


def spki_hash(pem: Path) -> str:
    """What chromium's --ignore-certificate-errors-spki-list takes: base64 SHA-256 of the key's SubjectPublicKeyInfo
    (the browser trusts the simulator's own certificate, and nothing else it could not verify)."""
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


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
        # Graph is the simulator: the coverage audit (the host's start-up run, the admin's re-run) reads it.
        **simulator.graph_env(),
        "POLICY_SIMULATOR_URL": simulator.http_url,
        "PORTAL_CLIENT_ID": PORTAL_APP,
        "PORTAL_AUTHORITY": f"{simulator.https_url}/{simulator.tenant_id}",
        "PORTAL_API_SCOPE": f"{simulator.api_audience}/user_impersonation",
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
        control = clients.cosmos_database(settings).get_container_client("control")
        publish_desired_state(
            CosmosDesiredStateStore(control), published_policies(), actor="Adam Admin", now=datetime.now(UTC)
        )
        try:
            # Chat capture on in the host (exports may then carry chats); nothing is captured through Graph here:
            # no tenant is listed for it, and the meeting chat of the tests is ingested directly.
            host = launcher.start(REPO_ROOT, env={**env, "CHAT_CAPTURE_ENABLED": "true"})
            yield world, host
        finally:
            launcher.stop_all()
    reload_settings()


@pytest.fixture
def browser(simulator: Simulator, tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    trusted = spki_hash(Path(simulator.ca_file).parent / "server.pem")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile per test
            executable_path=str(CHROMIUM),
            args=[*LAUNCH_FLAGS, f"--ignore-certificate-errors-spki-list={trusted}"],
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def first_page(context: Any) -> Any:
    return context.pages[0] if context.pages else context.new_page()


def sign_in(page: Any, host: RunningHost, person: Person) -> None:
    """Sign in as Entra does it: the portal opens the authority's page in a popup, the person is chosen there."""
    page.goto(f"{host.base_url}/api/portal/")
    button = page.get_by_role("button", name="Sign in", exact=True)
    button.wait_for()
    with page.expect_popup() as opened:
        button.click()
    popup = opened.value
    popup.get_by_role("button", name=re.compile(person.name)).click()
    page.wait_for_selector("#who:not([hidden])")
    wait_for(lambda: person.roles[0] in page.inner_text("#who-roles"), timeout=20)
    assert person.name in page.inner_text("#who-name")


def open_recording(browser: Any, host: RunningHost, recording_id: str, person: Person = OSCAR) -> Any:
    """A page signed in as `person` on the recording's page, once its proof of seal is shown."""
    page = first_page(browser)
    sign_in(page, host, person)
    page.goto(f"{host.base_url}/api/portal/#/recording/{recording_id}")
    page.wait_for_selector("#rec-proof .badge")
    return page


def load_and_play(page: Any, reason: str, timeout: float = 60) -> None:
    """Give the reason and load the player; back once it holds the current frame (readyState 2). Polled: the
    portal's CSP (script-src 'self') forbids the eval behind wait_for_function."""
    page.fill("#reason", reason)
    page.get_by_role("button", name="Load and play").click()
    wait_for(lambda: page.evaluate("document.querySelector('#player').readyState") >= 2, timeout=timeout)


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("#sign-in:not([hidden])")


def nav_links(page: Any) -> list[str]:
    return [link.inner_text() for link in page.locator("#nav a").all()]


def axe(page: Any, label: str) -> None:
    """axe-core in the page: no serious or critical violation (WCAG 2.1 A/AA and best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated through the DevTools protocol: the CSP allows it
    results = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', "
        "'best-practice']}}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    bad = [v for v in results if v["impact"] in ("serious", "critical")]
    assert not bad, f"{label}: {json.dumps(bad, indent=1)}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def settle(page: Any, route: str) -> None:
    """Wait until a page has drawn: its heading, and no table still empty of rows."""
    page.wait_for_selector("#view h1")
    if route in ("search",):
        return
    wait_for(
        lambda: (
            page.locator("#view tbody tr").count() > 0
            or page.locator("#view table").count() == 0
            or bool(page.inner_text("#error"))
        ),
        timeout=20,
    )


# --- every page, as each role ---------------------------------------------------------------------------------


@pytest.mark.parametrize("person", [OSCAR, AUDE, ADAM], ids=["officer", "auditor", "admin"])
def test_each_role_sees_only_its_pages_and_every_page_passes_axe(
    stack: tuple[World, RunningHost], browser: Any, person: Person
) -> None:
    world, host = stack
    page = first_page(browser)
    sign_in(page, host, person)
    expected = PAGES_OF[person.roles[0]]
    assert nav_links(page) == expected
    role = person.roles[0].split(".")[1].lower()
    for title in expected:
        route = ROUTES[title]
        page.goto(f"{host.base_url}/api/portal/#/{route}")
        settle(page, route)
        axe(page, f"{person.name} on {title}")
        shot(page, f"{role}-{route}")
    for title in set(ROUTES) - set(expected):
        page.goto(f"{host.base_url}/api/portal/#/{ROUTES[title]}")
        page.wait_for_selector("#view h1")
        assert page.inner_text("#view h1") == "Not for your role", title
    # Holds by id are placed by officers only; the list of who was recorded carries recording metadata (no admin).
    if "Recordings" in expected:
        page.goto(f"{host.base_url}/api/portal/#/search")
        page.wait_for_selector("#search-form")
        assert (page.locator("#hold-selected").count() == 1) == (person.roles[0] == "Compliance.Officer")
    page.goto(f"{host.base_url}/api/portal/#/coverage")
    page.wait_for_selector("#coverage-audited")
    assert (page.locator("#people").count() == 1) == (person is not ADAM)
    if person is ADAM:
        # Recorder.Admin never gets recordings: not in the UI, and the API refuses it as readable problem+json.
        page.goto(f"{host.base_url}/api/portal/#/recording/{world.sealed.recording_id if world.sealed else 'x'}")
        assert page.inner_text("#view h1") == "Not for your role"
    # A narrow window (a phone held upright): the same page works, nothing overflows the viewport.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{host.base_url}/api/portal/#/{ROUTES[expected[0]]}")
    settle(page, ROUTES[expected[0]])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    axe(page, f"{person.name}, narrow")
    shot(page, f"{role}-narrow")


def test_an_api_error_is_shown_as_its_problem_detail(stack: tuple[World, RunningHost], browser: Any) -> None:
    _, host = stack
    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.goto(f"{host.base_url}/api/portal/#/recording/no-such-recording")
    wait_for(lambda: bool(page.inner_text("#error")), timeout=20)
    assert "no recording no-such-recording" in page.inner_text("#error")
    page.goto(f"{host.base_url}/api/portal/#/holds/no-such-hold")
    wait_for(lambda: "no legal hold no-such-hold" in page.inner_text("#error"), timeout=20)
    assert page.inner_text("#view h1")  # the page is still there, with the readable error above it


# --- search, replay, and the access in the ledger ---------------------------------------------------------------


def test_an_officer_signs_in_searches_opens_and_plays_a_recording_and_the_access_is_in_the_ledger(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    world, host = stack
    page = first_page(browser)
    assert world.sealed is not None
    media_requests: list[dict[str, str]] = []
    page.on("request", lambda request: media_requests.append(request.headers) if "/media" in request.url else None)

    sign_in(page, host, OSCAR)
    page.fill("input[name=participant]", PSTN)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results tbody tr.result")
    rows = page.locator("#results tbody tr.result")
    assert rows.count() == 1 and "recorded" in rows.first.inner_text()
    shot(page, "search")

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
    timeline = page.inner_text("#rec-timeline")
    assert "Tom Trader joined" in timeline and "Recording ended" in timeline

    load_and_play(page, "Case 2025-114: trade reconstruction", timeout=30)
    axe(page, "recording")
    shot(page, "recording")

    assert media_requests and all(h.get("range", "").startswith("bytes=") for h in media_requests)
    assert {h.get("x-access-reason") for h in media_requests} == {"Case 2025-114: trade reconstruction"}
    assert len(media_requests) >= 2  # the access copy is larger than one 8 KiB part

    ledger = container_for(world.settings).ledger
    subject = f"recording:{world.sealed.recording_id}"
    entries = [e for e in ledger.entries_for_subject(subject, limit=200) if e.kind == "accessed"]
    assert {(e.actor, e.details["action"]) for e in entries} >= {
        (OSCAR.oid, "recording.read"),
        (OSCAR.oid, "media.access"),
    }
    (played,) = [e for e in entries if e.details["action"] == "media.access" and e.actor == OSCAR.oid]
    assert played.details["reason"] == "Case 2025-114: trade reconstruction"
    audit = clients.cosmos_database(world.settings).get_container_client("audit")
    records = list(
        audit.query_items(
            "SELECT * FROM c WHERE c.actor = @actor AND c.action = 'media.access'",
            parameters=[{"name": "@actor", "value": OSCAR.oid}],
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
        record.model_copy(update={"join_web_url": JOIN_WEB_URL}),
        {"id": world.sealed.call_id, "joinWebUrl": JOIN_WEB_URL},
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
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    world, host = stack
    page = first_page(browser)
    assert world.sealed is not None
    _capture_meeting_chat(world)
    sign_in(page, host, OSCAR)

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
    load_and_play(page, "Case 2025-115: the meeting and its chat", timeout=20)
    page.evaluate("(() => { const p = document.querySelector('#player'); p.pause(); p.currentTime = 0; })()")
    messages.nth(2).locator("button.offset").click()
    assert page.evaluate("document.querySelector('#player').currentTime") == 3
    axe(page, "recording with its meeting chat")
    shot(page, "recording-chat")

    # The Chats page: by participant and time, then by a word (the edited-away text is found too), then the chat.
    page.goto(f"{host.base_url}/api/portal/#/chats")
    form = page.locator("#chat-form")
    form.locator("input[name=participant]").fill("u-trader")
    form.locator("input[name=from]").fill("2025-03-03T00:00")
    form.locator("input[name=to]").fill("2025-03-04T00:00")
    page.get_by_role("button", name="List chats").click()
    row = page.locator("#chats tbody tr").filter(has_text="Rates desk")
    wait_for(lambda: row.count() == 1, timeout=20)  # the table held a hint until the answer came
    assert "meeting" in row.inner_text()
    search = page.locator("#chat-search-form")
    search.locator("input[name=q]").fill("sterling")
    search.locator("input[name=from]").fill("2025-03-03T00:00")
    search.locator("input[name=to]").fill("2025-03-04T00:00")
    page.get_by_role("button", name="Search messages").click()
    page.wait_for_selector("#chat-hits tbody tr")
    axe(page, "chat search")
    hits = page.locator("#chat-hits tbody tr")
    assert hits.count() == 2 and "2 messages (terms)" in page.inner_text("#chat-status")
    hits.first.locator("a").click()
    page.wait_for_selector("#chat-messages li.message")
    assert page.inner_text("#chat-title") == "Rates desk"
    assert page.locator("#chat-messages li.message").count() == 3
    axe(page, "a chat")
    shot(page, "chat")

    # Every read is in the ledger under the chat, by the officer.
    ledger = container_for(world.settings).ledger
    reads = [e for e in ledger.entries_for_subject(f"chat:{MEETING_THREAD}", limit=200) if e.kind == "accessed"]
    assert {(e.actor, e.details["action"], e.details.get("via")) for e in reads} >= {
        (OSCAR.oid, "chat.read", "meeting"),
        (OSCAR.oid, "chat.read", None),
    }


def test_an_officer_exports_the_searched_recordings_downloads_the_package_and_it_verifies(
    stack: tuple[World, RunningHost], browser: Any, tmp_path: Path
) -> None:
    world, host = stack
    page = first_page(browser)
    assert world.sealed is not None
    sign_in(page, host, OSCAR)
    page.fill("input[name=participant]", PSTN)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results tbody tr.result")

    page.get_by_role("link", name="Exports").click()
    page.wait_for_selector("#export-form")
    assert f"participant={PSTN}" in page.inner_text("#export-search-summary")
    page.fill("#export-reason", "FCA request 2026/117")
    page.fill("#export-title", "Calls with the PSTN caller")
    page.get_by_role("button", name="Export", exact=True).click()
    completed = page.locator("#exports tbody tr.export", has=page.locator(".badge.completed"))
    completed.first.wait_for(timeout=180_000)
    row = completed.first.inner_text()
    assert "Calls with the PSTN caller" in row and "completed" in row
    axe(page, "exports")
    shot(page, "exports")

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


def _meeting_chat_sealed(world: World) -> None:
    """The meeting chat captured (unless an earlier test did) and its day sealed, as the host's timer seals a day
    once it is over: an export carries sealed chat-days only."""
    services = container_for(world.settings)
    if not services.chat.repository.versions(MEETING_THREAD):
        _capture_meeting_chat(world)
    for day in sorted({v["day"] for v in services.chat.repository.versions(MEETING_THREAD)}):
        services.chat.sealer.seal(MEETING_THREAD, day)
    assert [b for b in services.chat.repository.bundles(MEETING_THREAD) if not b.get("deleted")]


def test_an_officer_exports_a_recording_with_its_meeting_chat_and_the_packages_transcript_reads_offline(
    stack: tuple[World, RunningHost], browser: Any, tmp_path: Path
) -> None:
    """The portal's "chats" option: the recording's meeting chat comes with it, and the package's index and the
    chat's transcript open from file:// with every version, requesting nothing but the package's own files."""
    world, host = stack
    assert world.sealed is not None
    _meeting_chat_sealed(world)
    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.get_by_role("link", name="Exports").click()
    page.wait_for_selector("#export-form")
    page.check("input[name=selection][value=ids]")
    page.fill("#export-ids", world.sealed.recording_id)
    page.check("input[name=chats]")
    page.fill("#export-reason", "Case 2025-115: the meeting and its chat")
    page.fill("#export-title", "Rates desk meeting with its chat")
    page.get_by_role("button", name="Export", exact=True).click()
    completed = page.locator("#exports tbody tr.export", has=page.locator(".badge.completed")).filter(
        has_text="Rates desk meeting with its chat"
    )
    completed.first.wait_for(timeout=180_000)
    with page.expect_download(timeout=60_000) as started:
        completed.first.get_by_role("button", name="Download").click()
    package = tmp_path / "export.zip"
    started.value.save_as(package)
    quiet = argparse.Namespace(key=None, key_file=None, fingerprint=None, quiet=True, json=False)
    report = standalone_export_verifier.verify(package, quiet)
    assert report.verified, [f.message for f in report.findings]
    assert (report.facts["recordings"], report.facts["chats"]) == (1, 1)

    folder = tmp_path / "package"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    [chat] = json.loads((folder / "package-manifest.json").read_bytes())["chats"]
    assert chat["chatId"] == MEETING_THREAD and any("meeting chat" in why for why in chat["why"]), chat["why"]
    offline = browser.new_page()
    requests: list[str] = []
    offline.on("request", lambda request: requests.append(request.url))
    offline.goto((folder / "index.html").as_uri())
    row = offline.locator(f"tr#{chat['controlNumber']}")
    assert "Rates desk" in row.inner_text() and "3 message(s), 5 version(s)" in row.inner_text()
    row.get_by_role("link", name="transcript").click()
    offline.wait_for_selector("div.msg")
    assert offline.url == (folder / chat["transcript"]).as_uri()
    messages = offline.locator("div.msg")
    assert messages.count() == 3
    edited = messages.nth(1).locator("div.version")
    assert [edited.nth(i).get_attribute("class") for i in range(2)] == ["version posted", "version edited"]
    assert "Sterling flat into the auction." in edited.nth(0).inner_text()
    assert "Sterling flat into the auction at 10:00." in edited.nth(1).inner_text()
    deleted = messages.nth(2).locator("div.version")
    assert "Sorry, wrong chat." in deleted.nth(0).inner_text() and deleted.nth(1).get_attribute("class") == (
        "version deleted"
    )
    assert offline.locator("script").count() == 0
    offline.screenshot(path=str(tmp_path / "transcript.png"), full_page=True)
    shot(offline, "export-transcript")
    assert requests and all(url.startswith("file://") for url in requests), requests
    offline.close()


def test_an_auditor_reads_a_report_and_the_audit_trail_links_to_the_recording(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    world, host = stack
    assert world.sealed is not None
    page = first_page(browser)
    sign_in(page, host, AUDE)
    page.goto(f"{host.base_url}/api/portal/#/reports/2025-03-03")
    page.wait_for_selector("#report-signature .badge.valid")
    assert "call-nobody-recorded" in page.inner_text("#report-exceptions")
    shot(page, "report")

    page.goto(f"{host.base_url}/api/portal/#/audit")
    page.wait_for_selector("#audit-form")
    subject = f"recording:{world.sealed.recording_id}"
    page.fill("#ledger-form input[name=subject]", subject)
    page.get_by_role("button", name="Show entries").click()
    page.wait_for_selector("#ledger tbody tr.entry.sealed")
    page.fill("#audit-form input[name=target]", subject)
    page.get_by_role("button", name="Show", exact=True).click()
    wait_for(lambda: page.locator("#audit tbody a").count() > 0, timeout=20)
    axe(page, "audit trail with results")
    shot(page, "audit")
    page.locator("#audit tbody a").first.click()
    page.wait_for_selector("#rec-meta")
    assert world.sealed.recording_id in page.inner_text("#rec-meta")


# --- legal holds, four eyes -------------------------------------------------------------------------------------


def test_a_hold_placed_and_released_through_the_ui_names_both_officers_in_the_ledger(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    world, host = stack
    page = first_page(browser)
    sign_in(page, host, CORA)
    page.goto(f"{host.base_url}/api/portal/#/holds")
    matter = f"M-{uuid.uuid4().hex[:6]}"
    page.fill("#hold-form input[name=matterId]", matter)
    page.fill("#hold-form input[name=description]", "Rates desk investigation")
    page.fill("#hold-form input[name=custodians]", UPNS[TRADER])
    page.get_by_role("button", name="Place hold").click()
    page.wait_for_selector("#hold-meta")
    wait_for(lambda: page.locator("#hold-recordings tbody a").count() > 0, timeout=20)
    hold_url = page.url
    page.fill("#release-reason", "Matter closed")
    page.get_by_role("button", name="Request release").click()
    wait_for(
        lambda: "Cora Compliance" in page.inner_text("#hold-meta") and page.locator("#approve-release").count() > 0,
        timeout=20,
    )
    assert page.locator("#approve-release").is_disabled()  # the requester cannot approve
    shot(page, "hold-requested")
    sign_out(page)

    sign_in(page, host, OSCAR)
    page.goto(hold_url)
    page.wait_for_selector("#approve-release:not([disabled])")
    page.fill("#release-reason", "Checked: matter closed")
    page.get_by_role("button", name="Approve release").click()
    page.wait_for_selector("#release-done")
    done = page.inner_text("#release-done")
    assert "requested by Cora Compliance" in done and "approved by Oscar Officer" in done
    axe(page, "released hold")
    shot(page, "hold-released")

    hold_id = hold_url.rsplit("/", 1)[1]
    ledger = container_for(world.settings).ledger
    entries = ledger.entries_for_subject(f"hold:{hold_id}", limit=500)
    kinds = [e.kind for e in entries]
    assert "hold.release_requested" in kinds and "hold.released" in kinds, kinds
    released = next(e for e in entries if e.kind == "hold.released")
    text = json.dumps(released.details)
    assert CORA.oid in text and OSCAR.oid in text, released.details


def test_a_page_still_loading_when_the_officer_moves_on_never_draws_beside_the_next(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    """Signing in routes to Recordings; its module is held back here until the officer has opened Legal holds. Once
    it arrives, the holds page is still the only page shown: one heading, one "Place hold" button, no search form
    (the race once seen as two "Place hold" buttons on the holds page)."""
    _, host = stack
    page = first_page(browser)
    held: list[Any] = []

    def hold_back(route: Any) -> None:
        held.append(route)  # answered below, once the holds page is open

    page.route("**/js/pages/search.js", hold_back)
    sign_in(page, host, CORA)
    page.goto(f"{host.base_url}/api/portal/#/holds")
    page.wait_for_selector("#hold-form")

    def search_module_held() -> bool:
        page.wait_for_timeout(50)  # Playwright runs the route handler while it waits
        return bool(held)

    wait_for(search_module_held, timeout=20)
    for route in held:
        route.continue_()
    # Our own import of the module resolves after the router's (it was asked first): by then the router has drawn
    # the search page, had it still been going to.
    page.evaluate("import('/api/portal/js/pages/search.js').then(() => new Promise((done) => setTimeout(done, 0)))")
    assert page.locator("#view h1").all_inner_texts() == ["Legal holds"]
    assert page.locator("#search-form").count() == 0
    assert page.get_by_role("button", name="Place hold").count() == 1


def test_an_officer_holds_selected_search_results_and_a_recording_from_its_page(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    """Holds by recording id from the UI: two ticked search results, then the sealed recording from its own page;
    each hold lists exactly its recordings; an unknown id is refused with the API's reason and nothing placed."""
    world, host = stack
    assert world.sealed is not None
    holds = container_for(world.settings).retention.hold_store
    before = {h.id for h in holds.find()}
    page = first_page(browser)
    sign_in(page, host, CORA)

    page.fill("input[name=observedUser]", SALES)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results tbody tr.result")
    chosen = world.synthetic[:2]
    for recording_id in chosen:
        page.check(f"#results tr[data-recording='{recording_id}'] input.pick")
    axe(page, "search results with selection")
    page.fill("#selection-hold-matter", "M-selected")
    page.fill("#selection-hold-description", "Two calls named in the complaint")
    page.get_by_role("button", name="Place hold").click()
    page.wait_for_selector("#selection-hold-link")
    assert "placed on 2 recordings" in page.inner_text("#selection-hold-status")
    shot(page, "hold-from-search")
    page.click("#selection-hold-link")
    page.wait_for_selector("#hold-ids")
    assert sorted(page.locator("#hold-ids a").all_inner_texts()) == sorted(chosen)
    wait_for(lambda: page.locator("#hold-recordings tbody a").count() == 2, timeout=20)
    assert sorted(page.locator("#hold-recordings tbody a").all_inner_texts()) == sorted(chosen)
    axe(page, "a hold by recording ids")

    page.goto(f"{host.base_url}/api/portal/#/recording/{world.sealed.recording_id}")
    page.wait_for_selector("#rec-hold-form")
    page.fill("#rec-hold-matter", "M-one-call")
    page.fill("#rec-hold-description", "The call itself")
    page.get_by_role("button", name="Place hold").click()
    page.wait_for_selector("#rec-hold-link")
    assert "placed on 1 recording" in page.inner_text("#rec-hold-status")
    wait_for(lambda: page.locator("#rec-holds a").count() >= 1, timeout=10)  # the Call panel names the new hold
    axe(page, "recording with its hold form")
    shot(page, "hold-from-recording")

    placed = [h for h in holds.find() if h.id not in before]
    by_matter = {h.matter_id: h for h in placed}
    assert sorted(by_matter["M-selected"].recording_ids) == sorted(chosen)
    assert by_matter["M-one-call"].recording_ids == [world.sealed.recording_id]
    assert all(h.custodians == [] and h.created_by.subject == CORA.oid for h in placed)
    held = container_for(world.settings).retention.recordings.read(world.sealed.recording_id)
    assert held is not None and held.record.seal is not None
    assert by_matter["M-one-call"].id in held.record.seal.legal_holds
    assert by_matter["M-one-call"].id in page.locator("#rec-holds").inner_text()

    # An id nobody recorded: refused with the API's reason, nothing placed.
    page.goto(f"{host.base_url}/api/portal/#/holds")
    page.fill("#hold-form input[name=matterId]", "M-typo")
    page.fill("#hold-form input[name=description]", "a mistyped id")
    page.fill("#hold-form input[name=recordingIds]", "no-such-recording")
    page.get_by_role("button", name="Place hold").click()
    wait_for(lambda: "do not exist: no-such-recording" in page.inner_text("#error"), timeout=20)
    assert not [h for h in holds.find() if h.matter_id == "M-typo"]


# --- live -------------------------------------------------------------------------------------------------------


def test_the_live_page_shows_a_call_being_recorded_flags_a_silent_recorder_and_drops_the_call_when_it_ends(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    """The recorder's two writes — its events (folded into the recording record) and its heartbeats (the progress
    table) — made with the recorder's own functions; the portal polls the API while they happen."""
    world, host = stack
    deps = container_for(world.settings).lifecycle
    table = container_for(world.settings).progress
    recording_id = f"live-{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC)
    common = {"recording_id": recording_id, "call_id": f"leg-{recording_id}", "recorder_instance": "recorder-7"}
    tom = CallParticipant(participant_id="p1", identity=Identity(kind="user", id=TRADER, display_name="Tom Trader"))
    client = CallParticipant(participant_id="p2", identity=Identity(kind="phone", id=PSTN), phone_number=PSTN)
    record_event(
        deps.store,
        RecordingStarted(
            **common,
            event_id=uuid.uuid4().hex,
            occurred_at=started,
            sequence=0,
            call_chain_id=f"chain-{recording_id}",
            observed_user=ObservedUser(id=TRADER, upn=UPNS[TRADER], display_name="Tom Trader"),
            participants=[tom, client],
            direction="outbound",
            call_type="peerToPeer",
            recorder_app_id="app-recorder",
            recorder_version="1.0.0",
            started_at=started,
            blob_container=world.settings.captures_container,
            blob_name=names.capture_track_name(recording_id, 0),
            manifest_blob_name=names.capture_manifest_name(recording_id, 0),
            heartbeat_interval_seconds=1.0,
        ),
    )

    def heartbeat() -> None:
        write_progress(
            table,
            CaptureProgress(
                **common,
                state="capturing",
                updated_at=datetime.now(UTC),
                started_at=started,
                seconds_staged=42.0,
                blocks_staged=21,
                blob_container=world.settings.captures_container,
                blob_name=names.capture_track_name(recording_id, 0),
                heartbeat_interval_seconds=1.0,
            ),
        )

    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.goto(f"{host.base_url}/api/portal/#/live")
    row = page.locator(f"#live tr[data-recording='{recording_id}']")
    deadline = time.monotonic() + 30
    # The row appears from the recording record alone ("capturing", nothing staged yet); wait until the portal's poll
    # has also read a heartbeat from the progress table.
    while row.count() == 0 or "capturing" not in row.inner_text() or row.locator("td.staged").inner_text() != "0:42":
        heartbeat()
        assert time.monotonic() < deadline, page.inner_text("#view")
        time.sleep(0.5)
    text = row.inner_text()
    assert "Tom Trader" in text and PSTN in text and "recorder-7" in text and "audio" in text
    assert row.locator("td.staged").inner_text() == "0:42"  # what the recorder says it has safely staged
    axe(page, "live")
    shot(page, "live")

    # The recorder goes quiet: flagged once more than two intervals pass without a heartbeat.
    wait_for(lambda: "silent" in row.inner_text(), timeout=20)
    assert "silent" in page.inner_text("#live-alerts")
    shot(page, "live-silent")

    heartbeat()
    ended = datetime.now(UTC) + timedelta(seconds=1)
    record_event(
        deps.store,
        RecordingStopped(
            **common,
            event_id=uuid.uuid4().hex,
            occurred_at=ended,
            sequence=1,
            reason="call_ended",
            ended_at=ended,
            blob_container=world.settings.captures_container,
            blob_name=names.capture_track_name(recording_id, 0),
            manifest_blob_name=names.capture_manifest_name(recording_id, 0),
            duration_seconds=(ended - started).total_seconds(),
            bytes=0,
            block_count=0,
            sha256="0" * 64,
        ),
    )
    wait_for(lambda: page.locator(f"#live tr[data-recording='{recording_id}']").count() == 0, timeout=20)
    ledger = container_for(world.settings).ledger
    # Reading it is recorded: the ledger's entry for this reader and hour, an audit record per poll with its calls.
    reads = [e for e in ledger.entries_for_subject("recordings:live", limit=500) if e.actor == OSCAR.oid]
    assert reads and all(e.details["action"] == "live.read" for e in reads)
    audit = clients.cosmos_database(world.settings).get_container_client("audit")
    polls = list(
        audit.query_items(
            "SELECT * FROM c WHERE c.actor = @actor AND c.action = 'live.read'",
            parameters=[{"name": "@actor", "value": OSCAR.oid}],
            enable_cross_partition_query=True,
        )
    )
    showing = [p for p in polls if recording_id in p["detail"]["results"]]
    assert len(showing) >= 2 and len(polls) > len(reads)


# --- silent renewal -----------------------------------------------------------------------------------------


def test_an_expiring_access_token_is_renewed_silently_with_the_refresh_token(
    stack: tuple[World, RunningHost], simulator: Simulator, browser: Any
) -> None:
    _, host = stack
    httpx.patch(f"{simulator.http_url}/sim/config", json={"userAccessTokenSeconds": 120}).raise_for_status()
    try:
        page = first_page(browser)
        grants: list[str] = []
        page.on(
            "request",
            lambda request: grants.append(request.post_data or "") if "/oauth2/v2.0/token" in request.url else None,
        )
        sign_in(page, host, AUDE)
        assert any("grant_type=authorization_code" in body for body in grants)
        # MSAL renews a token that expires within five minutes: the next API call refreshes it, without a popup.
        pages_before = len(browser.pages)
        page.goto(f"{host.base_url}/api/portal/#/verdicts")
        page.wait_for_selector("#verdicts tbody tr")
        assert any("grant_type=refresh_token" in body for body in grants), grants
        assert len(browser.pages) == pages_before and not page.inner_text("#error")
    finally:
        httpx.patch(f"{simulator.http_url}/sim/config", json={"userAccessTokenSeconds": 3599}).raise_for_status()


# --- policy and coverage (Recorder.Admin) -------------------------------------------------------------------------


def test_an_admin_reviews_the_plan_downloads_its_powershell_and_re_runs_the_coverage_audit(
    stack: tuple[World, RunningHost], browser: Any, tmp_path: Path
) -> None:
    world, host = stack
    states = CosmosCoverageStateStore(clients.cosmos_database(world.settings).get_container_client("control"))
    # The host audits at start-up (the timer's run_on_startup): wait for that run to finish.
    wait_for(lambda: states.load().last_report is not None and states.load().claimed_at is None, timeout=120)
    page = first_page(browser)
    sign_in(page, host, ADAM)

    page.goto(f"{host.base_url}/api/portal/#/policy")
    wait_for(lambda: "una.unrecorded@contoso.onmicrosoft.com" in page.inner_text("#policy-text"), timeout=20)
    assert "Adam Admin" in page.inner_text("#policy-meta")
    page.get_by_role("button", name="Plan", exact=True).click()
    wait_for(lambda: "Compared with" in page.inner_text("#plan-status") or bool(page.inner_text("#error")), timeout=30)
    assert not page.inner_text("#error")
    changes = page.inner_text("#plan-changes")
    assert "una.unrecorded@contoso.onmicrosoft.com" in changes and "ned.adviser@contoso.onmicrosoft.com" in changes
    axe(page, "policy plan")
    shot(page, "admin-policy-plan")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download PowerShell").click()
    download = downloading.value
    assert download.suggested_filename == "verbatim-policy-changes.ps1"
    script = Path(download.path()).read_text(encoding="utf-8")
    assert "Verbatim: apply compliance recording policy changes" in script
    assert "una.unrecorded@contoso.onmicrosoft.com" in script

    # Coverage: the start-up audit's report; a re-run within five minutes is refused with a readable reason. The
    # last run is set to now, so "within five minutes" holds however long the module's earlier tests took.
    recent = states.load()
    recent.last_run = datetime.now(UTC)
    states.save(recent)
    page.goto(f"{host.base_url}/api/portal/#/coverage")
    page.wait_for_selector("#coverage-audited")
    first = states.load().last_report
    assert first is not None
    page.get_by_role("button", name="Re-run the audit now").click()
    wait_for(lambda: "five minutes apart" in page.inner_text("#error"), timeout=30)
    # Five minutes later (the state's last run moved back): the button audits again and the page shows the new run.
    state = states.load()
    assert state.last_run is not None
    state.last_run -= timedelta(minutes=6)
    states.save(state)
    page.get_by_role("button", name="Re-run the audit now").click()
    wait_for(lambda: "Audited just now" in page.inner_text("#rerun-status"), timeout=60)
    second = states.load().last_report
    assert second is not None and second.audited_at > first.audited_at
    assert not page.inner_text("#error")
    axe(page, "coverage after a re-run")
    shot(page, "admin-coverage")


def test_an_admin_reviews_a_change_validates_plans_and_publishes_it_only_after_the_review(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    """A draft with an unknown policy is found invalid (and cannot be planned or published); the demo tenant's own
    state is planned, and published only once the admin ticks that the plan was reviewed; the ledger names the
    admin. The published state is restored afterwards for the other tests."""
    world, host = stack
    store = CosmosDesiredStateStore(clients.cosmos_database(world.settings).get_container_client("control"))
    page = first_page(browser)
    sign_in(page, host, ADAM)
    page.goto(f"{host.base_url}/api/portal/#/policy")
    wait_for(lambda: "una.unrecorded@contoso.onmicrosoft.com" in page.input_value("#draft"), timeout=20)
    try:
        broken = published_policies().replace(
            "una.unrecorded@contoso.onmicrosoft.com\n      policy: AdvisoryRecording",
            "una.unrecorded@contoso.onmicrosoft.com\n      policy: NoSuchPolicy",
        )
        assert "NoSuchPolicy" in broken
        page.fill("#draft", broken)
        page.get_by_role("button", name="Validate").click()
        wait_for(lambda: "NoSuchPolicy" in page.inner_text("#draft-issues"), timeout=20)
        assert "error" in page.inner_text("#draft-issues") and "Not valid" in page.inner_text("#plan-status")
        page.get_by_role("button", name="Plan", exact=True).click()
        wait_for(lambda: "Invalid desired state" in page.inner_text("#error"), timeout=30)
        assert page.locator("#publish-button").is_disabled() and page.locator("#reviewed").is_disabled()
        axe(page, "policy draft with validation findings")

        page.fill("#draft", DEMO_POLICIES.read_text())
        assert "NoSuchPolicy" not in page.inner_text("#draft-issues")  # findings of the old draft are gone
        page.get_by_role("button", name="Plan", exact=True).click()
        wait_for(lambda: "Compared with" in page.inner_text("#plan-status"), timeout=30)
        assert not page.inner_text("#error") and page.locator("#publish-button").is_disabled()
        page.check("#reviewed")
        assert page.locator("#publish-button").is_enabled()
        shot(page, "admin-policy-review")
        page.get_by_role("button", name="Publish this desired state").click()
        wait_for(lambda: "Published" in page.inner_text("#publish-status"), timeout=30)
        stored = store.load()
        assert stored is not None and stored.text == DEMO_POLICIES.read_text() and stored.published_by == ADAM.name
        assert "ned.adviser@contoso.onmicrosoft.com\n      policy: AdvisoryRecording" in page.inner_text("#policy-text")
        assert page.locator("#publish-button").is_disabled()  # what is published now is the draft: nothing to publish
        entries = container_for(world.settings).ledger.entries_for_subject(
            f"policy:desired-state:{stored.sha256}", limit=20
        )
        assert [e.kind for e in entries] == ["policy.published"] and entries[0].actor == ADAM.oid
    finally:
        publish_desired_state(store, published_policies(), actor="Adam Admin", now=datetime.now(UTC))


# --- coverage: who must be recorded, and were they -----------------------------------------------------------------

TOM = ("1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101", "tom.trader@contoso.onmicrosoft.com")
TARA = ("2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102", "tara.trader@contoso.onmicrosoft.com")


def _verdict(user: tuple[str, str], call_id: str, start: datetime, state: str, seconds: float = 0.0) -> Verdict:
    """A verdict as reconciliation stores it for a demo-tenant policy user (the audit's users come from the
    simulator's tenant; the world's calls are of other people)."""
    at = format_datetime(start)
    return Verdict.model_validate(
        {
            "id": f"{call_id}:{user[0]}",
            "callId": call_id,
            "callRecordVersion": 1,
            "userId": user[0],
            "userPrincipalName": user[1],
            "day": at[:10],
            "callStart": at,
            "presence": {"start": at, "end": format_datetime(start + timedelta(minutes=1)), "seconds": 60.0},
            "verdict": state,
            "coverage": 1.0 if state == "recorded" else round(1 - seconds / 60, 3),
            "gaps": [{"start": at, "end": at, "seconds": seconds}] if seconds else [],
            "recordingIds": [f"rec-{call_id}"],
            "reason": "recorded" if state == "recorded" else "recorder_crashed",
            "evaluatedAt": at,
        }
    )


def test_an_officer_sees_every_person_who_must_be_recorded_and_who_is_not(
    stack: tuple[World, RunningHost], browser: Any
) -> None:
    """The coverage page lists each policy user of the start-up audit with the state of their calls: Tom's call was
    recorded (his last recording linked), Tara's lost 42 s, Ned had no call; the filter narrows the list to who is
    not recorded; each read is in the ledger."""
    world, host = stack
    states = CosmosCoverageStateStore(clients.cosmos_database(world.settings).get_container_client("control"))
    wait_for(lambda: states.load().last_report is not None and states.load().claimed_at is None, timeout=120)
    report = states.load().last_report
    assert report is not None and report.users, "the audit lists its policy users"
    services = container_for(world.settings)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    tom_call = _verdict(TOM, f"cov-{uuid.uuid4().hex[:6]}", yesterday, "recorded")
    for verdict in (tom_call, _verdict(TARA, f"cov-{uuid.uuid4().hex[:6]}", yesterday, "partial", 42.0)):
        services.verdicts.save(verdict)
    tom_recording = recording(f"rec-{tom_call.call_id}", tom_call.call_id, TOM[0], start=yesterday)
    services.recording_index.put(tom_recording, [tom_call])

    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.goto(f"{host.base_url}/api/portal/#/coverage")
    page.wait_for_selector(f"#people tr[data-user='{TOM[0]}']")
    tom, tara = (page.locator(f"#people tr[data-user='{user[0]}']") for user in (TOM, TARA))
    assert "recorded" in tom.inner_text() and "1 of 1" in tom.inner_text()
    assert tom.locator("a").first.get_attribute("href") == f"#/recording/{tom_recording.id}"
    tara_row = tara.inner_text()
    assert "not recorded" in tara_row and "42 s" in tara_row and "recorder crashed" in tara_row, tara_row
    listed = {row.get_attribute("data-user") for row in page.locator("#people tbody tr[data-user]").all()}
    assert listed == {u.user_id for u in report.users}  # every policy user, not a count
    ned = next(u.user_id for u in report.users if u.user_principal_name == "ned.adviser@contoso.onmicrosoft.com")
    assert "no calls" in page.inner_text(f"#people tr[data-user='{ned}']")
    assert "1 recorded, 1 not recorded, 1 no calls" in page.inner_text("#people-counts")
    axe(page, "coverage with its people")
    shot(page, "coverage-people")

    page.select_option("#people-form select[name=state]", "not_recorded")
    page.get_by_role("button", name="Show", exact=True).click()
    wait_for(lambda: page.locator(f"#people tr[data-user='{TOM[0]}']").count() == 0, timeout=20)
    shown = [row.get_attribute("data-user") for row in page.locator("#people tbody tr[data-user]").all()]
    assert shown == [TARA[0]]  # everyone else the policy records, and their calls (if any) were recorded
    shot(page, "coverage-not-recorded")

    reads = [e for e in services.ledger.entries_for_subject("policy:coverage", limit=500) if e.actor == OSCAR.oid]
    assert [e.details["action"] for e in reads][-2:] == ["coverage.users.read", "coverage.users.read"]
    assert reads[-1].details["filters"]["state"] == "not_recorded"


# --- keyboard ---------------------------------------------------------------------------------------------------


def test_the_portal_is_usable_from_the_keyboard(stack: tuple[World, RunningHost], browser: Any) -> None:
    """The skip link moves focus to the content; the navigation is reached with Tab and followed with Enter; the
    focused control shows a visible outline; a filter form submits with Enter."""
    _, host = stack
    page = first_page(browser)
    sign_in(page, host, AUDE)
    page.goto(f"{host.base_url}/api/portal/#/search")
    page.wait_for_selector("#search-form")

    page.focus("a.skip")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#/search")  # the route stays

    page.focus("a.brand")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Audit trail":
            break
    else:
        pytest.fail("Tab never reached the Audit trail link")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_selector("#audit-form")
    assert page.url.endswith("#/audit")

    wait_for(lambda: "audit.read" in page.inner_text("#audit tbody"), timeout=20)  # the day's records, unfiltered
    page.focus("#audit-form input[name=action]")
    page.keyboard.type("media.access")
    page.keyboard.press("Enter")
    wait_for(lambda: "audit.read" not in page.inner_text("#audit tbody"), timeout=20)  # the filter applied
    rows = page.inner_text("#audit tbody")
    assert "media.access" in rows or "No audit records" in rows, rows


def test_an_officer_downloads_each_part_of_a_multi_part_export_and_the_folder_verifies(
    stack: tuple[World, RunningHost], browser: Any, tmp_path: Path
) -> None:
    """A very large export is a multi-part package (forced here after one recording per part, with tiny data): its
    row lists the index, its signature and each part, each downloaded on its own; the folder holding them
    verifies. Last in this file: it seals one more recording (no PSTN caller), which the tests above do not
    expect."""
    import dataclasses

    from tests.api.world import seal_recording
    from verbatim.contracts.exports import ExportRequest
    from verbatim.platform.auth import COMPLIANCE_OFFICER, Principal

    world, host = stack
    assert world.sealed is not None
    other = seal_recording(world.settings, seconds=2.0, started_at=T0 + timedelta(days=40), phone_number=None)
    service = dataclasses.replace(container_for(world.settings).exports.service, part_items=1)
    officer = Principal(subject=OSCAR.oid, name=OSCAR.name, roles=frozenset({COMPLIANCE_OFFICER}))
    ids = [world.sealed.recording_id, other.recording_id]
    record = service.create(ExportRequest(recording_ids=ids, title="Two recordings in parts"), officer, "FCA 118")
    service.run_inline(record.id)

    page = first_page(browser)
    sign_in(page, host, OSCAR)
    page.goto(f"{host.base_url}/api/portal/#/exports")
    page.wait_for_selector("#export-form")
    row = page.locator("#exports tbody tr.export", has_text="Two recordings in parts")
    row.wait_for(timeout=20_000)
    assert "2 parts" in row.inner_text()
    row.locator("summary").click()
    page.fill("#export-reason", "FCA request 2026/118")
    buttons = row.locator("button.download-part")
    assert buttons.count() == 4
    folder = tmp_path / "parts"
    folder.mkdir()
    for n in range(buttons.count()):
        with page.expect_download(timeout=60_000) as started:
            buttons.nth(n).click()
        started.value.save_as(folder / started.value.suggested_filename)
    assert sorted(p.name for p in folder.iterdir()) == [
        "package-index.json",
        "package-index.sig",
        "part-0001.zip",
        "part-0002.zip",
    ]
    axe(page, "exports-parts")
    shot(page, "exports-parts")
    quiet = argparse.Namespace(key=None, key_file=None, fingerprint=None, quiet=True, json=False)
    report = standalone_export_verifier.verify(folder, quiet)
    assert report.verified, [f.message for f in report.findings]
    assert report.facts["parts"] == 2 and report.facts["recordings"] == 2
