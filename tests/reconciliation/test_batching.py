"""Reconciliation requests handled as one batch (issue 22): concurrent trigger invocations share their reads.

What must hold: a batch decides exactly what handling each request alone decides (no verdict lost, none
different); it reads each store once for the whole batch; a call named twice is evaluated once; every
invocation gets its own request's answer, in its place, and a request that fails, fails alone; handling a batch
again (a redelivered message) changes nothing. No test here measures time: the concurrency test orders the
threads with events and counts the batches.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from tests.reconciliation.test_store_operations import Counted
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.callrecords import CallRecord, CallRecordStored
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.batching import RequestBatcher
from verbatim.reconciliation.service import CallOutcome, Reconciler, ReconciliationRequest
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore
from verbatim.search.index import InMemoryRecordingIndex

GUESTS = [f"u-guest-{n}" for n in range(4)]


class FailingCalls(InMemoryCallRecordStore):
    """A call-record store that cannot read one call (a damaged document, say)."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    def get(self, call_record_id: str) -> CallRecord | None:
        if call_record_id == self.broken:
            raise RuntimeError(f"cannot read {call_record_id}")
        return super().get(call_record_id)

    def get_many(self, call_record_ids: list[str]) -> dict[str, CallRecord]:  # type: ignore[override]
        if self.broken in call_record_ids:
            raise RuntimeError(f"cannot read {self.broken}")
        return super().get_many(call_record_ids)


