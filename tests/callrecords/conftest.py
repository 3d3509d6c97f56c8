"""Fixtures of the call-record tests: the Teams/Graph simulator as a real process, and settings that
point the Graph client, the webhook and API authentication at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.emulators import REPO_ROOT
from devstack.processes import ManagedProcess, free_port, http_ready
from devstack.simulator import DEMO_TENANT, health_url, launch_argv
from tests.callrecords.helpers import SECRET
from verbatim.platform.settings import Settings, reload_settings

# The demo tenant's Function App registration (credentials of the local simulator only).
FUNCTIONS_APP_ID = "9a3d5c71-2e4f-4b60-8d1a-7f6e5d4c3b21"
FUNCTIONS_APP_SECRET = "sim-functions-local-only"


@dataclass(frozen=True)
class Simulator:
    http_url: str
    https_url: str
    ca_file: str
    tenant_id: str
    openid_configuration: str
    api_audience: str = "api://verbatim"

    def sim(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, f"{self.http_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def put_record(self, record: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.sim("PUT", f"/sim/callRecords/{record['id']}", json=record).json()
        return body

    def fault(self, **spec: Any) -> None:
        self.sim("POST", "/sim/faults", json=spec)

    def clear_faults(self) -> None:
        self.sim("DELETE", "/sim/faults")

    def user_token(self, *roles: str, subject: str = "officer-1") -> str:
        body = {"sub": subject, "oid": subject, "name": "Test Officer", "roles": list(roles)}
        return str(self.sim("POST", "/sim/tokens", json=body).json()["access_token"])

    def graph_env(self) -> dict[str, str]:
        return {
            "GRAPH_BASE_URL": self.http_url,
            "GRAPH_AUTHORITY_HOST": self.https_url,
            "GRAPH_CA_CERT": self.ca_file,
            "GRAPH_TENANT_ID": self.tenant_id,
            "GRAPH_CLIENT_ID": FUNCTIONS_APP_ID,
            "GRAPH_CLIENT_SECRET": FUNCTIONS_APP_SECRET,
            "GRAPH_CLIENT_STATE": SECRET,
            "AUTH_OPENID_CONFIG_URL": self.openid_configuration,
            "AUTH_AUDIENCE": self.api_audience,
        }


def _start_simulator(state_dir: Path, clock: str) -> Iterator[Simulator]:
    port, https_port = free_port(), free_port()
    process = ManagedProcess(
        name="simulator",
        argv=[*launch_argv("127.0.0.1", port, DEMO_TENANT, clock, https_port=https_port, state_dir=state_dir)],
        ready=http_ready(health_url("127.0.0.1", port), ok=lambda status: status == 200),
        cwd=REPO_ROOT,
        log_path=state_dir / "simulator.log",
        ports=(port, https_port),
        startup_timeout=30,
    )
    process.start()
    try:
        process.wait_ready()
        health = httpx.get(health_url("127.0.0.1", port), timeout=10).json()
        yield Simulator(
            http_url=health["httpUrl"],
            https_url=health["httpsUrl"],
            ca_file=health["caFile"],
            tenant_id=health["tenantId"],
            openid_configuration=health["openIdConfiguration"],
        )
    finally:
        process.stop()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A realtime-clock simulator shared by a module's tests."""
    yield from _start_simulator(tmp_path_factory.mktemp("simulator"), "realtime")


@pytest.fixture
def sim_env(stack_env: Settings, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointed at Azurite, Cosmos and the simulator; the simulator's faults and deliveries cleared."""
    for name, value in simulator.graph_env().items():
        monkeypatch.setenv(name, value)
    simulator.clear_faults()
    simulator.sim("DELETE", "/sim/deliveries")
    yield reload_settings()
    simulator.clear_faults()
