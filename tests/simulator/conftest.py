"""One simulator process per test session (simulated clock, demo tenant, free ports); every test starts
from the same tenant, configuration and empty call/record/subscription state."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.simulator import DEMO_TENANT, launch_argv
from tests.simulator.harness import SimClient

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port, https_port = _free_port(), _free_port()
    argv = launch_argv("127.0.0.1", port, DEMO_TENANT, "simulated", https_port=https_port, state_dir=root / "state")
    log = root / "simulator.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/sim/health", timeout=1) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/sim/tenant", timeout=5) as response:  # noqa: S310
            tenant = json.loads(response.read())
        with urllib.request.urlopen(f"{base}/sim/config", timeout=5) as response:  # noqa: S310
            config = json.loads(response.read())
        yield SimProcess(
            base,
            f"https://127.0.0.1:{https_port}",
            root / "state" / "tls" / "ca.pem",
            root / "state",
            tenant,
            config,
            log,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


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
