"""The Teams/Graph simulator and one recorder process on the session's Azurite, for the recorder tests that need
calls from the platform: `simulator_stack` starts both and stops them on leaving."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import ManagedProcess, http_ready
from devstack.stack import StackConfig, StackPorts, recorder_environment, simulator_process
from recorder_vm import launch_argv as recorder_argv
from tests.conftest import Azurite
from tests.recorder.conftest import REPO_ROOT, RecorderProcess


@dataclass
class SimulatorStack:
    config: StackConfig
    recorder: RecorderProcess

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.config.simulator_url}{path}", json=body, timeout=30)
        assert response.status_code < 400, response.text
        return response.json()


@contextmanager
def simulator_stack(azurite: Azurite, root: Path, events_queue: str, **settings: str) -> Iterator[SimulatorStack]:
    """The simulator (real-time clock) and a recorder sending its events to `events_queue` and staging into the
    `captures` container, with `settings` added to its environment; logs and state under `root`."""
    config = StackConfig(state_dir=root / "state", ports=replace(StackPorts.free(), azurite=azurite.ports))
    ports = config.ports
    simulator = simulator_process(config, root / "simulator.log")
    container = "captures"
    env = {
        **recorder_environment(config),
        "RECORDER_EVENTS_QUEUE": events_queue,
        "CAPTURES_CONTAINER": container,
        **settings,
    }
    process = ManagedProcess(
        name="recorder",
        argv=recorder_argv(port=ports.recorder, media_port=ports.recorder_media, state_dir=root / "recorder"),
        ready=http_ready(f"{config.recorder_url}/health", ok=lambda status: status == 200),
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        log_path=root / "recorder.log",
        ports=(ports.recorder, ports.recorder_media),
    )
    with simulator, process:
        recorder = RecorderProcess(
            process, ports.recorder, ports.recorder_media, root / "recorder", "sim", azurite.connection_string,
            events_queue, container, env,
        )  # fmt: skip
        yield SimulatorStack(config, recorder)
