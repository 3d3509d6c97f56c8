"""`verbatim-dev up` brings the stack up: every component ready and /api/health 200 with every dependency up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.emulators import REPO_ROOT, AzuritePorts
from devstack.processes import StartupError, free_port
from devstack.stack import StackConfig, StackPorts, app_environment, running

pytestmark = pytest.mark.e2e


def test_the_stack_starts_and_reports_healthy(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path / "state", ports=StackPorts.free())

    with running(config, echo=lambda _: None) as components:
        api = f"http://127.0.0.1:{config.ports.functions}/api"
        anonymous = httpx.get(f"{api}/health", timeout=30)
        # The dependencies are for a caller with an app role (issue 13, finding 10): the local dev sign-in's.
        token = httpx.post(f"{api}/v1/dev/token", json={"roles": ["Recorder.Admin"]}, timeout=30)
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['accessToken']}"}
        response = httpx.get(f"{api}/health", headers=bearer, timeout=30)
        pids = [component.process.pid for component in components]

    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["status"] == "healthy" and "dependencies" not in anonymous.json()
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "healthy"
    assert {name: dep["status"] for name, dep in report["dependencies"].items()} == {
        "blob": "up",
        "queue": "up",
        "table": "up",
        "cosmos": "up",
    }
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_up_fails_fast_with_a_clear_message_when_a_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        config = StackConfig(
            state_dir=tmp_path / "state",
            ports=StackPorts(azurite=AzuritePorts(blob=taken, queue=free_port(), table=free_port())),
        )
        with (
            pytest.raises(StartupError, match=f"port {taken} on 127.0.0.1 is already in use"),
            running(config, echo=lambda _: None),
        ):
            pass


def test_sigterm_stops_every_component_by_pid(tmp_path: Path) -> None:
    """The real command line: start `verbatim-dev up` with a private state dir and SIGTERM it."""
    state = tmp_path / "state"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "up",
            "--state-dir",
            str(state),
            "--no-recorder",
            "--no-simulator",
            "--free-ports",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not (state / "pids").exists() or "running" not in (output := _peek(process)):
            assert process.poll() is None, _peek(process)
            assert time.monotonic() < deadline, "verbatim-dev up did not come up"
            time.sleep(0.5)
        pids = [int(line.split()[1]) for line in (state / "pids").read_text().splitlines()]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (state / "pids").exists()


_buffer: dict[int, str] = {}


def _peek(process: subprocess.Popen[bytes]) -> str:
    import select

    assert process.stdout is not None
    text = _buffer.get(process.pid, "")
    while select.select([process.stdout], [], [], 0)[0]:
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        text += chunk.decode(errors="replace")
    _buffer[process.pid] = text
    return text


def test_a_restarted_stack_keeps_its_cosmos_documents_and_blobs(tmp_path: Path) -> None:
    from verbatim.platform import clients
    from verbatim.platform.settings import Settings

    config = StackConfig(
        state_dir=tmp_path / "state", ports=StackPorts.free(), with_simulator=False, with_recorder=False
    )
    settings = Settings.model_validate(app_environment(config))
    with running(config, echo=lambda _: None):
        clients.cosmos_database(settings).get_container_client("recordings").upsert_item(
            {"id": "kept-1", "status": "sealed"}
        )
        clients.blob_service(settings.recordings_storage_connection).get_blob_client(
            "recordings", "kept-1/audio.flac"
        ).upload_blob(b"evidence")

    with running(config, echo=lambda _: None):
        recording = (
            clients.cosmos_database(settings)
            .get_container_client("recordings")
            .read_item("kept-1", partition_key="kept-1")
        )
        blob = (
            clients.blob_service(settings.recordings_storage_connection)
            .get_blob_client("recordings", "kept-1/audio.flac")
            .download_blob()
            .readall()
        )

    assert recording["status"] == "sealed"
    assert blob == b"evidence"
