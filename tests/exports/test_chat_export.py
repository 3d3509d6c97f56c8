"""Chats in an export, end to end on the local stack: a policy user's chat captured through the simulator's encrypted
notifications by the real `function_app.py` in the local Functions host (post, edit, delete: three versions),
sealed as a chat-day bundle in Azurite with its `chat.sealed` ledger entry, placed under a legal hold through the
API, exported through the API (`holdId`, `options.chats`) by the durable orchestration, downloaded in Range parts
and verified offline by the verifier shipped inside the package, in a Python that has only `cryptography`. Then a
message altered in the package is caught and named by its message id, as is a line dropped from the audit trail.

The chat-day is sealed by calling the sealer the host's timer runs (`ChatSealer.seal`): the timer seals a day only
once it is over (plus a grace period), which a test cannot wait for.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.chat_certificate import ensure_chat_certificate
from devstack.processes import free_port
from tests.callrecords.conftest import Simulator
from tests.callrecords.helpers import drain
from tests.chat.test_host import TARA, TOM, _record_tom, chat_subscription, post, versions
from tests.conftest import Azurite
from tests.exports.test_package import findings, run_verifier
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.chat.sealing import chat_key
from verbatim.exports import names
from verbatim.platform import layout
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
REASON = "SEC 17a-4 production, matter M-7: Tom's chats"


@pytest.fixture
def host(
    sim_env: Settings,
    simulator: Simulator,
    azurite_service: Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RunningHost, Settings]]:
    simulator.sim("POST", "/sim/reset")
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("VERBATIM_ENVIRONMENT", "local")
    monkeypatch.setenv("CHAT_CAPTURE_ENABLED", "true")
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    settings = reload_settings()
    port = free_port()
    state_dir = tmp_path / "host"
    base = f"http://127.0.0.1:{port}"
    pem = ensure_chat_certificate(tmp_path / "chat.pem")
    monkeypatch.setenv("CHAT_ENCRYPTION_PEM_FILE", str(pem))
    env = {
        "AzureWebJobsStorage": azurite_service.connection_string,
        "RECORDINGS_STORAGE": azurite_service.connection_string,
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        "COSMOS_ENDPOINT": str(settings.cosmos_endpoint),
        "COSMOS_KEY": settings.cosmos_key.get_secret_value() if settings.cosmos_key else "",
        "COSMOS_CA_CERT": str(settings.cosmos_ca_cert),
        "COSMOS_DATABASE": settings.cosmos_database,
        "LEDGER_CONTAINER": settings.ledger_container,
        "LEDGER_ANCHOR_CONTAINER": settings.ledger_anchor_container,
        "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "ledger.pem"),
        "VERBATIM_ENVIRONMENT": "local",
        "MEDIA_CHUNK_BYTES": str(16 * 1024),
        **simulator.graph_env(),
        "CHAT_CAPTURE_ENABLED": "true",
        "CHAT_ENCRYPTION_PEM_FILE": str(pem),
        "CHAT_VALIDATION_JWKS_URL": f"{simulator.http_url}/common/discovery/v2.0/keys",
        "VERBATIM_LOG_LEVEL": "INFO",
        "DURABLE_TASK_HUB_NAME": f"cx{port}",
    }
    from devstack.funchost.state import load_or_create_keys

    keys = load_or_create_keys(state_dir, env)
    env["CHAT_NOTIFICATION_URL"] = f"{base}/api/chat/notifications?code={keys.default_function_key}"
    env["CHAT_LIFECYCLE_URL"] = f"{base}/api/chat/lifecycle?code={keys.default_function_key}"
    for queue in (layout.CHAT_MESSAGES_QUEUE, layout.CHAT_BACKFILL_QUEUE, layout.CHAT_LIFECYCLE_QUEUE):
        drain(settings, queue)
    launcher = HostLauncher(azurite_service, tmp_path)
    running = launcher.start(REPO, env=env, state_dir=state_dir, port=port)
    try:
        _record_tom(settings)
        yield running, settings
    finally:
        launcher.stop_all()


def api(
    host: RunningHost, simulator: Simulator, method: str, path: str, *, body: Any = None, range_: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {simulator.user_token('Compliance.Officer')}", "X-Access-Reason": REASON}
    if range_ is not None:
        headers["Range"] = range_
    return httpx.request(method, f"{host.base_url}/api/v1{path}", json=body, headers=headers, timeout=60)


def download(host: RunningHost, simulator: Simulator, view: dict[str, Any], target: Path) -> int:
    size = view["export"]["result"]["packageBytes"]
    parts, offset = 0, 0
    with target.open("wb") as out:
        while offset < size:
            answer = api(host, simulator, "GET", view["download"].removeprefix("/api/v1"), range_=f"bytes={offset}-")
            assert answer.status_code == 206, answer.text
            out.write(answer.content)
            offset += len(answer.content)
            parts += 1
    return parts


def test_a_captured_chat_under_a_legal_hold_is_exported_verified_offline_and_a_changed_message_is_named(
    host: tuple[RunningHost, Settings],
    simulator: Simulator,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    running, settings = host
    wait_for(lambda: chat_subscription(simulator, running), 60)
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    first = post(simulator, chat["id"], TOM, "Buy 500 at par")
    time.sleep(0.05)
    simulator.sim("PATCH", f"/sim/chats/{chat['id']}/messages/{first['id']}", json={"content": "Buy 600 at par"})
    time.sleep(0.05)
    second = post(simulator, chat["id"], TARA, "Done: 600 at par, ticket 7731")
    time.sleep(0.05)
    simulator.sim("DELETE", f"/sim/chats/{chat['id']}/messages/{first['id']}")
    stored = wait_for(lambda: len(versions(settings, chat["id"])) == 4 and versions(settings, chat["id"]), 90)
    days = sorted({v["day"] for v in stored})

    container = container_for(settings)
    sealed = [container.chat.sealer.seal(chat["id"], day) for day in days]
    assert all(s is not None and s.versions for s in sealed)

    now = datetime.now(UTC)
    hold = api(
        running,
        simulator,
        "POST",
        "/holds",
        body={
            "matterId": "M-7",
            "description": "Tom's trading chats",
            "custodians": [TOM],
            "from": (now - timedelta(days=2)).isoformat(),
        },
    )
    assert hold.status_code in (200, 201), hold.text
    hold_id = hold.json()["hold"]["id"]

    created = api(running, simulator, "POST", "/exports", body={"holdId": hold_id, "options": {"chats": True}})
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]

    def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = api(running, simulator, "GET", f"/exports/{export_id}").json()
        return view if view["export"]["status"] in ("completed", "failed") else None

    view = wait_for(finished, timeout=240, interval=0.5)
    assert view["export"]["status"] == "completed", view
    assert view["export"]["result"]["chats"] == 1 and view["export"]["result"]["recordings"] == 0
    package = tmp_path / "export.zip"
    assert download(running, simulator, view, package) > 1

    # What a reviewer reads: every version, the edit and the deletion, in the transcript and the load file.
    folder = names.chat_folder(0, chat_key(chat["id"]))
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read(names.PACKAGE_MANIFEST))
        transcript = archive.read(f"{folder}/{names.TRANSCRIPT_HTML}").decode()
        text = archive.read(f"{folder}/{names.TRANSCRIPT_TEXT}").decode()
        rendered = json.loads(archive.read(f"{folder}/{names.CHAT_JSON}"))
        dat = archive.read(names.LOADFILE_DAT).decode("utf-8")
        trail = [json.loads(line) for line in archive.read(f"{folder}/audit-trail.jsonl").splitlines()]
        listed = archive.namelist()
    [row] = manifest["chats"]
    assert row["chatId"] == chat["id"] and row["versions"] == 4 and row["messages"] == 2
    assert f"under legal hold {hold_id}" in row["why"]
    history = {m["messageId"]: [v["state"] for v in m["versions"]] for m in rendered["messages"]}
    assert history == {first["id"]: ["posted", "edited", "deleted"], second["id"]: ["posted"]}
    for words in ("Buy 500 at par", "Buy 600 at par", "ticket 7731"):
        assert words in transcript and words in text
    assert "<script" not in transcript and "default-src 'none'" in transcript
    assert "\xfeChat\xfe" in dat and chat["id"] in dat
    assert trail[0]["kind"] == "chat.sealed" and trail[-1]["kind"] == "exported"
    assert trail[-1]["details"]["bundles"] == [s.bundle_id for s in sealed if s is not None]
    assert any(n.endswith("/messages.ndjson") for n in listed)

    verified = run_verifier(isolated_python, package, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["verified"] is True and report["chats"] == 1

    # A message changed in the package (its sealed line rewritten) is caught and named by its id.
    copy = tmp_path / "tampered"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(copy)
    ndjson = next((copy / folder / "bundles").glob("*/messages.ndjson"))
    data = ndjson.read_bytes()
    assert b"ticket 7731" in data
    ndjson.write_bytes(data.replace(b"ticket 7731", b"ticket 7781"))
    done = run_verifier(isolated_python, copy, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    codes = {f["code"]: f["message"] for f in findings(done)}
    assert "file.hash_mismatch" in codes
    assert "chat.message_mismatch" in codes and second["id"] in codes["chat.message_mismatch"]
    assert first["id"] not in codes["chat.message_mismatch"]

    # One entry of the chat's audit trail dropped with its proof: named by its index.
    dropped = tmp_path / "dropped"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(dropped)
    trail_path = dropped / folder / "audit-trail.jsonl"
    lines = trail_path.read_bytes().split(b"\n")
    first_index = next(
        int(p.name.split(".")[0]) for p in (dropped / folder / "proofs").iterdir() if _entry_of(p) == lines[0]
    )
    (dropped / folder / "proofs" / f"{first_index}.tlog-proof").unlink()
    trail_path.write_bytes(b"\n".join(lines[1:]))
    done = run_verifier(isolated_python, dropped, "--json")
    assert done.returncode == 1
    messages = [f["message"] for f in findings(done) if f["code"] == "trail.entry_missing"]
    assert any(f"ledger entry {first_index}" in m for m in messages), findings(done)


def _entry_of(proof: Path) -> bytes:
    import base64

    for line in proof.read_text().split("\n"):
        if line.startswith("extra "):
            return base64.b64decode(line[6:])
    return b""
