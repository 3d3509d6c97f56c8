"""The real Function App under the local Functions host, pointed at Azurite, Cosmos and a module's simulator,
and what the end-to-end call-record tests read back from it."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.funchost.state import load_or_create_keys
from devstack.processes import free_port
from tests.callrecords.conftest import FUNCTIONS_APP_ID, FUNCTIONS_APP_SECRET, Simulator
from tests.callrecords.fake_graph import call_record
from tests.callrecords.helpers import cosmos_items, drain
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from verbatim.platform.settings import Settings
from verbatim.platform.times import format_datetime, utcnow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(name="host")
def running_host(
    sim_env: Settings, simulator: Simulator, azurite_service: Azurite, tmp_path: Path
) -> Iterator[tuple[RunningHost, Settings]]:
    port = free_port()
    state_dir = tmp_path / "host"
    base = f"http://127.0.0.1:{port}"
    env = {
        "AzureWebJobsStorage": azurite_service.connection_string,
        "RECORDINGS_STORAGE": azurite_service.connection_string,
        "COSMOS_ENDPOINT": str(sim_env.cosmos_endpoint),
        "COSMOS_KEY": sim_env.cosmos_key.get_secret_value() if sim_env.cosmos_key else "",
        "COSMOS_CA_CERT": str(sim_env.cosmos_ca_cert),
        "COSMOS_DATABASE": sim_env.cosmos_database,
        "LEDGER_CONTAINER": sim_env.ledger_container,
        "LEDGER_ANCHOR_CONTAINER": sim_env.ledger_anchor_container,
        **simulator.graph_env(),
        "VERBATIM_LOG_LEVEL": "WARNING",
        "DURABLE_TASK_HUB_NAME": f"cr{port}",
    }
    keys = load_or_create_keys(state_dir, env)
    env["GRAPH_NOTIFICATION_URL"] = f"{base}/api/graph/notifications?code={keys.default_function_key}"
    env["GRAPH_LIFECYCLE_URL"] = f"{base}/api/graph/lifecycle?code={keys.default_function_key}"
    for queue in ("callrecord-notifications", "callrecord-notifications-poison", "reconciliation-requests"):
        drain(sim_env, queue)
    for subscription in subscriptions(simulator):  # an earlier test's, pointing at a host that is gone
        gone = httpx.delete(
            f"{simulator.http_url}/v1.0/subscriptions/{subscription['id']}", headers=app_auth(simulator), timeout=10
        )
        assert gone.status_code == 204, gone.text
    launcher = HostLauncher(azurite_service, tmp_path)
    running = launcher.start(REPO, env=env, state_dir=state_dir, port=port)
    try:
        yield running, sim_env
    finally:
        launcher.stop_all()


def wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def subscriptions(simulator: Simulator, host: RunningHost | None = None) -> list[dict[str, Any]]:
    """The simulator's subscriptions (those notifying `host`, when given)."""
    found = list(simulator.sim("GET", "/sim/subscriptions").json()["value"])
    if host is not None:
        found = [s for s in found if s["notificationUrl"].startswith(host.base_url)]
    return found


def stored_versions(settings: Settings) -> dict[str, int]:
    return {d["id"]: d["version"] for d in cosmos_items(settings, "calls", "SELECT c.id, c.version FROM c")}


def recent_record(record_id: str, version: int) -> dict[str, Any]:
    raw = call_record(record_id, version)
    start = utcnow() - timedelta(hours=1)
    raw["startDateTime"] = format_datetime(start)
    raw["endDateTime"] = format_datetime(start + timedelta(minutes=5))
    return raw


def app_auth(simulator: Simulator) -> dict[str, str]:
    token = httpx.post(
        f"{simulator.https_url}/{simulator.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": FUNCTIONS_APP_ID,
            "client_secret": FUNCTIONS_APP_SECRET,
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=ssl.create_default_context(cafile=simulator.ca_file),
        timeout=10,
    ).json()["access_token"]
    return {"authorization": f"Bearer {token}"}
