"""Recorder events that arrive after their recording was sealed (issue 23, chaos seed 3, defect 3).

A Functions host killed while it held a batch of `recorder-events` messages hides them for the queue's 10-minute
visibility timeout; meanwhile the recording's `recording.stopped`, received by the restarted host, seals it. When
the held `recording.started` came back it was folded into the record — the first time the record learnt the call
chain and the observed user — but the lifecycle had ended, so nobody told reconciliation: the call stayed
`missing (no_invitation)` (a false "not recorded" alert) though its recording was sealed. In memory: the lifecycle's
activities and a reconciler reading the same recording store, the `reconciliation-requests` messages handed over
as the queue trigger would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from devstack.testkit.captures import speech, stage_capture
from devstack.testkit.records import CLIENT, TRADER, call, party, snapshot
from tests.lifecycle.events import T0, joined, started, stopped
from tests.lifecycle.memory import memory_deps
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.reconciliation import Verdict
from verbatim.evidence.progress import InMemoryProgress
from verbatim.lifecycle import activities
from verbatim.lifecycle.records import InMemoryRecordingStore
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.platform.queues import InMemoryQueue
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.service import Reconciler, parse_request
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore

SECONDS = 10.0


class World:
    """The lifecycle's ports and a reconciler over the same recording records."""

    def __init__(self) -> None:
        self.store = InMemoryRecordingStore()
        self.queue = InMemoryQueue()
        self.now = datetime.now(UTC)
        self.deps = memory_deps(
            store=self.store, progress=InMemoryProgress(), reconciliation=self.queue, clock=lambda: self.now
        )
        self.calls = InMemoryCallRecordStore()
        self.verdicts = InMemoryVerdictStore()
        self.reconciler = Reconciler(
            calls=self.calls,
            snapshots=InMemoryPolicySnapshotStore([snapshot(TRADER), snapshot(CLIENT, records=False)]),
            recordings=InMemoryRecordingFinder(lambda: [record for _, record in self.store.docs.values()]),
            verdicts=self.verdicts,
            alerts=InMemoryAuditLog(),
            clock=lambda: T0 + timedelta(hours=1),
        )
        self.delivered = 0

    def deliver(self) -> int:
        """Hand every new `reconciliation-requests` message to the reconciler, as the queue trigger does."""
        bodies = self.queue.bodies()[self.delivered :]
        for body in bodies:
            self.reconciler.handle(parse_request(body))
        self.delivered += len(bodies)
        return len(bodies)

    def verdict(self, call_id: str) -> Verdict:
        return self.verdicts.verdicts[f"{call_id}:{TRADER}"].model_copy()

    def seal(self, recording_id: str) -> None:
        """What recording_lifecycle does once the record says the capture ended."""
        deps = self.deps
        assert activities.check_recording(deps, recording_id).state == "ended"
        finalised = activities.finalise_recording(deps, recording_id, 0)
        tasks = activities.plan_access_copy(deps, finalised)
        names = [activities.encode_access_chunk(deps, task) for task in tasks]
        access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, names, 0)
        summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access, 0)
        activities.index_recording(deps, summary, finalised.problems)


@pytest.fixture
def world() -> World:
    return World()


def test_a_recording_started_that_arrives_after_the_seal_puts_the_recording_into_its_calls_verdict(
    world: World,
) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    chain = f"chain-{recording_id}"  # the call chain `started` names (tests/lifecycle/events.py)
    staged = stage_capture(world.deps.staging, recording_id, speech(SECONDS), started_at=T0)
    # The call record comes first: nothing known of a recording yet, so the trader's call is not recorded.
    world.calls.save_if_newer(call(chain, [party(TRADER), party(CLIENT)], seconds=SECONDS), {"id": chain})
    world.reconciler.reconcile_call(chain)
    assert (world.verdict(chain).verdict, world.verdict(chain).reason) == ("missing", "no_invitation")

    # `recording.started` is held by the killed host; the restarted one receives `stopped` and the lifecycle,
    # having waited for `started` as long as a held message can stay hidden, seals what it knows.
    stop = stopped(recording_id, staged.manifest.tracks[0].sha256, SECONDS)
    assert activities.receive_event(world.deps, stop) is not None
    world.now = stop.occurred_at + activities.LATE_START_WAIT + timedelta(seconds=1)
    world.seal(recording_id)
    assert world.deliver() == 1  # the seal's `recording.indexed`: it names neither the call chain nor the user
    assert world.verdict(chain).verdict == "missing"

    # Ten minutes later the held messages come back: `started` (and a roster change) fold into the sealed record.
    late = activities.receive_event(world.deps, started(recording_id))
    assert late is not None and late.status == "sealed" and late.facts.call_chain_id == chain
    activities.receive_event(world.deps, joined(recording_id))
    world.deliver()

    verdict = world.verdict(chain)
    assert (verdict.verdict, verdict.reason, verdict.recording_ids) == ("recorded", "recorded", [recording_id])


def test_a_redelivered_event_after_the_seal_asks_reconciliation_nothing(world: World) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    staged = stage_capture(world.deps.staging, recording_id, speech(SECONDS), started_at=T0)
    first = started(recording_id)
    for event in (first, stopped(recording_id, staged.manifest.tracks[0].sha256, SECONDS)):
        activities.receive_event(world.deps, event)
    world.seal(recording_id)
    assert len(world.queue.bodies()) == 1

    activities.receive_event(world.deps, first)  # the same event again: the record has seen its sequence

    assert len(world.queue.bodies()) == 1


def test_the_lifecycle_waits_for_a_missing_recording_started_before_it_seals(world: World) -> None:
    """Evidence sealed before `recording.started` arrived says nothing of whose call it is (seed 3's manifest:
    `observed_user` null, `call_chain_id` null): while a held `started` may still come back, the capture is not
    ended yet; once it has, the record's facts are sealed in the manifest."""
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    staged = stage_capture(world.deps.staging, recording_id, speech(SECONDS), started_at=T0)
    stop = stopped(recording_id, staged.manifest.tracks[0].sha256, SECONDS)
    activities.receive_event(world.deps, stop)
    world.now = stop.occurred_at + timedelta(seconds=5)

    check = activities.check_recording(world.deps, recording_id)

    assert check.state == "capturing" and "recording.started" in check.reason
    assert 0 < check.wait_seconds <= 60
    activities.receive_event(world.deps, started(recording_id))
    world.seal(recording_id)
    record = world.store.get(recording_id)
    assert record is not None and record.seal is not None
    manifest = world.deps.recordings.read(record.seal.manifest_blob)
    assert f"chain-{recording_id}".encode() in manifest and TRADER.encode() in manifest


def test_a_recording_started_that_never_comes_does_not_keep_the_recording_unsealed(world: World) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    staged = stage_capture(world.deps.staging, recording_id, speech(SECONDS), started_at=T0)
    stop = stopped(recording_id, staged.manifest.tracks[0].sha256, SECONDS)
    activities.receive_event(world.deps, stop)
    world.now = stop.occurred_at + activities.LATE_START_WAIT - timedelta(seconds=20)
    waiting = activities.check_recording(world.deps, recording_id)
    assert waiting.state == "capturing" and waiting.wait_seconds <= 20

    world.now = stop.occurred_at + activities.LATE_START_WAIT

    assert activities.check_recording(world.deps, recording_id).state == "ended"
