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
from collections.abc import Callable

import pytest

from tests.callrecords.conftest import Simulator
from tests.chat.test_host import TARA, TOM, _record_tom, chat_subscription, post, versions
from tests.funchost.conftest import RunningHost, wait_for
from verbatim.platform.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_messages_posted_while_the_host_was_down_are_backfilled_once_at_start_up(
    chat_host: Callable[[], RunningHost], sim_env: Settings, simulator: Simulator
) -> None:
    first = chat_host()
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

    chat_host()
    stored = wait_for(lambda: len(versions(sim_env, chat["id"])) >= 4 and versions(sim_env, chat["id"]), 120)
    time.sleep(3)  # anything arriving twice would arrive now
    stored = versions(sim_env, chat["id"])
    counts = Counter(v["messageId"] for v in stored)
    assert len(stored) == 4 and all(counts[m["id"]] == 1 for m in lost), counts
    assert {v["source"] for v in stored if v["messageId"] in {m["id"] for m in lost}} == {"export"}
    simulator.clear_faults()