class World:
    """Meetings of the trader (recorded), the client (no policy) and four guests (policy unknown), some with the
    trader's recording and some without."""

    def __init__(self, meetings: int, calls: InMemoryCallRecordStore | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.calls = calls or InMemoryCallRecordStore()
        self.records: dict[str, RecordingRecord] = {}
        self.verdicts = InMemoryVerdictStore()
        self.index = InMemoryRecordingIndex()
        self.reconciler = Reconciler(
            calls=Counted("calls", self.calls, self.counts),
            snapshots=Counted(
                "snapshots",
                InMemoryPolicySnapshotStore([snapshot(TRADER), snapshot(CLIENT, records=False)]),
                self.counts,
            ),
            recordings=Counted("recordings", InMemoryRecordingFinder(lambda: list(self.records.values())), self.counts),
            verdicts=Counted("verdicts", self.verdicts, self.counts),
            alerts=InMemoryAuditLog(),
            index=Counted("index", self.index, self.counts),
            clock=lambda: T0 + timedelta(hours=3),
        )
        for i in range(meetings):
            start = T0 + timedelta(hours=i % 2, minutes=i)
            people = [TRADER, CLIENT, *GUESTS] if i % 3 else [TRADER, CLIENT]
            record = call(f"c{i:02d}", [party(user) for user in people], start=start, seconds=600)
            self.calls.save_if_newer(record, {"id": record.id})
            if i % 2 == 0:  # every other meeting recorded
                self.records[f"r{i:02d}"] = recording(f"r{i:02d}", f"c{i:02d}", TRADER, start=start, seconds=600)

    def decided(self) -> dict[str, tuple[str, str, tuple[str, ...]]]:
        return {v.id: (v.verdict, v.reason, tuple(v.recording_ids)) for v in self.verdicts.verdicts.values()}

    def indexed(self) -> dict[str, str | None]:
        return {key: entry.verdict for key in self.records if (entry := self.index.get(key)) is not None}


def stored(call_id: str) -> CallRecordStored:
    return CallRecordStored(call_record_id=call_id, version=1, type="groupCall", stored_at="2025-03-03T10:00:00Z")


def test_a_batch_decides_what_handling_each_request_alone_decides_and_reads_each_store_once() -> None:
    alone, batched = World(8), World(8)
    requests = [stored(f"c{i:02d}") for i in range(8)]
    for request in requests:
        alone.reconciler.handle(request)
    batched.counts.clear()
    answers = batched.reconciler.handle_many(requests)

    assert batched.decided() == alone.decided() and len(alone.decided()) == 8 * 1 + 5 * 4  # trader + guests
    assert batched.indexed() == alone.indexed() and set(batched.indexed()) == {"r00", "r02", "r04", "r06"}
    assert [a[0].call_id for a in answers if isinstance(a, list)] == [r.call_record_id for r in requests]
    reads = {k: n for k, n in batched.counts.items() if k.split(".")[1] not in ("save", "put", "withdraw")}
    assert reads == {
        "calls.get_many": 1,
        "verdicts.read_calls": 1,
        "snapshots.histories": 1,
        "recordings.for_calls": 1,
    }, batched.counts


def test_a_call_named_twice_in_a_batch_is_evaluated_once_and_both_requests_get_its_outcome() -> None:
    world, once = World(2), World(2)
    answers = world.reconciler.handle_many([stored("c00"), stored("c01"), stored("c00")])
    once.reconciler.handle_many([stored("c00"), stored("c01")])
    assert [a[0].call_id for a in answers if isinstance(a, list)] == ["c00", "c01", "c00"]
    assert answers[0] == answers[2]
    assert world.counts["verdicts.save"] == once.counts["verdicts.save"] == 1 + 5  # each verdict saved once
    assert world.decided() == once.decided()


def test_answers_keep_the_order_of_mixed_requests() -> None:
    world = World(3)
    late = RecordingIndexed(recording_id="r00", at="2025-03-03T11:00:00.000000Z")
    answers = world.reconciler.handle_many([stored("c01"), late, stored("c02")])
    assert len(answers) == 3 and all(isinstance(a, list) for a in answers)
    first, indexed, last = answers
    assert isinstance(first, list) and [o.call_id for o in first] == ["c01"]
    assert isinstance(indexed, list) and "c00" in [o.call_id for o in indexed]
    assert isinstance(last, list) and [o.call_id for o in last] == ["c02"]


def test_a_request_that_fails_fails_alone_and_no_other_verdict_is_lost() -> None:
    world, alone = World(4, calls=FailingCalls("c02")), World(4)
    for i in (0, 1, 3):
        alone.reconciler.handle(stored(f"c{i:02d}"))
    answers = world.reconciler.handle_many([stored(f"c{i:02d}") for i in range(4)])

    assert isinstance(answers[2], RuntimeError) and "c02" in str(answers[2])
    assert all(isinstance(answers[i], list) for i in (0, 1, 3))
    assert world.decided() == alone.decided()


def test_a_batch_delivered_again_changes_nothing() -> None:
    world = World(6)
    requests = [stored(f"c{i:02d}") for i in range(6)]
    world.reconciler.handle_many(requests)
    before = world.decided()
    again = world.reconciler.handle_many(requests)
    assert all(isinstance(a, list) and a[0].changed == 0 for a in again)
    assert world.decided() == before


def test_concurrent_invocations_share_one_batch_and_each_gets_its_own_answer() -> None:
    """Thread A handles a batch alone (the handler holds it until released); B and C arrive meanwhile and are
    handled together in the next batch; C's failure is raised in C only."""
    release = threading.Event()
    first_started = threading.Event()
    batches: list[list[str]] = []

    def handle_many(requests: list[ReconciliationRequest]) -> list[list[CallOutcome] | Exception]:
        ids = [r.call_record_id for r in requests if isinstance(r, CallRecordStored)]
        batches.append(ids)
        if len(batches) == 1:
            first_started.set()
            assert release.wait(60)
        return [RuntimeError("broken") if i == "c" else [CallOutcome(i)] for i in ids]

    batcher = RequestBatcher(handle_many)  # type: ignore[arg-type]
    results: dict[str, object] = {}

    def invoke(call_id: str) -> None:
        try:
            results[call_id] = batcher.handle(stored(call_id))
        except RuntimeError as error:
            results[call_id] = error

    a = threading.Thread(target=invoke, args=("a",))
    a.start()
    assert first_started.wait(60)
    others = [threading.Thread(target=invoke, args=(i,)) for i in ("b", "c")]
    for thread in others:
        thread.start()
    for _ in range(6000):  # both have queued behind A's batch (an ordering wait, not a timing assertion)
        with batcher._changed:
            if len(batcher._waiting) == 2:
                break
        threading.Event().wait(0.01)
    release.set()
    for thread in (a, *others):
        thread.join(60)

    assert batches == [["a"], ["b", "c"]]
    assert results["a"] == [CallOutcome("a")] and results["b"] == [CallOutcome("b")]
    assert isinstance(results["c"], RuntimeError)
    assert batcher.batches == 2


def test_a_batch_whose_handler_fails_fails_every_request_of_it_and_the_next_one_runs() -> None:
    calls = iter([RuntimeError("store down"), None])

    def handle_many(requests: list[ReconciliationRequest]) -> list[list[CallOutcome] | Exception]:
        failure = next(calls)
        if failure is not None:
            raise failure
        return [[CallOutcome("x")] for _ in requests]

    batcher = RequestBatcher(handle_many)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="store down"):
        batcher.handle(stored("x"))
    assert batcher.handle(stored("x")) == [CallOutcome("x")]  # the retry of the message succeeds
