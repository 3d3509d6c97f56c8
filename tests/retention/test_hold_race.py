"""A legal hold racing the retention sweep never loses a held recording.

The sweep decides from the index, then claims each recording with If-Match on the etag it evaluated and checks
the holds again; a hold changes the same etag when it is applied. So either the hold lands first (the claim
fails, the sweep re-reads, sees the hold and keeps the recording) or the claim lands first (the hold reports
that the deletion had already begun). Both interleavings are forced here, then the two run on real threads
against the emulators with the hold placed mid-sweep, and the outcome is checked recording by recording."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

from tests.retention.world import SALES, T0, TRADER, RetentionWorld
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import HoldApplication, HoldRequest, Officer, SweepReport
from verbatim.retention.recordings import CosmosRetentionRecordings
from verbatim.wiring import Container
from verbatim.wiring.retention import RetentionServices

OFFICER = Officer(subject="officer-a", name="Olivia Officer")


def hold_on(custodian: str) -> HoldRequest:
    return HoldRequest(matter_id="M-RACE", description="race", custodians=[custodian])


class PausingRecordings(CosmosRetentionRecordings):
    """Runs `before_claim` just before the sweep's claim (the replace that sets status `deleting`) is sent."""

    def __init__(self, real: CosmosRetentionRecordings) -> None:
        super().__init__(real._container)
        self.before_claim: list[object] = []

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        if record.status == "deleting" and self.before_claim:
            action = self.before_claim.pop()
            assert callable(action)
            action()
        return super().replace(record, etag)


class ClaimedRecordings(CosmosRetentionRecordings):
    """Runs `after_claim` right after the sweep's claim was stored, before anything is deleted."""

    def __init__(self, real: CosmosRetentionRecordings) -> None:
        super().__init__(real._container)
        self.after_claim: list[object] = []

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        stored = super().replace(record, etag)
        if stored and record.status == "deleting" and self.after_claim:
            action = self.after_claim.pop()
            assert callable(action)
            action()
        return stored


def other_process(world: RetentionWorld) -> RetentionServices:
    """A second instance of the app (its own clients), on the same simulated clock."""
    return Container(world.settings, clock=world.clock, recordings=world.runtime.media).retention


def test_a_hold_applied_between_the_sweeps_decision_and_its_claim_wins(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    world.clock.set(T0 + timedelta(days=31))
    pausing = PausingRecordings(world.runtime.recordings)
    world.runtime.recordings = pausing
    officers = other_process(world)
    placed: list[HoldApplication] = []

    def place_hold() -> None:  # in another thread, as another request would
        thread = threading.Thread(
            target=lambda: placed.append(officers.holds.create(hold_on(TRADER[1]), OFFICER).application)
        )  # type: ignore[arg-type]
        thread.start()
        thread.join()

    pausing.before_claim.append(place_hold)
    report = world.runtime.sweep.run()

    assert placed[0].held == [record.id] and placed[0].not_held == {}
    assert report.deleted == [] and report.held == 1
    kept = world.record(record.id)
    assert kept.status == "sealed" and kept.seal is not None and len(kept.seal.legal_holds) == 1
    assert len(world.blobs_of(record.id)) == 3


def test_a_hold_that_comes_after_the_claim_says_it_came_too_late(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    world.clock.set(T0 + timedelta(days=31))
    claimed = ClaimedRecordings(world.runtime.recordings)
    world.runtime.recordings = claimed
    officers = other_process(world)
    placed: list[HoldApplication] = []

    def place_hold() -> None:
        result = officers.holds.create(hold_on(TRADER[1]), OFFICER)
        assert result.application is not None
        placed.append(result.application)

    claimed.after_claim.append(place_hold)
    report = world.runtime.sweep.run()

    assert report.deleted == [record.id]
    assert placed[0].held == [] and "deletion had already begun" in placed[0].not_held[record.id]
    assert world.record(record.id).status == "deleted"


def test_a_hold_racing_the_sweep_on_real_threads_never_loses_a_held_recording(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    world.assign_class(SALES[0], "cftc-oral")
    custodian = [world.seal(started_at=T0 + timedelta(minutes=i)) for i in range(10)]
    bystanders = [world.seal(user=SALES, started_at=T0 + timedelta(minutes=i, seconds=30)) for i in range(2)]
    world.clock.set(T0 + timedelta(days=31))
    claimed = ClaimedRecordings(world.runtime.recordings)
    world.runtime.recordings = claimed
    first_claim = threading.Event()
    claimed.after_claim.append(first_claim.set)  # only signals: the sweep goes on at once
    officers = other_process(world)
    sweeps: list[SweepReport] = []
    holds: list[HoldApplication] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        try:
            start.wait()
            sweeps.append(world.runtime.sweep.run())
        except BaseException as error:
            errors.append(error)

    def place() -> None:
        try:
            start.wait()
            first_claim.wait(timeout=60)  # the sweep is deleting: join the race at a moment nobody chose
            time.sleep(random.uniform(0.0, 1.5))
            result = officers.holds.create(hold_on(TRADER[0]), OFFICER)
            assert result.application is not None
            holds.append(result.application)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sweep), threading.Thread(target=place)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    report, application = sweeps[0], holds[0]

    held, deleted = set(application.held), set(report.deleted)
    ids = {r.id for r in custodian}
    assert held.isdisjoint(deleted)
    # Every recording of the custodian was either held (and is intact) or deleted (its deletion began before the
    # hold reached it; those the hold still found say so, the others are tombstones without the custodian's ids).
    assert held | (deleted & ids) == ids and set(application.not_held) <= deleted
    ledger = world.runtime.ledger
    for recording_id in ids:
        record = world.record(recording_id)
        kinds = [e.kind for e in ledger.entries_for_subject(f"recording:{recording_id}")]
        if recording_id in held:
            assert record.status == "sealed" and record.seal is not None and record.seal.legal_holds
            assert len(world.blobs_of(recording_id)) == 3 and "deleted" not in kinds
        else:
            assert recording_id in deleted and record.status == "deleted" and kinds.count("deleted") == 1
            assert world.blobs_of(recording_id) == []
    assert {r.id for r in bystanders} <= deleted
    print(f"race: {len(deleted & ids)} of {len(ids)} deleted before the hold, {len(held)} held")
