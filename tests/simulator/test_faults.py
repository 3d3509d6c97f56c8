"""Faults on demand: throttling and server errors on Graph paths, duplicate and out-of-order
notifications, delayed call records, recorder invitation failures and out-of-order call states."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from devstack.simulator.odata import format_datetime, parse_datetime
from tests.simulator.harness import TOM, UNA, Recorder, SimClient, Subscriber, wait_for

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]
P2P = {
    "type": "peerToPeer",
    "mediaPace": "fast",
    "durationSeconds": 1,
    "participants": [{"key": "tom", "user": TOM}, {"key": "una", "user": UNA}],
}


def test_graph_paths_answer_429_with_retry_after_and_5xx_as_often_as_asked(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.ok(
            "POST",
            "/sim/faults",
            expect=201,
            json={
                "kind": "http",
                "path": "/v1.0/communications/callRecords*",
                "status": 429,
                "retryAfterSeconds": 7,
                "count": 2,
            },
        )
        await sim.ok(
            "POST", "/sim/faults", expect=201, json={"kind": "http", "path": "/v1.0/users", "status": 503, "count": 1}
        )
        results = [await sim.graph("GET", "/v1.0/communications/callRecords") for _ in range(3)]
        assert [r[0] for r in results] == [429, 429, 200]
        assert results[0][2]["Retry-After"] == "7" and results[0][1]["error"]["code"] == "TooManyRequests"
        assert [(await sim.graph("GET", "/v1.0/users"))[0] for _ in range(2)] == [503, 200]
        await sim.ok(
            "POST", "/sim/faults", expect=201, json={"kind": "http", "path": "/v1.0/*", "status": 500, "rate": 0.5}
        )
        statuses = [(await sim.graph("GET", "/v1.0/users"))[0] for _ in range(40)]
        assert 5 < statuses.count(500) < 35 and set(statuses) == {200, 500}
        await sim.ok("DELETE", "/sim/faults", expect=204)
        assert (await sim.graph("GET", "/v1.0/users"))[0] == 200
        status, problem, _ = await sim.request("POST", "/sim/faults", json={"kind": "http", "status": 418})
        assert status == 400 and "status" in problem["detail"]

    run(body)


async def _subscribe(sim: SimClient, hook: Subscriber) -> None:
    now = parse_datetime((await sim.ok("GET", "/sim/clock"))["now"])
    await sim.ok(
        "POST",
        "/v1.0/subscriptions",
        token=await sim.token(),
        json={
            "changeType": "created,updated",
            "notificationUrl": hook.url,
            "resource": "/communications/callRecords",
            "expirationDateTime": format_datetime(now + timedelta(days=2)),
            "clientState": "s",
        },
    )


def test_duplicate_and_out_of_order_notifications(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Subscriber() as hook:
            await _subscribe(sim, hook)
            await sim.ok("POST", "/sim/faults", expect=201, json={"kind": "duplicateNotifications", "count": 1})
            await sim.ok("PUT", "/sim/callRecords/dup", json={"id": "dup", "version": 1})
            await wait_for(lambda: len(hook.items()) == 2, what="the notification and its duplicate")
            assert len(hook.received) == 2 and hook.items()[0] == hook.items()[1]
            await sim.ok(
                "POST", "/sim/faults", expect=201, json={"kind": "outOfOrderNotifications", "delaySeconds": 30}
            )
            await sim.ok("PUT", "/sim/callRecords/ooo", json={"id": "ooo", "version": 1})
            await sim.ok("PUT", "/sim/callRecords/ooo", json={"id": "ooo", "version": 2})
            await wait_for(lambda: len(hook.items()) == 3, what="version 2")
            await sim.advance(30)
            await wait_for(lambda: len(hook.items()) == 4, what="the held-back version 1")
            assert [i["changeType"] for i in hook.items()[2:]] == ["updated", "created"]  # v2 arrived first

    run(body)


def test_a_delayed_call_record_appears_hours_later(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.configure(callRecordDelaySeconds=5)
        await sim.ok("POST", "/sim/faults", expect=201, json={"kind": "callRecordDelay", "delaySeconds": 7200})
        async with Recorder(sim):
            call = await sim.place(P2P)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
        rid = state["conversations"][0]["callRecordId"]
        await sim.advance(hours=1, minutes=59)
        assert (await sim.graph("GET", f"/v1.0/communications/callRecords/{rid}"))[0] == 404
        await sim.advance(minutes=2)
        assert (await sim.graph("GET", f"/v1.0/communications/callRecords/{rid}"))[0] == 200

    run(body)


def test_recorder_invitation_failures_drop_or_fail_the_invitation(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim) as bot:
            await sim.ok("POST", "/sim/faults", expect=201, json={"kind": "recorderInvitation", "mode": "drop"})
            call = await sim.place(P2P)
            state = await sim.wait_call(call["id"], lambda s: s["recorders"] and s["recorders"][0]["notifications"])
            assert bot.incoming == [] and state["state"] == "setup"  # never delivered
            await sim.advance(5)
            state = await sim.call(call["id"])
            assert (state["outcome"], state["recorders"][0]["state"]) == ("blockedByPolicy", "timedOut")
            await sim.ok("POST", "/sim/faults", expect=201, json={"kind": "recorderInvitation", "mode": "fail"})
            call = await sim.place(P2P)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            assert (state["outcome"], state["recorders"][0]["state"]) == ("blockedByPolicy", "failed")

    run(body)


def test_established_can_arrive_before_establishing(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.ok("POST", "/sim/faults", expect=201, json={"kind": "establishedOutOfOrder"})
        async with Recorder(sim) as bot:
            call = await sim.place(P2P)
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
            leg = state["recorders"][0]["callId"]
            await wait_for(lambda: "terminated" in bot.callback_states(leg), what="terminated")
            assert bot.callback_states(leg)[:2] == ["established", "establishing"]

    run(body)
