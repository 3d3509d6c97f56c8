"""Fixtures of the chat tests: the Teams/Graph simulator (a real process) shared with the call-record tests, the
retention tests' world (data-subject requests reach chat), and the local Functions host running the real
`function_app.py` with chat capture on; a module's own `world` fixture takes precedence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.chat_certificate import ensure_chat_certificate
from devstack.funchost.state import load_or_create_keys
from devstack.processes import free_port
from tests.callrecords.conftest import Simulator, sim_env, simulator
from tests.callrecords.helpers import drain
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from tests.retention.conftest import provider, retention_env, world
from verbatim.platform import layout
from verbatim.platform.settings import Settings

__all__ = ["chat_host", "provider", "retention_env", "sim_env", "simulator", "world"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def chat_host(
    sim_env: Settings, simulator: Simulator, azurite_service: Azurite, tmp_path: Path
) -> Iterator[Callable[[], RunningHost]]:
    """Starts the host with chat capture on (our encryption certificate, the simulator's validation keys), the same
    way (port, state, keys, task hub) every time it is called, so a test can stop it and start it again."""
    simulator.sim("POST", "/sim/reset")
    port = free_port()
    state_dir = tmp_path / "host"
    base = f"http://127.0.0.1:{port}"
    pem = ensure_chat_certificate(tmp_path / "chat.pem")
    env = {
        "AzureWebJobsStorage": azurite_service.connection_string,
        "RECORDINGS_STORAGE": azurite_service.connection_string,
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        "COSMOS_ENDPOINT": str(sim_env.cosmos_endpoint),
        "COSMOS_KEY": sim_env.cosmos_key.get_secret_value() if sim_env.cosmos_key else "",
        "COSMOS_CA_CERT": str(sim_env.cosmos_ca_cert),
        "COSMOS_DATABASE": sim_env.cosmos_database,
        "LEDGER_CONTAINER": sim_env.ledger_container,
        "LEDGER_ANCHOR_CONTAINER": sim_env.ledger_anchor_container,
        **simulator.graph_env(),
        "CHAT_CAPTURE_ENABLED": "true",
        "CHAT_ENCRYPTION_PEM_FILE": str(pem),
        "CHAT_VALIDATION_JWKS_URL": f"{simulator.http_url}/common/discovery/v2.0/keys",
        "VERBATIM_LOG_LEVEL": "INFO",
        "DURABLE_TASK_HUB_NAME": f"ch{port}",
    }
    keys = load_or_create_keys(state_dir, env)
    env["CHAT_NOTIFICATION_URL"] = f"{base}/api/chat/notifications?code={keys.default_function_key}"
    env["CHAT_LIFECYCLE_URL"] = f"{base}/api/chat/lifecycle?code={keys.default_function_key}"
    for queue in (layout.CHAT_MESSAGES_QUEUE, layout.CHAT_BACKFILL_QUEUE, layout.CHAT_LIFECYCLE_QUEUE):
        drain(sim_env, queue)
    launcher = HostLauncher(azurite_service, tmp_path)

    def start() -> RunningHost:
        return launcher.start(REPO, env=env, state_dir=state_dir, port=port)

    try:
        yield start
    finally:
        launcher.stop_all()
