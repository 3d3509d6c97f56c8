"""One simulator process per test session (simulated clock, demo tenant, free ports); every test starts
from the same tenant, configuration and empty call/record/subscription state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from devstack.processes import ManagedProcess, free_port, http_ready
from devstack.simulator import DEMO_TENANT, health_url, launch_argv
from tests.simulator.harness import SimClient

REPO = Path(__file__).resolve().parents[2]


@dataclass
class SimProcess:
    base: str
    https: str
    ca_file: Path
    state_dir: Path
    tenant: dict[str, Any]
    config: dict[str, Any]
    log: Path


@pytest.fixture(scope="session")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    root = tmp_path_factory.mktemp("simulator")
    port, https_port = free_port(), free_port()
    state = root / "state"
    log = root / "simulator.log"
    process = ManagedProcess(
        name="simulator",
        argv=launch_argv("127.0.0.1", port, DEMO_TENANT, "simulated", https_port=https_port, state_dir=state),
        ready=http_ready(health_url("127.0.0.1", port), ok=lambda status: status == 200),
        cwd=REPO,
        log_path=log,
        ports=(port, https_port),
        startup_timeout=30,
    )
    with process:
        base = f"http://127.0.0.1:{port}"
        tenant = httpx.get(f"{base}/sim/tenant", timeout=10).json()
        config = httpx.get(f"{base}/sim/config", timeout=10).json()
        # The harness's bots (harness.Recorder) report no recording status unless a test makes them: a `fast` call
        # would wait the default 2 s for each of their legs. Tests of that wait set it back.
        config["fastPaceStartWaitSeconds"] = 0.25
        yield SimProcess(base, f"https://127.0.0.1:{https_port}", state / "tls" / "ca.pem", state, tenant, config, log)


Body = Callable[[SimClient], Awaitable[None]]


@pytest.fixture
def run(sim_process: SimProcess) -> Callable[[Body], None]:
    """Run an async test body against a freshly reset simulator."""

    def runner(body: Body) -> None:
        async def main() -> None:
            async with aiohttp.ClientSession() as http:
                client = SimClient(sim_process.base, http)
                await client.ok("POST", "/sim/reset", expect=204)
                await client.ok("PUT", "/sim/tenant", json=sim_process.tenant)
                await client.ok("PATCH", "/sim/config", json=sim_process.config)
                await body(client)

        try:
            asyncio.run(main())
        except BaseException:
            errors = [line for line in sim_process.log.read_text().splitlines() if "ERROR" in line or "Error" in line]
            if errors:
                print("simulator log errors:\n" + "\n".join(errors[-20:]))
            raise

    return runner
