"""Issue 21, done-when 1: two recorder instances behind the simulated load balancer (`verbatim-dev up
--recorders 2`), the strict policy's application invited twice (`ConcurrentInvitationCount 2`,
office-docs-powershell New-CsTeamsComplianceRecordingApplication.md: "at least one remains ⇒ the app is
present"), calls flowing, and one instance SIGKILLed mid-call (by the PID of the process this test started):

- every call goes on (the other invitation keeps the application present under the strict policy);
- each policy user's verdict is `recorded` with coverage ≥ 99.5 %, judged on the union of the two recordings;
- the killed instance's staged blocks are salvaged and sealed as evidence (interrupted), beside the survivor's;
- the lifecycle paired the two recordings: one pair document, both members sealed, the union attributed to the
  instance whose evidence holds each stretch, the pair manifest sealed into each member's folder;
- every sealed recording verifies (`verbatim verify`), the pair manifest with it.

Runs in `make test` (3 calls of 20 s; the killed instance's recordings are salvaged after the lifecycle's silence
threshold, about 40 s after the kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from devstack.demo import AUDITOR, CORA, TOM, CallResult, DemoStack, Scenario, wait_until
from devstack.emulators import REPO_ROOT
from devstack.stack import Component, StackConfig, StackPorts, app_environment, running
from verbatim.contracts.lifecycle import RecordingPair
from verbatim.lifecycle.pairs import CosmosPairStore, PairKey
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CALLS = 3
CALL_SECONDS = 20
KILL_AFTER = 7.0
GOAL = 0.995  # the coverage goal for the verdict


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("paired") / "state", ports=StackPorts.free(recorders=2), recorders=2
    )
    with running(config, echo=lambda _: None) as components:
        demo_stack = DemoStack(config, components, echo=lambda _: None)
        try:
            users = [u["id"] for u in demo_stack.sim("GET", "/sim/tenant")["users"] if u["userPrincipalName"] == TOM]
            demo_stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": 2.0})
            demo_stack.fire("audit_policy_coverage")
            wait_until(lambda: demo_stack.policies_observed(users), 60, "the policy coverage audit")
            policy = demo_stack.sim("GET", "/sim/compliancePolicies/StrictRecording")
            doubled = [{**app, "concurrentInvitationCount": 2} for app in policy["applications"]]
            demo_stack.sim("PUT", "/sim/compliancePolicies/StrictRecording", {**policy, "applications": doubled})
            yield demo_stack
        finally:
            demo_stack.close()


def trader_call(index: int) -> Scenario:
    return Scenario(
        f"paired-{index}",
        "trader call recorded twice, one instance killed",
        {
            "type": "peerToPeer",
            "subject": f"Trader call {index}, recorded by two instances",
            "participants": [{"key": "tom", "user": TOM}, {"key": "cora", "user": CORA}],
            "dialog": [
                {"speaker": "tom", "text": "Buying three hundred gilts at market, reference bravo."},
                {"speaker": "cora", "text": "Noted, please confirm the settlement date."},
            ],
            "durationSeconds": CALL_SECONDS,
        },
        (),
    )


def kill(stack: DemoStack, name: str) -> None:
    """SIGKILL the component's process group (it was started by this test's stack): nothing gets to commit."""
    component: Component = next(c for c in stack.components if c.name == name)
    process = component.process.process
    assert process is not None and process.poll() is None, f"{name} is not running"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def verify(stack: DemoStack, recording_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "verify", recording_id, "--json"],
        env={**os.environ, **app_environment(stack.config)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def pair_store(stack: DemoStack) -> CosmosPairStore:
    settings = Settings.model_validate(app_environment(stack.config))
    return CosmosPairStore(clients.cosmos_database(settings).get_container_client(layout.RECORDING_PAIRS))


@pytest.fixture(scope="module")
def calls(stack: DemoStack) -> list[CallResult]:
    placed = []
    for index in range(CALLS):  # calls flowing: each placed while the earlier ones go on
        placed.append(stack.place(trader_call(index)))
        time.sleep(1.0)
    time.sleep(KILL_AFTER)
    kill(stack, "recorder-2")
    stack.wait_ended(placed, timeout=CALL_SECONDS + 60)

    def settled() -> bool:
        for call in placed:
            stack.verdicts(call)
            # This call's own legs (a verdict also lists the user's recordings that overlap the call in time:
            # the transfer rule of verbatim.reconciliation.evaluate.recordings_for; these calls overlap).
            call.recordings = [r for r in stack.recordings(call) if r.get("callChainId") == call.call_id]
        return all(
            (v := call.verdict_of(TOM)) is not None
            and v["verdict"] != "pending"
            and len(call.recordings) == 2
            and all(r.get("status") == "sealed" for r in call.recordings)
            for call in placed
        )

    # The killed instance's recordings are sealed once the lifecycle judged it silent (its silence threshold).
    wait_until(settled, 300, "both recordings of every call sealed and a final verdict", 2.0)
    return placed


def test_every_call_goes_on_while_one_of_its_two_recorders_is_killed(stack: DemoStack, calls: list[CallResult]) -> None:
    for call in calls:
        state = stack.call_state(call)
        assert state["outcome"] == "ended", state["outcome"]
        legs = [leg for leg in state["recorders"] if leg["observedParticipant"] == "tom"]
        assert len(legs) == 2
        assert len({leg["backend"] for leg in legs}) == 2  # the two invitations on different instances
        # every notification of a leg went to the instance that answered it (its callbackUri) while it lived
        for leg in legs:
            assert leg["callbackUri"].startswith(leg["backend"].removesuffix("/api/calling"))


def test_each_verdict_is_recorded_on_the_union_of_the_two_recordings(calls: list[CallResult]) -> None:
    for call in calls:
        verdict = call.verdict_of(TOM)
        assert verdict is not None
        assert verdict["verdict"] == "recorded", verdict
        assert verdict["coverage"] >= GOAL, verdict
        assert {r["id"] for r in call.recordings} <= set(verdict["recordingIds"])


def test_the_killed_instances_staged_blocks_are_salvaged_and_sealed_beside_the_survivors(
    stack: DemoStack, calls: list[CallResult]
) -> None:
    for call in calls:
        details = [stack.api(f"/recordings/{r['id']}", AUDITOR) for r in call.recordings]
        by_instance = {d["recorderInstance"]: d["recording"] for d in details}
        assert set(by_instance) == {"recorder-1", "recorder-2"}, [d.get("recorderInstance") for d in details]
        killed, survivor = by_instance["recorder-2"], by_instance["recorder-1"]
        assert killed["interrupted"] is True and survivor["interrupted"] is False
        assert 2.0 < killed["durationSeconds"] < survivor["durationSeconds"], (killed, survivor)
        for recording in (killed, survivor):
            checked = verify(stack, recording["id"])
            assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-1000:]
            assert "paired with" in checked.stdout, checked.stdout[-3000:]


def test_the_lifecycle_paired_the_two_recordings_and_attributed_the_union_to_the_instances(
    stack: DemoStack, calls: list[CallResult]
) -> None:
    store = pair_store(stack)
    tenant = stack.sim("GET", "/sim/tenant")
    tom = next(u for u in tenant["users"] if u["userPrincipalName"] == TOM)
    for call in calls:
        recording = call.recordings[0]
        key = PairKey(recording.get("tenantId"), call.call_id, tom["id"], "StrictRecording")
        pair = store.get(key.id)
        assert pair is not None, (key, json.dumps(recording)[:500])
        assert isinstance(pair, RecordingPair)
        assert pair.complete and {m.recording_id for m in pair.members} == {r["id"] for r in call.recordings}
        assert {m.recorder_instance for m in pair.members} == {"recorder-1", "recorder-2"}
        # the union is whole: consecutive stretches, each inside its member's sealed spans
        spans = {m.recording_id: m.spans for m in pair.members}
        for before, after in zip(pair.coverage, pair.coverage[1:], strict=False):
            assert before.end == after.start
        for interval in pair.coverage:
            assert any(s.start <= interval.start and s.end >= interval.end for s in spans[interval.recording_id])
        survivor = max(pair.members, key=lambda m: sum((s.end - s.start).total_seconds() for s in m.spans))
        assert pair.union_seconds >= sum((s.end - s.start).total_seconds() for s in survivor.spans) - 0.001
        assert sorted(ref.recording_id for ref in pair.manifests) == sorted(m.recording_id for m in pair.members)
        # the pair's union alone covers the goal of the user's presence
        presence = call.verdict_of(TOM)["presence"]  # type: ignore[index]
        begin, end = datetime.fromisoformat(presence["start"]), datetime.fromisoformat(presence["end"])
        held = sum(max(0.0, (min(i.end, end) - max(i.start, begin)).total_seconds()) for i in pair.coverage)
        assert held / (end - begin).total_seconds() >= GOAL, (held, presence)
