"""A lapsed callRecords subscription healed end to end through the local Functions host: the admin back-fill
lists what Graph still holds, enqueues what is missing, and the subscription is recreated.

Its own module, so its module-scoped simulator holds only this test's records (next to the thousand-call test's
1,000 records, back-fill had to queue ~1,025 and the 25 this test waits for could miss its wait on a loaded machine).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from tests.callrecords.conftest import Simulator
from tests.callrecords.host import (  # noqa: F401 (running_host is the `host` fixture)
    app_auth,
    recent_record,
    running_host,
    stored_versions,
    subscriptions,
    wait_until,
)
from tests.funchost.conftest import RunningHost
from verbatim.platform.settings import Settings


def test_a_lapsed_subscription_is_healed_by_backfill_and_recreated(
    host: tuple[RunningHost, Settings], simulator: Simulator
) -> None:
    running, settings = host
    (subscription,) = wait_until(lambda: subscriptions(simulator, running), 30, "the startup subscription")
    # The subscription lapses (expired while nobody renewed it): Graph forgets it, notifications stop.
    lapsed_at = datetime.now(UTC)
    gone = httpx.delete(
        f"{simulator.http_url}/v1.0/subscriptions/{subscription['id']}", timeout=10, headers=app_auth(simulator)
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
    assert result["enqueued"] == 25 and result["listed"] == 25  # this module's simulator holds only these

    wait_until(lambda: missed.items() <= stored_versions(settings).items(), 120, "back-filled records")
    ensured = httpx.post(f"{running.base_url}/api/v1/admin/callrecords/subscriptions", headers=admin, timeout=60)
    assert ensured.status_code == 200, ensured.text
    (healed,) = subscriptions(simulator, running)
    assert healed["id"] != subscription["id"]
    # The explicit ensure recreates it, unless the host's own renewal timer (every :00 and :30) ran the same
    # ensure in between and recreated it first.
    action = ensured.json()["results"][0]["action"]
    assert action == "recreated" or (action == "unchanged" and _half_hour_passed(lapsed_at)), ensured.text
    forbidden = httpx.post(
        f"{running.base_url}/api/v1/admin/callrecords/backfill",
        headers={"authorization": f"Bearer {simulator.user_token('Compliance.Auditor')}"},
        timeout=30,
    )
    assert forbidden.status_code == 403


def _half_hour_passed(since: datetime) -> bool:
    """Whether a :00 or :30 minute boundary (the renewal timer's schedule) lies between `since` and now."""
    return (datetime.now(UTC) - since).total_seconds() >= 1800 or datetime.now(UTC).minute // 30 != since.minute // 30
