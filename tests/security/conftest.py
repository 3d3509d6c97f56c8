"""The whole local stack the security tests attack: Azurite, the Cosmos emulator, the Teams/Graph simulator
(the Entra-like issuer of every token) and the local Functions host running function_app.py over a recorded
world (a recording sealed by the lifecycle's own activities, reconciliation, a signed checkpoint). One stack
for the session; a test that tampers with evidence seals a recording of its own first."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError

from devstack.emulators import REPO_ROOT
from devstack.funchost.state import FUNCTION_KEY_SETTING
from devstack.processes import free_port
from tests.api.conftest import world_environment
from tests.api.world import World, build_world
from tests.callrecords.conftest import Simulator, _start_simulator
from tests.conftest import Azurite, Cosmos
from tests.funchost.conftest import HostLauncher, RunningHost
from verbatim.platform import clients
from verbatim.platform.settings import Settings, reload_settings

OFFICER = "Compliance.Officer"
AUDITOR = "Compliance.Auditor"
ADMIN = "Recorder.Admin"
REASON = {"X-Access-Reason": "Case 13: security review"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One node id per fuzzed operation. Schemathesis 4.32.5 builds its items with `originalname` and no callspec,
    from which pytest 9.2 makes every operation's node id the bare test name: one id for 67 items, of which
    pytest-xdist would run only the first (tests/conftest.py refuses a collection with such duplicates)."""
    from _pytest.nodeid import NodeId  # pytest's own node ids; pinned in requirements-dev.txt
    from schemathesis.pytest.plugin import SchemathesisFunction

    for item in items:
        if isinstance(item, SchemathesisFunction) and item.parent is not None and item.name != item.originalname:
            operation = item.name[len(item.originalname) + 1 : -1]  # "name[GET /recordings]" -> "GET /recordings"
            node_id: NodeId = item.parent.id.child(item.originalname).with_params(operation)
            item._id = node_id


@dataclass
class Stack:
    world: World
    host: RunningHost
    simulator: Simulator
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return self.world.settings

    @property
    def api(self) -> str:
        return f"{self.host.base_url}/api"

    def token(self, *roles: str, subject: str | None = None, **claims: Any) -> str:
        """A delegated user token of the simulator's issuer (`claims` go to /sim/tokens as they are)."""
        subject = subject or f"user-{'-'.join(r.split('.')[-1].lower() for r in roles) or 'none'}"
        body = {"sub": subject, "oid": subject, "name": f"Test {subject}", "roles": list(roles), **claims}
        return str(self.simulator.sim("POST", "/sim/tokens", json=body).json()["access_token"])

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, token, **kwargs)

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, f"{self.api}{path}", headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="session")
def security_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    yield from _start_simulator(tmp_path_factory.mktemp("security-simulator"), "realtime")


@pytest.fixture(scope="session")
def stack(
    azurite_service: Azurite,
    cosmos_service: Cosmos,
    security_simulator: Simulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    from devstack.provision import provision_cosmos, provision_storage

    root = tmp_path_factory.mktemp("security-stack")
    env = world_environment(azurite_service, cosmos_service, root / "ledger.pem", f"sec{uuid.uuid4().hex[:8]}")
    port, code = free_port(), secrets.token_urlsafe(24)
    base = f"http://127.0.0.1:{port}/api"
    env |= {
        **security_simulator.graph_env(),
        "VERBATIM_ENVIRONMENT": "local",
        "POLICY_SIMULATOR_URL": security_simulator.http_url,
        "DURABLE_TASK_HUB_NAME": f"sec{uuid.uuid4().hex[:8]}",
        # The fuzz run writes reports (POST /v1/admin/reports/completeness): into this stack's own container,
        # not the one other worlds of the session list.
        "REPORTS_CONTAINER": f"reports-{env['COSMOS_DATABASE']}".lower(),
        # Graph's webhooks are this host's (as in the devstack), so the admin operations work end to end.
        FUNCTION_KEY_SETTING: code,
        "GRAPH_NOTIFICATION_URL": f"{base}/graph/notifications?code={code}",
        "GRAPH_LIFECYCLE_URL": f"{base}/graph/lifecycle?code={code}",
    }
    # The environment is this stack's only while its settings are read: the Settings object is kept, and the
    # other test modules of the session see theirs.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = reload_settings()
        provision_cosmos(settings)
        provision_storage(settings)
        with contextlib.suppress(ResourceExistsError):  # provisioning knows the default name only
            clients.blob_service(settings.runtime_storage_connection).create_container(settings.reports_container)
        world = build_world(settings, synthetic=2)
    reload_settings()
    launcher = HostLauncher(azurite_service, root)
    try:
        host = launcher.start(REPO_ROOT, env=env, port=port)
        yield Stack(world, host, security_simulator, env)
    finally:
        launcher.stop_all()


__all__ = ["ADMIN", "AUDITOR", "OFFICER", "REASON", "Path", "Stack"]
