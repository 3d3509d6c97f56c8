"""Start the local Functions host as a real process against the session Azurite.

`start_host(script_root, env=..., state_dir=..., port=...)` starts a host, waits until
/admin/host/status answers 200, and returns a `RunningHost` (base URL, keys, log). Every host a test
started is stopped by PID at teardown. To restart a host (e.g. mid-orchestration), `host.stop()` it and
call `start_host` again with the same `state_dir` (same keys, same host id, so the same timer status
blobs) and, if URLs must stay valid, the same `port`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from devstack.emulators import REPO_ROOT
from devstack.funchost import launch_argv, status_url
from devstack.funchost.state import load_or_create_keys
from devstack.processes import ManagedProcess, free_port, http_ready
from tests.conftest import Azurite

APPS = Path(__file__).parent / "apps"


@dataclass
class RunningHost:
    base_url: str
    port: int
    master_key: str
    function_key: str
    state_dir: Path
    log_path: Path
    process: ManagedProcess

    def stop(self) -> int | None:
        """SIGTERM the host (SIGKILL after 10 s) and return its exit code."""
        self.process.stop()
        return self.process.process.returncode if self.process.process else None

    def log_records(self) -> list[dict[str, Any]]:
        """The host's structured log lines (non-JSON lines are skipped)."""
        records = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def admin_invoke(self, function_name: str, input_text: str = "") -> httpx.Response:
        return httpx.post(
            f"{self.base_url}/admin/functions/{function_name}",
            json={"input": input_text},
            headers={"x-functions-key": self.master_key},
            timeout=10,
        )


class StartHost(Protocol):
    def __call__(
        self,
        script_root: Path,
        *,
        env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        port: int | None = None,
        app: str = ...,
        extensions: list[str] | None = None,
    ) -> RunningHost: ...


class HostLauncher:
    """Starts hosts against one Azurite and remembers them, so they can all be stopped by PID."""

    def __init__(self, azurite: Azurite, base_dir: Path) -> None:
        self.azurite = azurite
        self.base_dir = base_dir
        self.started: list[ManagedProcess] = []

    def start(
        self,
        script_root: Path,
        *,
        env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        port: int | None = None,
        app: str = "function_app:app",
        extensions: list[str] | None = None,
    ) -> RunningHost:
        state_dir = state_dir or self.base_dir / f"funchost-{len(self.started)}"
        port = port or free_port()
        base_url = f"http://127.0.0.1:{port}"
        environment = {"AzureWebJobsStorage": self.azurite.connection_string, **(env or {})}
        keys = load_or_create_keys(state_dir, environment)
        log_path = state_dir / f"host-{time.monotonic_ns()}.log"
        process = ManagedProcess(
            name="functions-host",
            argv=launch_argv(script_root=script_root, port=port, app=app, state_dir=state_dir, extensions=extensions),
            ready=http_ready(status_url(base_url), ok=lambda status: status == 200),
            env=environment,
            cwd=REPO_ROOT,
            log_path=log_path,
            ports=(port,),
            startup_timeout=30,
        )
        process.start()
        self.started.append(process)
        process.wait_ready()
        return RunningHost(
            base_url=base_url,
            port=port,
            master_key=keys.master,
            function_key=keys.default_function_key,
            state_dir=state_dir,
            log_path=log_path,
            process=process,
        )

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


@pytest.fixture
def start_host(azurite_service: Azurite, tmp_path: Path) -> Iterator[StartHost]:
    """Start hosts for one test; each is stopped by PID at teardown."""
    launcher = HostLauncher(azurite_service, tmp_path)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_host(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartHost]:
    """Like `start_host`, for a host shared by a module's tests (stopped after the module)."""
    launcher = HostLauncher(azurite_service, tmp_path_factory.mktemp("funchost"))
    yield launcher.start
    launcher.stop_all()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy and return its value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)
