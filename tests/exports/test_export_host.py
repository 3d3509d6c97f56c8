"""Exports through the API in the local Functions host (real durable replay, Azurite task hub, Cosmos emulator,
bearer tokens from a real OpenID provider): request an export, follow its progress, download the package in
Range parts, verify it with the verifier shipped inside it in a Python that has only `cryptography`; every step
recorded in the ledger; bad requests are problems, not failures. Then a 50-recording export survives a restart of
the host in the middle of its fan-out."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.testkit.records import T0, TRADER
from tests.api.world import seal_access_copy, seal_recording
from tests.callrecords.oidc import AUDIENCE, OpenIdProvider, openid_provider
from tests.conftest import Azurite
from tests.exports.conftest import REASON, ExportWorld
from tests.exports.test_package import findings, run_verifier
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.cli import main as cli
from verbatim.exports.service import export_subject
from verbatim.wiring import container_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

APP = Path(__file__).parent / "app"
OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-9", "name": "Olga Officer"}
AUDITOR = {"roles": ["Compliance.Auditor"], "oid": "auditor-9", "name": "Abe Auditor"}


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture(scope="module")
def launcher(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostLauncher]:
    hosts = HostLauncher(azurite_service, tmp_path_factory.mktemp("export-host"))
    yield hosts
    hosts.stop_all()


def start(
    launcher: HostLauncher, world: ExportWorld, provider: OpenIdProvider, state_dir: Path, hub: str
) -> RunningHost:
    env = {**world.env, "AUTH_OPENID_CONFIG_URL": provider.config_url, "AUTH_AUDIENCE": AUDIENCE}
    env["EXPORT_ACCESS_COPY_POLL_SECONDS"] = "1"  # an export waiting for an access copy checks every second
    return launcher.start(APP, env={**env, "DURABLE_TASK_HUB_NAME": hub}, state_dir=state_dir)


@pytest.fixture(scope="module")
def host(
    launcher: HostLauncher,
    export_world: ExportWorld,
    provider: OpenIdProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningHost:
    return start(launcher, export_world, provider, tmp_path_factory.mktemp("host"), f"x{uuid.uuid4().hex[:10]}")


def call(
    host: RunningHost,
    method: str,
    path: str,
    token: str,
    *,
    reason: str | None = REASON,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"authorization": f"Bearer {token}", **(headers or {})}
    if reason is not None:
        sent["x-access-reason"] = reason
    return httpx.request(method, f"{host.base_url}/api/v1{path}", json=body, headers=sent, timeout=60)


def completed(host: RunningHost, token: str, export_id: str, timeout: float = 240) -> dict[str, Any]:
    seen: list[str] = []

    def done() -> dict[str, Any] | None:
        view = call(host, "GET", f"/exports/{export_id}", token).json()
        seen.append(view["export"]["progress"]["stage"])
        return view if view["export"]["status"] in ("completed", "failed") else None

    view: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.5)
    assert view["export"]["status"] == "completed", view
    return view


def download(host: RunningHost, token: str, view: dict[str, Any], target: Path) -> list[str]:
    """The package in Range parts, as a client downloads it; returns the Content-Range of each part."""
    size = view["export"]["result"]["packageBytes"]
    ranges, offset = [], 0
    with target.open("wb") as out:
        while offset < size:
            answer = call(
                host, "GET", view["download"].removeprefix("/api/v1"), token, headers={"range": f"bytes={offset}-"}
            )
            assert answer.status_code == 206, answer.text
            assert answer.headers["content-type"] == "application/zip"
            ranges.append(answer.headers["content-range"])
            out.write(answer.content)
            offset += len(answer.content)
    return ranges


def test_an_export_requested_through_the_api_downloads_in_parts_and_verifies_offline(
    host: RunningHost,
    export_world: ExportWorld,
    provider: OpenIdProvider,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    officer = provider.mint(**OFFICER)
    ids = [r.recording_id for r in export_world.recordings]
    created = call(host, "POST", "/exports", officer, body={"recordingIds": ids, "title": "FCA request"})
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]
    assert created.headers["location"] == f"/api/v1/exports/{export_id}"

    view = completed(host, provider.mint(**AUDITOR), export_id)
    assert view["export"]["progress"] == {
        "stage": "completed",
        "exportId": export_id,
        "total": 3,
        "done": 3,
        "mediaBytes": view["export"]["result"]["mediaBytes"],
    }
    package = tmp_path / "export.zip"
    ranges = download(host, officer, view, package)
    assert len(ranges) > 1 and ranges[0].startswith("bytes 0-65535/")  # MEDIA_CHUNK_BYTES parts

    verified = run_verifier(isolated_python, package, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["recordings"] == 3

    # Creating, completing and downloading are ledger entries of the export; each recording has its `exported`.
    log = container_for(export_world.settings).ledger
    kinds = [e.kind for e in log.entries_for_subject(export_subject(export_id), limit=50)]
    assert kinds[:2] == ["export.created", "export.completed"] and "export.downloaded" in kinds
    assert kinds.count("export.downloaded") == 1  # one per reader and hour, however many parts
    listed = call(host, "GET", "/exports", officer).json()["items"]
    assert export_id in [item["id"] for item in listed]

    deleted = call(host, "DELETE", f"/exports/{export_id}", officer)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    gone = call(host, "GET", f"/exports/{export_id}/package", officer, headers={"range": "bytes=0-"})
    assert gone.status_code == 409 and gone.headers["content-type"] == "application/problem+json"
    assert "export.deleted" in [e.kind for e in log.entries_for_subject(export_subject(export_id), limit=50)]


def test_an_export_waits_durably_for_an_access_copy_still_being_made_and_carries_it(
    host: RunningHost, export_world: ExportWorld, provider: OpenIdProvider
) -> None:
    """The evidence is sealed first and the access copy after it: an export that carries access copies (the
    default) waits for one still being made, with a durable timer, instead of failing after its retries."""
    settings = export_world.settings
    pending = seal_recording(settings, seconds=3.0, started_at=T0 + timedelta(hours=3), access_copy=False)
    officer = provider.mint(**OFFICER)
    created = call(host, "POST", "/exports", officer, body={"recordingIds": [pending.recording_id]})
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]

    def stage() -> str:
        return str(call(host, "GET", f"/exports/{export_id}", officer).json()["export"]["progress"]["stage"])

    wait_for(lambda: stage() == "waiting_for_access_copies", timeout=120, interval=0.5)
    seal_access_copy(settings, pending)  # the access-copies trigger seals it meanwhile

    view = completed(host, officer, export_id)
    result = view["export"]["result"]
    assert result["recordings"] == 1
    # The package carries the access copy beside the evidence.
    assert pending.access_bytes and result["mediaBytes"] >= len(pending.evidence_bytes) + len(pending.access_bytes)
    log = container_for(settings).ledger
    entries = log.entries_for_subject(f"recording:{pending.recording_id}", limit=20)
    kinds = [e.kind for e in entries]
    # Exported only once its copy was sealed: the `exported` entry follows the `access_copy.sealed` one.
    assert kinds.index("access_copy.sealed") < kinds.index("exported"), kinds


def test_the_command_line_creates_follows_downloads_and_verifies_an_export(
    host: RunningHost,
    export_world: ExportWorld,
    provider: OpenIdProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VERBATIM_API_URL", f"{host.base_url}/api/v1")
    monkeypatch.setenv("VERBATIM_TOKEN", provider.mint(**OFFICER))
    first = export_world.recordings[0].recording_id
    assert cli(["export", "create", "--recording", first, "--reason", REASON, "--no-evidence", "--wait"]) == 0
    out = capsys.readouterr()
    export_id = out.out.splitlines()[0]
    # A bar per stage seen while polling (a one-recording export may pass some between two polls), ending complete.
    assert "completed: 1 recordings" in out.out and "completed: 100%" in out.err and "1/1" in out.err
    package = tmp_path / "cli.zip"
    # The local stack reaches storage with a key, so it issues no links (409): --via link fails, auto falls back.
    assert cli(["export", "download", export_id, "--reason", REASON, "-o", str(package), "--via", "link"]) == 1
    assert "409 No download links in this deployment" in capsys.readouterr().err
    assert cli(["export", "download", export_id, "--reason", REASON, "-o", str(package)]) == 0
    assert "no download links in this deployment: downloading through the API" in capsys.readouterr().err
    assert cli(["verify-export", str(package), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    with zipfile.ZipFile(package) as archive:  # --no-evidence: the access copy and the manifest, no FLAC
        media = [n for n in archive.namelist() if "/media/" in n]
    assert [n.rsplit("/", 1)[-1] for n in media] == ["access-copy.ogg"]
    assert cli(["export", "status", "no-such-export"]) == 1
    assert "404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("who", "reason", "body", "status", "words"),
    [
        (OFFICER, None, {"recordingIds": ["x"]}, 400, "X-Access-Reason"),
        (AUDITOR, REASON, {"recordingIds": ["x"]}, 403, "Compliance.Officer"),
        (OFFICER, REASON, {"recordingIds": ["x"], "holdId": "h"}, 400, "exactly one"),
        (OFFICER, REASON, {"recordingIds": ["x"], "options": {"transcripts": True}}, 400, "transcripts"),
        (OFFICER, REASON, {"holdId": "no-such-hold"}, 404, "no-such-hold"),
        (OFFICER, REASON, {"search": {"from": "yesterday"}}, 400, "from"),
    ],
)
def test_a_bad_export_request_is_a_problem_and_starts_nothing(
    host: RunningHost,
    provider: OpenIdProvider,
    who: dict[str, Any],
    reason: str | None,
    body: dict[str, Any],
    status: int,
    words: str,
) -> None:
    answer = call(host, "POST", "/exports", provider.mint(**who), reason=reason, body=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.text


def test_a_fifty_recording_export_survives_a_host_restart_in_its_fan_out(
    launcher: HostLauncher,
    export_world: ExportWorld,
    provider: OpenIdProvider,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    settings = export_world.settings
    more = [
        seal_recording(settings, seconds=1.0 + n / 50, started_at=T0 + timedelta(hours=1, minutes=n), user=TRADER)
        for n in range(50 - len(export_world.recordings))
    ]
    ids = [r.recording_id for r in export_world.recordings] + [r.recording_id for r in more]
    state_dir, hub = tmp_path / "host", f"r{uuid.uuid4().hex[:10]}"
    host = start(launcher, export_world, provider, state_dir, hub)
    officer = provider.mint(**OFFICER)
    created = call(host, "POST", "/exports", officer, body={"recordingIds": ids})
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]

    def under_way() -> bool:
        progress = call(host, "GET", f"/exports/{export_id}", officer).json()["export"]["progress"]
        return progress["stage"] in ("attesting", "packaging") and 0 < progress["done"] < 50

    wait_for(under_way, timeout=240, interval=0.2)
    host.stop()
    host = start(launcher, export_world, provider, state_dir, hub)

    view = completed(host, officer, export_id, timeout=400)
    assert view["export"]["result"]["recordings"] == 50
    package = tmp_path / "export.zip"
    download(host, officer, view, package)
    verified = run_verifier(isolated_python, package, "--json")
    assert verified.returncode == 0, findings(verified)
    # Each recording attested once: a repeated activity found its `exported` entry by its idempotency key.
    log = container_for(settings).ledger
    for recording_id in ids[:3]:
        entries = log.entries_for_subject(f"recording:{recording_id}", limit=100)
        assert [e.details.get("export_id") for e in entries if e.kind == "exported"].count(export_id) == 1


def test_a_multi_part_export_lists_its_parts_downloads_each_and_the_command_line_verifies_the_whole(
    launcher: HostLauncher,
    export_world: ExportWorld,
    provider: OpenIdProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A host whose packages split after one recording (EXPORT_PART_ITEMS=1): the export of three recordings is
    three parts beside a signed index; the API lists them, serves each in Range parts (the single-package route
    says where to look instead), refuses a name that is not one of them; the command line downloads every object
    into a folder and verifies the whole with the package's verifier; deleting the export removes every part."""
    env = {**export_world.env, "AUTH_OPENID_CONFIG_URL": provider.config_url, "AUTH_AUDIENCE": AUDIENCE}
    env = {**env, "EXPORT_PART_ITEMS": "1", "DURABLE_TASK_HUB_NAME": f"m{uuid.uuid4().hex[:10]}"}
    host = launcher.start(APP, env=env, state_dir=tmp_path / "host")
    officer = provider.mint(**OFFICER)
    ids = [r.recording_id for r in export_world.recordings]
    created = call(host, "POST", "/exports", officer, body={"recordingIds": ids, "title": "in parts"})
    assert created.status_code == 202, created.text
    export_id = created.json()["export"]["id"]
    view = completed(host, officer, export_id)
    result = view["export"]["result"]
    assert [p["name"] for p in result["parts"]] == ["part-0001.zip", "part-0002.zip", "part-0003.zip"]
    assert [p["recordings"] for p in result["parts"]] == [[i] for i in ids]
    assert view["download"] == f"/api/v1/exports/{export_id}/parts"

    listed = call(host, "GET", f"/exports/{export_id}/parts", provider.mint(**AUDITOR))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["kind"] for i in items] == ["index", "index-signature", "part", "part", "part"]
    assert sum(i["bytes"] for i in items) == result["packageBytes"]
    single = call(host, "GET", f"/exports/{export_id}/package", officer, headers={"range": "bytes=0-"})
    assert single.status_code == 409 and single.headers["content-type"] == "application/problem+json"
    assert "multi-part package of 3 parts" in single.json()["detail"]
    first = call(host, "GET", f"/exports/{export_id}/parts/part-0002.zip", officer, headers={"range": "bytes=0-9"})
    assert first.status_code == 206 and first.headers["content-type"] == "application/zip"
    assert first.headers["content-range"] == f"bytes 0-9/{items[3]['bytes']}" and first.content[:4] == b"PK\x03\x04"
    assert first.headers["x-part-manifest-sha256"] == result["parts"][1]["manifestSha256"]
    unknown = call(host, "GET", f"/exports/{export_id}/parts/..%2Fother", officer, headers={"range": "bytes=0-"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    no_reason = call(host, "GET", f"/exports/{export_id}/parts/part-0001.zip", officer, reason=None)
    assert no_reason.status_code == 400 and "X-Access-Reason" in no_reason.text
    by_auditor = call(host, "GET", f"/exports/{export_id}/parts/part-0001.zip", provider.mint(**AUDITOR))
    assert by_auditor.status_code == 403

    monkeypatch.setenv("VERBATIM_API_URL", f"{host.base_url}/api/v1")
    monkeypatch.setenv("VERBATIM_TOKEN", officer)
    folder = tmp_path / "download"
    folder.mkdir()
    stored = container_for(export_world.settings).exports.service.work_store
    # A download begun earlier: the index whole, the first part's first kilobyte; each is resumed where it stopped.
    (folder / "package-index.json").write_bytes(stored.read(f"{export_id}/package-index.json"))
    (folder / "part-0001.zip").write_bytes(stored.read(result["parts"][0]["blob"])[:1000])
    assert cli(["export", "download", export_id, "--reason", REASON, "-o", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "3 parts, the index and its signature" in err and f"{folder}: verified" in err
    assert sorted(p.name for p in folder.iterdir()) == sorted(i["name"] for i in items)
    assert cli(["verify-export", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True and report["parts"] == 3 and report["recordings"] == 3

    log = container_for(export_world.settings).ledger
    kinds = [e.kind for e in log.entries_for_subject(export_subject(export_id), limit=50)]
    assert "export.downloaded" in kinds
    deleted = call(host, "DELETE", f"/exports/{export_id}", officer)
    assert deleted.status_code == 200
    assert stored.names(f"{export_id}/") == []
    host.stop()
