"""Several recorder instances behind a load balancer: only the incoming-call notification is load-balanced, the
answer's callbackUri pins the call's later notifications to the instance that answered, the invitations of
ConcurrentInvitationCount 2 land on different instances, a draining (probe 503) instance gets no invitation, and
nothing re-routes a call's notifications when its instance is gone.

Sources: Graph `call: answer` — callbackUri, "allows bots to provide a specific callback URI for the current call
to receive later notifications" (learn.microsoft.com/graph/api/call-answer); Microsoft's PolicyRecordingBot sample
load-balances `/api/calling` (public 443 → 9441) and answers with a per-instance
`https://{cname}:{instancePublicPort}/api/calling/notification` (microsoft-graph-comms-samples
Samples/V1.0Samples/LocalMediaSamples/PolicyRecordingBot, ServiceDefinition.csdef and AzureConfiguration.cs);
"Real-time media calls stay where they are created" and no recovery of app-hosted media on another instance
(msteams-platform requirements-considerations-application-hosted-media-bots.md); ConcurrentInvitationCount /
pairing semantics (office-docs-powershell New-CsTeamsComplianceRecordingApplication.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.simulator.harness import RECORDER_INSTANCE, TOM, UNA, Recorder, SimClient, behind_load_balancer, wait_for

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]


def p2p(caller: str, callee: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "peerToPeer",
        "durationSeconds": 3,
        "mediaPace": "fast",
        "participants": [{"key": "a", "user": caller}, {"key": "b", "user": callee}],
        **extra,
    }


def ended(state: dict[str, Any]) -> bool:
    return bool(state["state"] == "ended")


def callback_call_ids(bot: Recorder) -> set[str]:
    return {item["resourceUrl"].split("/")[3] for body in bot.callbacks for item in body["value"]}


async def invite_twice(sim: SimClient) -> None:
    policy = await sim.ok("GET", "/sim/compliancePolicies/StrictRecording")
    policy["applications"][0]["concurrentInvitationCount"] = 2
    await sim.ok("PUT", "/sim/compliancePolicies/StrictRecording", json=policy)


def test_the_two_invitations_land_on_different_instances_and_each_call_stays_with_the_instance_that_answered(
    run: Run,
) -> None:
    async def body(sim: SimClient) -> None:
        await invite_twice(sim)
        async with Recorder(sim, register=False) as first, Recorder(sim, register=False) as second:
            await behind_load_balancer(sim, RECORDER_INSTANCE, [first, second])
            call = await sim.place(p2p(TOM, UNA))
            state = await sim.wait_call(call["id"], ended)
            assert state["outcome"] == "ended"
            assert len(first.incoming) == 1 and len(second.incoming) == 1  # one invitation each
            assert sorted(r["state"] for r in state["recorders"]) == ["terminated", "terminated"]
            backends = {r["backend"] for r in state["recorders"]}
            assert backends == {f"{first.url}/api/calling", f"{second.url}/api/calling"}
            for bot, other in ((first, second), (second, first)):
                mine = set(bot.call_ids())
                # every later notification (established, roster, terminated) reached the instance that answered
                assert callback_call_ids(bot) == mine and not callback_call_ids(bot) & set(other.call_ids())
                assert bot.capture_for(next(iter(mine))) is not None  # and its media went there too
            for recorder in state["recorders"]:
                later = [n for n in recorder["notifications"] if n["kind"] != "incoming"]
                assert later and all(n["url"] == recorder["callbackUri"] and n["delivered"] for n in later)

    run(body)


def test_an_instance_whose_probe_fails_gets_no_invitation_and_no_call_is_refused(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim, register=False) as healthy, Recorder(sim, register=False, healthy=False) as draining:
            await behind_load_balancer(sim, RECORDER_INSTANCE, [healthy, draining])
            calls = [await sim.place(p2p(TOM, UNA)) for _ in range(4)]
            states = [await sim.wait_call(call["id"], ended) for call in calls]
            assert [s["outcome"] for s in states] == ["ended"] * 4
            assert len(healthy.incoming) == 4 and draining.incoming == []
            draining.healthy = True  # back in rotation: round robin reaches it again
            more = [await sim.place(p2p(TOM, UNA)) for _ in range(2)]
            for call in more:
                await sim.wait_call(call["id"], ended)
            assert len(draining.incoming) >= 1

    run(body)


def test_no_healthy_instance_fails_the_invitation_and_blocks_the_strict_call(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim, register=False, healthy=False) as a, Recorder(sim, register=False, healthy=False) as b:
            await behind_load_balancer(sim, RECORDER_INSTANCE, [a, b])
            call = await sim.place(p2p(TOM, UNA))
            state = await sim.wait_call(call["id"], ended)
            assert state["outcome"] == "blockedByPolicy"
            (recorder,) = state["recorders"]
            assert recorder["state"] == "failed" and recorder["backend"] is None
            assert recorder["notifications"][0]["error"] == "no healthy backend"
            assert a.incoming == [] and b.incoming == []

    run(body)


def test_when_the_instance_holding_a_call_is_gone_its_notifications_are_not_rerouted(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        async with Recorder(sim, register=False) as first, Recorder(sim, register=False) as second:
            await behind_load_balancer(sim, RECORDER_INSTANCE, [first, second])
            call = await sim.place(p2p(TOM, UNA, durationSeconds=60, mediaPace="realtime"))
            await wait_for(lambda: bool(first.incoming or second.incoming), what="the invitation")
            holder, survivor = (first, second) if first.incoming else (second, first)
            await sim.wait_call(call["id"], lambda s: s["recorders"][0]["state"] == "established")
            await wait_for(lambda: bool(holder.callbacks), what="the established notification")
            leg_id = holder.call_ids()[0]
            await wait_for(lambda: holder.capture_for(leg_id) is not None, what="the media connection")
            await holder.stop()  # the instance dies: its media socket and its callback port are gone
            state = await sim.wait_call(call["id"], lambda s: s["recorders"][0]["state"] == "terminated", within=30)
            (recorder,) = state["recorders"]
            assert recorder["resultInfo"]["code"] == 410  # media connectivity failure: the leg is gone with it
            final = await sim.wait_call(
                call["id"],
                lambda s: any(n["kind"] == "terminated" for n in s["recorders"][0]["notifications"]),
                within=30,
            )
            after = [n for n in final["recorders"][0]["notifications"] if n["kind"] in ("terminating", "terminated")]
            # addressed to the dead instance's callbackUri only (delivered or not, depending on how far its
            # shutdown got when they were sent), never to the other instance
            assert after and all(n["url"] == recorder["callbackUri"] for n in after)
            assert survivor.incoming == [] and survivor.callbacks == []  # nothing re-routed to the other instance
            # a new call goes to the instance that is still there
            second_call = await sim.place(p2p(TOM, UNA))
            assert (await sim.wait_call(second_call["id"], ended))["outcome"] == "ended"
            assert len(survivor.incoming) == 1

    run(body)
