"""Shared fixtures: real local emulators on free ports, and settings pointed at them.

`azurite` and `cosmos` start once per test session (they are real processes: Azurite from npm and the
Cosmos emulator over TLS); `stack_env` points the settings model at them for one test.

A stopped run leaves no process behind: SIGTERM unwinds pytest as Ctrl-C does (every fixture stops what it started,
by PID), and when the run ends the pytest that started it stops, by PID, any process still carrying this run's mark
(`VERBATIM_TEST_RUN`, inherited by everything the run starts, its xdist workers' processes too) — what a worker
killed in the middle of its teardown could not stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from devstack.emulators import COSMOS_EMULATOR_KEY, AzuritePorts, azurite, cosmos_emulator, ensure_tls
from devstack.processes import free_port
from verbatim.platform.settings import Settings, reload_settings

# No per-example time limit and no "too slow" health check anywhere: both are timed assertions, and this suite
# runs on a shared 2-core machine where a slow example says nothing about the code.
hypothesis_settings.register_profile(
    "verbatim", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
hypothesis_settings.load_profile("verbatim")

RUN_MARK = "VERBATIM_TEST_RUN"
WHOLE_STACK = "tests/e2e/"
WHOLE_STACKS_FIRST = "VERBATIM_WHOLE_STACKS_FIRST"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") == "loadfile":
        os.environ[WHOLE_STACKS_FIRST] = "1"  # told to the workers, whose own `dist` option xdist sets to "no"
    if os.environ.get(RUN_MARK):
        return  # an xdist worker (or a pytest started by a test): the run's first pytest owns the sweep
    os.environ[RUN_MARK] = f"{os.getpid()}-{uuid.uuid4().hex}"
    config.stash[_owner] = os.environ[RUN_MARK]
    signal.signal(signal.SIGTERM, _interrupt)


_owner = pytest.StashKey[str]()


def marked_processes(mark: str) -> list[int]:
    """PIDs of the live processes whose environment carries this run's mark (Linux /proc)."""
    needle = f"{RUN_MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environment.split(b"\0"):
            found.append(int(entry.name))
    return found


def pytest_unconfigure(config: pytest.Config) -> None:
    mark = config.stash.get(_owner, None)
    if mark is None or not Path("/proc").is_dir():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the sweep short
    try:
        left = marked_processes(mark)
        if not left:
            return
        sys.stderr.write(f"\nstopping {len(left)} process(es) this test run left running: {left}\n")
        for kind in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, kind)
            deadline = time.monotonic() + 5
            while (left := marked_processes(mark)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not left:
                return
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (`make test`), with every file of tests/e2e/ in one work unit: each of them starts a whole
    stack and several time what a call does, so they run one after another on one worker, as they would alone,
    while the other worker takes the rest of the suite."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WholeStacksOneAtATime(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return WHOLE_STACK if nodeid.startswith(WHOLE_STACK) else super()._split_scope(nodeid)

    return WholeStacksOneAtATime(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two items with one node id would be one test to pytest-xdist, which runs the first and drops the rest: refused.
    Under `make test`'s workers the whole-stack tests come first (the longest unit starts at once, the other worker
    takes the rest; the order within each file is kept)."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    twice = {nodeid: count for nodeid, count in seen.items() if count > 1}
    if twice:
        raise pytest.UsageError(f"tests collected under one node id, which pytest-xdist would run once: {twice}")
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(WHOLE_STACKS_FIRST):
        items.sort(key=lambda item: not item.nodeid.startswith(WHOLE_STACK))


@dataclass(frozen=True)
class Azurite:
    ports: AzuritePorts

    @property
    def connection_string(self) -> str:
        return self.ports.connection_string


@dataclass(frozen=True)
class Cosmos:
    endpoint: str
    key: str
    ca_cert: Path


@pytest.fixture(scope="session")
def azurite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    root = tmp_path_factory.mktemp("azurite")
    ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
    with azurite(ports, root / "data", root / "azurite.log"):
        yield Azurite(ports)


@pytest.fixture(scope="session")
def cosmos_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cosmos]:
    root = tmp_path_factory.mktemp("cosmos")
    tls = ensure_tls(root / "tls")
    port = free_port()
    with cosmos_emulator(port, tls, root / "cosmos.log"):
        yield Cosmos(endpoint=f"https://127.0.0.1:{port}", key=COSMOS_EMULATOR_KEY, ca_cert=tls.ca_cert)


@pytest.fixture
def azurite_env(azurite_service: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose runtime and recordings storage are the test Azurite."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite_service.connection_string)
    monkeypatch.setenv("RECORDINGS_STORAGE", azurite_service.connection_string)
    yield reload_settings()
    reload_settings()


@pytest.fixture
def stack_env(
    azurite_service: Azurite,
    cosmos_service: Cosmos,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Settings]:
    """Settings pointed at the test Azurite and Cosmos, with a Cosmos database of the test's own,
    provisioned from verbatim.platform.layout (containers, queues)."""
    from devstack.provision import provision_cosmos, provision_storage

    monkeypatch.setenv("AzureWebJobsStorage", azurite_service.connection_string)
    monkeypatch.setenv("RECORDINGS_STORAGE", azurite_service.connection_string)
    monkeypatch.setenv("COSMOS_ENDPOINT", cosmos_service.endpoint)
    monkeypatch.setenv("COSMOS_KEY", cosmos_service.key)
    monkeypatch.setenv("COSMOS_CA_CERT", str(cosmos_service.ca_cert))
    test_id = abs(hash(request.node.nodeid)) % 10**10
    monkeypatch.setenv("COSMOS_DATABASE", f"t{test_id}")
    # The ledger's log writes fixed names (tiles): each test its own containers, as its own database.
    monkeypatch.setenv("LEDGER_CONTAINER", f"ledger-{test_id}")
    monkeypatch.setenv("LEDGER_ANCHOR_CONTAINER", f"anchors-{test_id}")
    settings = reload_settings()
    provision_cosmos(settings)
    provision_storage(settings)
    yield settings
    reload_settings()
