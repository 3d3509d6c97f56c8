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

import asyncio
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


def recording_bot(bot: Recorder, *, answer_after: float = 0.0, status_after: float = 0.0) -> dict[str, tuple[int, int]]:
    """The bot answers its invitation and reports `recording` once the call is established, as a compliance
    recorder must before it keeps any media (Graph `call: updateRecordingStatus`); per call it notes the reply's
    status and how many frames it had received before it sent the report (frames it could not have kept)."""

    async def decide(body: dict[str, Any]) -> None:
        call_id = body["value"][0]["resourceData"]["id"]
        await asyncio.sleep(answer_after)
        if await bot.answer(call_id) != 202:
            return
        await wait_for(lambda: "established" in bot.callback_states(call_id), what="the established notification")
        await asyncio.sleep(status_after)
        capture = bot.capture_for(call_id)
        before = len(capture.frames) if capture is not None else 0
        status, _, _ = await bot.graph(
            "POST",
            f"/v1.0/communications/calls/{call_id}/updateRecordingStatus",
            json={"clientContext": call_id, "status": "recording"},
        )
        statuses[call_id] = (status, before)

    statuses: dict[str, tuple[int, int]] = {}
    bot.decide = decide
    return statuses


@pytest.mark.parametrize(("answer_after", "status_after"), [(0.3, 0.0), (0.0, 0.3)])
def test_a_fast_call_waits_for_a_recorder_still_answering_or_reporting_its_status_before_its_media_runs_on(
    run: Run, answer_after: float, status_after: float
) -> None:
    """A `fast` call compresses seconds of media into milliseconds of wall time; a recorder's answer and its
    recording status take milliseconds of wall time too. The timeline waits for a recorder leg that is still
    starting (an invitation delivered and not yet answered, an answered leg that has not reported its recording
    status), so that, as at real-time pace, the call does not end before the second recorder of
    ConcurrentInvitationCount 2 could record it (tests/recorder/test_instances.py failed this way: the second leg's
    `updateRecordingStatus` got 404 because the 3-s call had ended 20 ms after its answer)."""

    async def body(sim: SimClient) -> None:
        await sim.configure(fastPaceStartWaitSeconds=2.0)  # the default (tests/simulator/conftest.py lowers it)
        await invite_twice(sim)
        async with Recorder(sim, register=False) as prompt, Recorder(sim, register=False) as slow:
            recording_bot(prompt)
            statuses = recording_bot(slow, answer_after=answer_after, status_after=status_after)
            await behind_load_balancer(sim, RECORDER_INSTANCE, [prompt, slow])
            call = await sim.place(p2p(TOM, UNA))
            state = await sim.wait_call(call["id"], ended)
            assert state["outcome"] == "ended"
            assert [r["recordingStatus"] for r in state["recorders"]] == ["recording", "recording"], state["recorders"]
            (leg,) = [r for r in state["recorders"] if r["backend"] == f"{slow.url}/api/calling"]
            status, before = statuses[leg["callId"]]
            assert status == 200
            capture = slow.capture_for(leg["callId"])
            assert capture is not None
            await wait_for(lambda: capture.closed, what="the end of the slow recorder's media")
            # the call's media waited for its report: every frame of the 3-s call (150) came after it
            assert before == 0 and len(capture.frames) == 150, (before, len(capture.frames))

    run(body)
