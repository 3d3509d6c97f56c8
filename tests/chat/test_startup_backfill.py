"""Messages posted while the Function App is down are captured when it starts again (issue 20: back-fill "at
start-up"): the real `function_app.py` in the local Functions host, the simulator, Azurite, the Cosmos emulator.

The host runs, captures a message, and stops. While it is down the simulator drops every notification of the
subscription (as Graph does once its retries are spent; nothing is redelivered and no `missed` is sent), and three
messages are posted. The host starts again on the same port and state: its start-up back-fill reads the Teams
export API from the watermark and stores each of the three exactly once, from the export API.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.chat_certificate import ensure_chat_certificate
from devstack.funchost.state import load_or_create_keys
from devstack.processes import free_port
from tests.callrecords.conftest import Simulator
from tests.callrecords.helpers import drain
from tests.chat.test_host import REPO, TARA, TOM, _record_tom, chat_subscription, post, versions
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost, wait_for
from verbatim.platform import layout
from verbatim.platform.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def restartable_host(
    sim_env: Settings, simulator: Simulator, azurite_service: Azurite, tmp_path: Path
) -> Iterator[Callable[[], RunningHost]]:
    """Starts the host, the same way (port, state, keys, task hub) every time it is called."""
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
        "DURABLE_TASK_HUB_NAME": f"cs{port}",
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


def test_messages_posted_while_the_host_was_down_are_backfilled_once_at_start_up(
    restartable_host: Callable[[], RunningHost], sim_env: Settings, simulator: Simulator
) -> None:
    first = restartable_host()
    _record_tom(sim_env)
    subscription = wait_for(lambda: chat_subscription(simulator, first), 60)
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    post(simulator, chat["id"], TOM, "before the outage")
    wait_for(lambda: len(versions(sim_env, chat["id"])) == 1, 60)
    # Everything the subscription would deliver from now on is lost (no redelivery, no `missed`).
    simulator.fault(kind="dropDeliveries", subscriptionId=subscription["id"], durationSeconds=600, sendMissed=False)
    first.stop()

    lost = [post(simulator, chat["id"], TARA if n % 2 else TOM, f"while down {n}") for n in range(3)]
    dropped = simulator.sim("GET", "/sim/deliveries", params={"outcome": "dropped"}).json()["value"]
    assert len(dropped) == 3
    assert len(versions(sim_env, chat["id"])) == 1

    restartable_host()
    stored = wait_for(lambda: len(versions(sim_env, chat["id"])) >= 4 and versions(sim_env, chat["id"]), 120)
    time.sleep(3)  # anything arriving twice would arrive now
    stored = versions(sim_env, chat["id"])
    counts = Counter(v["messageId"] for v in stored)
    assert len(stored) == 4 and all(counts[m["id"]] == 1 for m in lost), counts
    assert {v["source"] for v in stored if v["messageId"] in {m["id"] for m in lost}} == {"export"}
    simulator.clear_faults()
