"""What one reconciliation event costs in store operations: linear in the calls it concerns, never quadratic.

A turret trader, a shared line or a call-queue agent has many calls at once, each with its recording, all
overlapping. A late `recording.indexed` re-evaluates every call the recording may belong to; before, each of
those evaluations read the policy snapshots again and re-indexed every recording named by its verdicts, so n
overlapping calls cost n² index writes per event (issue 22: single invocations took minutes on Cosmos). The
counts here are of calls into the stores (each a Cosmos request or more in production), on in-memory fakes.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.service import Reconciler
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore
from verbatim.search.index import InMemoryRecordingIndex


class Counted:
    """A store whose method calls are counted by name (one Counter shared by all stores of a world)."""

    def __init__(self, name: str, target: Any, counts: Counter[str]) -> None:
        self._name, self._target, self._counts = name, target, counts

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._target, attribute)
        if not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._counts[f"{self._name}.{attribute}"] += 1
            return value(*args, **kwargs)

        return counted


class Turret:
    """One trader with `n` calls at once (each with a client), each recorded, all overlapping."""

    def __init__(self, n: int) -> None:
        self.counts: Counter[str] = Counter()
        self.records: dict[str, RecordingRecord] = {}
        self.calls = InMemoryCallRecordStore()
        self.index = InMemoryRecordingIndex()
        self.reconciler = Reconciler(
            calls=Counted("calls", self.calls, self.counts),  # type: ignore[arg-type]
            snapshots=Counted(  # type: ignore[arg-type]
                "snapshots",
                InMemoryPolicySnapshotStore([snapshot(TRADER), snapshot(CLIENT, records=False)]),
                self.counts,
            ),
            recordings=Counted(  # type: ignore[arg-type]
                "recordings", InMemoryRecordingFinder(lambda: list(self.records.values())), self.counts
            ),
            verdicts=Counted("verdicts", InMemoryVerdictStore(), self.counts),  # type: ignore[arg-type]
            alerts=InMemoryAuditLog(),
            index=Counted("index", self.index, self.counts),  # type: ignore[arg-type]
            clock=lambda: T0 + timedelta(hours=2),
        )
        for i in range(n):
            start = T0 + timedelta(seconds=i)
            record = call(f"c{i:03d}", [party(TRADER), party(CLIENT)], start=start, seconds=1800)
            self.calls.save_if_newer(record, {"id": record.id})
            self.records[f"r{i:03d}"] = recording(f"r{i:03d}", f"c{i:03d}", TRADER, start=start, seconds=1800)
        for i in range(n):
            self.reconciler.reconcile_call(f"c{i:03d}")

    def late_recording(self) -> Counter[str]:
        """A recording of the trader sealed late (it overlaps every call); the operations its event costs."""
        self.records["r-late"] = recording("r-late", None, TRADER, start=T0 + timedelta(minutes=5), seconds=600)
        self.counts.clear()
        self.reconciler.handle(RecordingIndexed(recording_id="r-late", at="2025-03-03T11:00:00.000000Z"))
        return Counter(self.counts)


def test_a_late_recording_of_a_trader_with_many_overlapping_calls_costs_operations_linear_in_the_calls() -> None:
    small, large = Turret(8).late_recording(), Turret(16).late_recording()

    # Every overlapping call is re-evaluated (its verdict may change), but each recording is indexed at most
    # once per event, and the trader's policy is read once per event, not once per call.
    assert large["index.put"] <= 16 + 1, large
    policy_reads = ("effective_at", "history", "histories", "latest")
    assert sum(large[f"snapshots.{name}"] for name in policy_reads) <= 3, large
    # The users' recordings around the calls: read once for the event (both users in one read), not per call.
    assert large["recordings.for_observed_user"] + large["recordings.for_call"] <= 2, large
    # Twice the calls, about twice the operations (n² would be four times).
    assert sum(large.values()) <= 2.3 * sum(small.values()), (small, large)


def test_the_index_keeps_every_recording_with_its_call_verdict_after_batched_evaluation() -> None:
    turret = Turret(6)
    turret.late_recording()
    late = turret.index.get("r-late")
    assert late is not None and late.verdict == "recorded"
    for i in range(6):
        indexed = turret.index.get(f"r{i:03d}")
        assert indexed is not None and indexed.verdict == "recorded", i


def test_an_event_delivered_again_changes_no_verdict() -> None:
    turret = Turret(6)
    turret.late_recording()
    outcomes = turret.reconciler.handle(RecordingIndexed(recording_id="r-late", at="2025-03-03T11:00:00.000000Z"))
    assert len(outcomes) == 6 and sum(outcome.changed for outcome in outcomes) == 0


def test_a_stored_version_reads_each_store_once_whatever_the_number_of_participants() -> None:
    """One `callrecord.stored` of a 6-person meeting: the call record, the recordings (of the call chain and of
    every participant, together), the participants' policy histories (together) and the call's verdicts, each
    read once; before, the recordings and the policies were read once per participant (~15 Cosmos requests)."""
    turret = Turret(0)
    people = [TRADER, CLIENT, *(f"u-guest-{n}" for n in range(4))]
    record = call("c-meeting", [party(user) for user in people], start=T0, seconds=1800)
    turret.calls.save_if_newer(record, {"id": record.id})
    turret.records["r-meeting"] = recording("r-meeting", "c-meeting", TRADER, start=T0, seconds=1800)

    for attempt in ("first", "again"):
        turret.counts.clear()
        (outcome,) = turret.reconciler.handle(
            CallRecordStored(call_record_id="c-meeting", version=1, type="groupCall", stored_at="2025-03-03T10:00:00Z")
        )
        decided = {v.user_id: v.verdict for v in outcome.verdicts}
        # The guests were never observed by the coverage audit: pending until their policy is known.
        assert decided == {TRADER: "recorded", **{f"u-guest-{n}": "pending" for n in range(4)}}, attempt
        reads = {name: count for name, count in turret.counts.items() if name.split(".")[1] not in ("save", "put")}
        assert reads == {
            "calls.get": 1,
            "recordings.for_call": 1,
            "snapshots.histories": 1,
            "verdicts.read_call": 1,
        }, (attempt, turret.counts)
