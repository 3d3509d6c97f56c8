"""End to end through the local Functions host: the simulator notifies our webhook, the queue trigger
fetches from the simulator, Cosmos ends with each record once at its highest version.

The host runs the real `function_app.py`; its startup timer creates the callRecords subscription (the
simulator validates the webhook first). Faults injected in the simulator: duplicate and held-back
(out-of-order) notifications, 429 with Retry-After and 503 on the call-record reads.
"""

from __future__ import annotations

import os
import random
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
from tests.callrecords.conftest import Simulator
from tests.callrecords.fake_graph import call_record
from tests.callrecords.helpers import SECRET, cosmos_items, drain, queue_messages
from tests.conftest import Azurite
from tests.funchost.conftest import HostLauncher, RunningHost
from verbatim.platform.settings import Settings
from verbatim.platform.times import format_datetime, utcnow

REPO = Path(__file__).resolve().parents[2]
CALLS = int(os.environ.get("VERBATIM_E2E_CALLS", "1000"))


@pytest.fixture
def host(
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
            f"{simulator.http_url}/v1.0/subscriptions/{subscription['id']}", headers=_app_auth(simulator), timeout=10
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


@pytest.mark.timeout(1500)
def test_a_thousand_calls_arrive_through_notifications_once_each_at_their_highest_version(
    host: tuple[RunningHost, Settings], simulator: Simulator
) -> None:
    running, settings = host
    (subscription,) = wait_until(
        lambda: subscriptions(simulator, running), 30, "the startup timer to create the subscription"
    )
    assert subscription["resource"].lstrip("/") == "communications/callRecords"
    # Graph's slow-endpoint rule stays on, with a 30-second penalty instead of 10 minutes: on a loaded
    # 2-core machine a few webhook answers can pass 2.9 s, and the test must not wait 10 minutes for that.
    simulator.sim("PATCH", "/sim/config", json={"throttledDelayMinutes": 0.5})
    simulator.fault(kind="duplicateNotifications", count=max(1, CALLS // 10))
    simulator.fault(kind="outOfOrderNotifications", count=max(1, CALLS // 20), delaySeconds=3)
    simulator.fault(
        kind="http",
        path="/v1.0/communications/callRecords/*",
        status=429,
        retryAfterSeconds=1,
        count=max(1, CALLS // 20),
    )
    simulator.fault(kind="http", path="/v1.0/communications/callRecords/*", status=503, count=max(1, CALLS // 30))

    rng = random.Random(5)
    final: dict[str, int] = {}
    started = time.monotonic()
    for n in range(CALLS):
        record_id = f"e2e-{n:05d}"
        versions = rng.choice([1, 1, 1, 2, 3])
        for version in range(1, versions + 1):  # later versions arrive as `updated` notifications
            simulator.put_record(recent_record(record_id, version))
        final[record_id] = versions

    def progress() -> bool:
        stored = stored_versions(settings)
        done = sum(1 for k, v in final.items() if stored.get(k) == v)
        endpoints = simulator.sim("GET", "/sim/deliveries").json().get("endpoints")
        print(f"  {time.monotonic() - started:6.1f} s: {done}/{CALLS} at final version; endpoints {endpoints}")
        time.sleep(2)
        return stored == final

    wait_until(progress, 1200, f"{CALLS} records at their highest version")
    elapsed = time.monotonic() - started

    documents = cosmos_items(settings, "calls", "SELECT c.id, c.version, c.handedOffVersion FROM c")
    assert len(documents) == CALLS == len({d["id"] for d in documents})
    assert all(d["handedOffVersion"] == final[d["id"]] for d in documents)
    # handedOffVersion is set only after `callrecord.stored` was enqueued on `reconciliation-requests`
    # (whose consumer, reconciliation, runs in the same host and drains it).
    assert queue_messages(settings, "callrecord-notifications-poison") == []
    deliveries = simulator.sim("GET", "/sim/deliveries").json()
    print(
        f"\n{CALLS} calls ({sum(final.values())} versions) stored in {elapsed:.1f} s; "
        f"deliveries logged: {len(deliveries.get('value', []))}"
    )


def test_a_lapsed_subscription_is_healed_by_backfill_and_recreated(
    host: tuple[RunningHost, Settings], simulator: Simulator
) -> None:
    running, settings = host
    (subscription,) = wait_until(lambda: subscriptions(simulator, running), 30, "the startup subscription")
    # The subscription lapses (expired while nobody renewed it): Graph forgets it, notifications stop.
    gone = httpx.delete(
        f"{simulator.http_url}/v1.0/subscriptions/{subscription['id']}", timeout=10, headers=_app_auth(simulator)
    )
    assert gone.status_code == 204, gone.text
    assert subscriptions(simulator) == []
    missed = {f"lapsed-{n}": 1 for n in range(25)}
    for record_id in missed:
        simulator.put_record(recent_record(record_id, 1))
    time.sleep(3)
    assert not set(missed) & set(stored_versions(settings))  # nothing was notified

    admin = {"authorization": f"Bearer {simulator.user_token('Recorder.Admin')}"}
    backfill = httpx.post(f"{running.base_url}/api/v1/admin/callrecords/backfill", headers=admin, timeout=60)
    assert backfill.status_code == 200, backfill.text
    (result,) = backfill.json()["results"]
    # The simulator also holds an earlier test's records, which this test's fresh database lacks.
    assert result["enqueued"] >= 25 and result["listed"] >= result["enqueued"]

    wait_until(lambda: missed.items() <= stored_versions(settings).items(), 120, "back-filled records")
    ensured = httpx.post(f"{running.base_url}/api/v1/admin/callrecords/subscriptions", headers=admin, timeout=60)
    assert ensured.status_code == 200 and ensured.json()["results"][0]["action"] == "recreated"
    assert len(subscriptions(simulator, running)) == 1
    forbidden = httpx.post(
        f"{running.base_url}/api/v1/admin/callrecords/backfill",
        headers={"authorization": f"Bearer {simulator.user_token('Compliance.Auditor')}"},
        timeout=30,
    )
    assert forbidden.status_code == 403


def test_forged_notifications_through_the_host_are_refused_and_nothing_is_enqueued(
    host: tuple[RunningHost, Settings], simulator: Simulator
) -> None:
    running, settings = host
    key = running.function_key
    url = f"{running.base_url}/api/graph/notifications?code={key}"
    body = {
        "value": [
            {
                "subscriptionId": "x",
                "clientState": "forged",
                "changeType": "created",
                "resourceData": {"id": "evil"},
                "tenantId": simulator.tenant_id,
            }
        ]
    }
    assert httpx.post(url, json=body, timeout=10).status_code == 403
    assert httpx.post(url, content=b"{", headers={"content-type": "application/json"}, timeout=10).status_code == 400
    assert (
        httpx.post(
            url, content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}, timeout=10
        ).status_code
        == 413
    )
    assert httpx.post(f"{running.base_url}/api/graph/notifications", json=body, timeout=10).status_code == 401  # no key
    body["value"][0]["clientState"] = SECRET
    assert httpx.post(url, json=body, timeout=10).status_code == 202
    assert [m["callRecordId"] for m in queue_messages(settings, "callrecord-notifications")] in (["evil"], [])


def _app_auth(simulator: Simulator) -> dict[str, str]:
    from tests.callrecords.conftest import FUNCTIONS_APP_ID, FUNCTIONS_APP_SECRET

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
