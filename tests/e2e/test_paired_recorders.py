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
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from devstack.demo import AUDITOR, CORA, TARA, TOM, UNA, CallResult, DemoStack, Scenario, wait_until
from devstack.emulators import REPO_ROOT
from devstack.stack import DEMO_TENANT, Component, StackConfig, StackPorts, app_environment, running
from devstack.testkit.audio import decode
from devstack.testkit.captures import RATE
from tests.lifecycle.test_access_copy import decode_to_16k
from verbatim.contracts.lifecycle import RecordingPair
from verbatim.evidence import names
from verbatim.lifecycle.pairs import CosmosPairStore, PairKey
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CALLS = 3
CALL_SECONDS = 20
KILL_AFTER = 7.0
GOAL = 0.995  # the coverage goal for the verdict


def two_n_tenant(path: Path) -> Path:
    """The demo tenant with the strict policy's application invited twice (`concurrentInvitationCount: 2`) and 8
    more traders in its group (for the meeting), written before the stack starts: the coverage audit runs when
    the Functions host starts and then at most every 5 minutes, and must see every policy user."""
    tenant = yaml.safe_load(DEMO_TENANT.read_text(encoding="utf-8"))
    domain = next(u for u in tenant["users"] if u["userPrincipalName"] == TOM)["userPrincipalName"].split("@")[1]
    for n, user_id in enumerate(more_traders()):
        tenant["users"].append(
            {"id": user_id, "userPrincipalName": f"trader{n}@{domain}", "displayName": f"Trader {n}"}
        )
    group = next(g for g in tenant["groups"] if g["id"] == TRADERS_GROUP)
    group["members"] += more_traders()
    strict = next(p for p in tenant["compliancePolicies"] if p["name"] == "StrictRecording")
    for application in strict["applications"]:
        application["concurrentInvitationCount"] = 2
    path.write_text(yaml.safe_dump(tenant, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    root = tmp_path_factory.mktemp("paired")
    config = StackConfig(
        state_dir=root / "state",
        ports=StackPorts.free(recorders=2),
        recorders=2,
        tenant_path=two_n_tenant(root / "tenant.yaml"),
    )
    with running(config, echo=lambda _: None) as components:
        demo_stack = DemoStack(config, components, echo=lambda _: None)
        try:
            tenant = demo_stack.sim("GET", "/sim/tenant")
            users = [u["id"] for u in tenant["users"] if u["userPrincipalName"] in (TOM, TARA)] + more_traders()
            demo_stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": 2.0})
            demo_stack.fire("audit_policy_coverage")
            wait_until(lambda: demo_stack.policies_observed(users), 60, "the policy coverage audit")
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
            # The recordings the verdict lists: only this call's own legs, though the three calls overlap in time
            # (verbatim.reconciliation.evaluate.recordings_for ties a recording to its call chain).
            call.recordings = stack.recordings(call)
        return all(
            (v := call.verdict_of(TOM)) is not None
            and v["verdict"] != "pending"
            and len(call.recordings) == 2
            and all(r.get("status") == "sealed" and r.get("callChainId") == call.call_id for r in call.recordings)
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
        assert {r["id"] for r in call.recordings} == set(verdict["recordingIds"])
        assert all(r["callChainId"] == call.call_id for r in call.recordings)


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


def test_the_pairs_access_copy_plays_the_union_where_the_killed_instances_own_copy_stops(
    stack: DemoStack, calls: list[CallResult]
) -> None:
    """Each member keeps its own access copy (the killed instance's stops where it was killed); the pair's access
    copy, sealed beside the pair manifest in both folders, plays the union: as long as the whole attributed
    coverage, each stretch its member's own evidence in its place (which member holds which stretch depends on
    which invitation was answered first: the pair manifest says)."""
    store = pair_store(stack)
    tom = next(u for u in stack.sim("GET", "/sim/tenant")["users"] if u["userPrincipalName"] == TOM)
    service = BlobServiceClient.from_connection_string(stack.config.ports.azurite.connection_string)
    recordings = service.get_container_client("recordings")
    for call in calls:
        key = PairKey(call.recordings[0].get("tenantId"), call.call_id, tom["id"], "StrictRecording")
        pair = store.get(key.id)
        assert pair is not None and pair.complete
        copies = {ref.access_copy_blob for ref in pair.manifests}
        assert len(copies) == 2 and None not in copies, pair.manifests
        data = {recordings.download_blob(str(name)).readall() for name in copies}
        assert len(data) == 1  # the same bytes in each member's folder
        (ogg,) = data
        audio = decode_to_16k(ogg)
        span = (pair.coverage[-1].end - pair.coverage[0].start).total_seconds()
        assert abs(len(audio) / RATE - span) < 0.05, (len(audio) / RATE, span)
        killed = min(pair.members, key=lambda m: sum((s.end - s.start).total_seconds() for s in m.spans))
        killed_seconds = sum((s.end - s.start).total_seconds() for s in killed.spans)
        assert span > killed_seconds + 5.0  # longer than the killed capture's own replay
        # Each stretch plays its member's own evidence, placed by its part's wall-clock start.
        origin = pair.coverage[0].start
        spoken = 0
        for interval in pair.coverage:
            owner = next(m for m in pair.members if m.recording_id == interval.recording_id)
            part = next(p for p in owner.spans if p.part == interval.part)
            evidence = decode(
                recordings.download_blob(names.sealed_track_name(owner.recording_id, part.part)).readall()
            )
            at = round((interval.start - origin).total_seconds() * RATE)
            offset = round((interval.start - part.start).total_seconds() * RATE)
            length = round(interval.seconds * RATE)
            ours = audio[at : at + length].astype(np.float64)
            theirs = evidence[offset : offset + length].astype(np.float64)
            n = min(len(ours), len(theirs))
            assert n >= length - RATE // 10, (interval, n, length)
            level = np.abs(theirs[:n]).mean()
            if level > 100:  # speech there (the lossy copy of the same samples, in the same place)
                spoken += 1
                assert np.corrcoef(ours[:n], theirs[:n])[0, 1] > 0.8, interval
            else:  # silence in that capture: silence in the copy
                assert np.abs(ours[:n]).mean() < 100, interval
        assert spoken >= 1


# --- issue 21, done-when 2: a meeting with 20 participants, 10 of them policy users, across both instances -----

TRADERS_GROUP = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a01"  # devstack/simulator/demo_tenant.yaml: the strict policy's
MORE_TRADERS = 8


@pytest.fixture(scope="module")
def meeting(stack: DemoStack, calls: list[CallResult]) -> tuple[CallResult, list[str]]:
    """A 12-s meeting: Tom, Tara and 8 more traders (all under the strict policy, each invited twice), Una, Cora
    and 8 guests. It runs after the SIGKILL test, so `recorder-2` is started again first (as the VM's service
    manager would)."""
    restart_recorder(stack, "recorder-2")
    traders = more_traders()
    upns = {u["id"]: u["userPrincipalName"] for u in stack.sim("GET", "/sim/tenant")["users"]}
    policy_users = [u for u in upns if upns[u] in (TOM, TARA)] + traders
    participants = [
        {"key": "tom", "user": TOM},
        {"key": "tara", "user": TARA},
        {"key": "una", "user": UNA},
        {"key": "cora", "user": CORA},
        *({"key": f"t{n}", "user": upns[user_id]} for n, user_id in enumerate(traders)),
        *({"key": f"g{n}", "guest": f"Guest {n}"} for n in range(8)),
    ]
    scenario = Scenario(
        "meeting-10",
        "meeting with 10 policy users",
        {
            "type": "meeting",
            "subject": "Desk meeting, ten traders",
            "organizer": "tom",
            "participants": participants,
            "dialog": [{"speaker": "tom", "text": "Good morning everyone, rates first, then credit."}],
            "durationSeconds": 12,
        },
        (),
    )
    result = stack.place(scenario)
    stack.wait_ended([result], timeout=90)

    def settled() -> bool:
        stack.verdicts(result)
        result.recordings = [r for r in stack.recordings(result) if r.get("callChainId") == result.call_id]
        final = [v for v in result.verdicts if v["verdict"] != "pending"]
        return len(final) == len(policy_users) and all(r.get("status") == "sealed" for r in result.recordings)

    wait_until(settled, 300, "a final verdict for every policy user of the meeting", 2.0)
    return result, [upns[u] for u in policy_users]


def more_traders() -> list[str]:
    return [f"{uuid.UUID(int=0x21_0000 + n)}" for n in range(MORE_TRADERS)]


def restart_recorder(stack: DemoStack, name: str) -> None:
    component: Component = next(c for c in stack.components if c.name == name)
    component.process.stop()
    component.process.start()
    component.process.wait_ready()


def test_every_policy_user_of_a_meeting_gets_a_verdict_from_their_own_pair_of_recordings(
    stack: DemoStack, meeting: tuple[CallResult, list[str]]
) -> None:
    result, policy_users = meeting
    verdicts = {v["userPrincipalName"]: v for v in result.verdicts}
    assert sorted(verdicts) == sorted(policy_users)
    assert all(v["verdict"] == "recorded" for v in verdicts.values()), {u: v["verdict"] for u, v in verdicts.items()}
    # One recording per policy user per invitation, no more: 10 users x 2 invitations, each user's two a pair.
    by_user: dict[str | None, list[dict[str, Any]]] = {}
    for recording in result.recordings:
        by_user.setdefault(recording["observedUser"]["userPrincipalName"], []).append(recording)
    assert sorted(by_user) == sorted(policy_users)
    assert all(len(own) == 2 for own in by_user.values()), {u: len(own) for u, own in by_user.items()}
    for upn, own in by_user.items():
        assert {r["id"] for r in own} <= set(verdicts[upn]["recordingIds"])  # judged on their own pair
    store = pair_store(stack)
    for own in by_user.values():
        first = own[0]
        key = PairKey(first.get("tenantId"), result.call_id, first["observedUser"]["id"], "StrictRecording")
        pair = store.get(key.id)
        assert pair is not None and pair.complete and {m.recording_id for m in pair.members} == {r["id"] for r in own}


def test_every_notification_of_the_meetings_bot_calls_reached_the_instance_holding_it(
    stack: DemoStack, meeting: tuple[CallResult, list[str]]
) -> None:
    result, _ = meeting
    state = stack.call_state(result)
    legs = [leg for leg in state["recorders"] if leg.get("observedParticipant")]
    assert len(legs) == 20
    backends = {leg["backend"] for leg in legs}
    assert len(backends) == 2  # across both instances
    for leg in legs:
        assert leg["callbackUri"].startswith(leg["backend"].removesuffix("/api/calling"))
        assert leg["notifications"] and all(n["delivered"] for n in leg["notifications"]), leg["notifications"]
    # the two invitations of each user on different instances
    pairs: dict[str, set[str]] = {}
    for leg in legs:
        pairs.setdefault(leg["observedParticipant"], set()).add(leg["backend"])
    assert all(len(b) == 2 for b in pairs.values()), pairs
