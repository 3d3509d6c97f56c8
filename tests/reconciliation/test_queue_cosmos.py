"""Reconciliation through its queue trigger against Azurite and the Cosmos emulator: the lifecycle's hook puts
`recording.indexed` on `reconciliation-requests`, the trigger consumes it and `callrecord.stored` alike, and
concurrent re-evaluations of one call leave exactly one verdict document per policy user."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.core.pipeline.transport import RequestsTransport

from devstack.testkit.records import CLIENT, T0, TRADER, call, party, recording, snapshot
from functions import reconciliation
from tests.callrecords.helpers import cosmos_items, drain, handler
from verbatim.contracts.callrecords import CallRecordStored
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform.settings import Settings
from verbatim.platform.times import utcnow
from verbatim.reconciliation.service import Reconciler
from verbatim.wiring import container_for

reconcile = handler(reconciliation.reconcile)


def message(body: str) -> func.QueueMessage:
    return func.QueueMessage(body=body.encode())


def test_the_hook_and_the_trigger_turn_a_late_recording_into_a_recorded_verdict(stack_env: Settings) -> None:
    drain(stack_env, "reconciliation-requests")  # the queue lives in the session's Azurite: other tests' messages
    runtime = container_for(stack_env).reconciliation
    runtime.reconciler.snapshots.add(snapshot(TRADER))
    runtime.reconciler.snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user
    runtime.reconciler.calls.save_if_newer(call("c-late", [party(TRADER), party(CLIENT)]), {"id": "c-late"})
    stored = CallRecordStored(call_record_id="c-late", version=1, type="peerToPeer", stored_at="2025-03-03T10:00:00Z")

    reconcile(message(stored.model_dump_json(by_alias=True)))
    (first,) = cosmos_items(stack_env, "verdicts")
    assert (first["verdict"], first["reason"]) == ("missing", "no_invitation")

    record = recording("r-late", "c-late", TRADER, start=T0 + timedelta(seconds=1), seconds=59)
    CosmosRecordingStore(container_for(stack_env).cosmos("recordings")).update("r-late", lambda _: record)
    assert announce_indexed(container_for(stack_env).reconciliation_requests, record, utcnow())
    (sent,) = drain(stack_env, "reconciliation-requests")
    assert sent["schema"] == "recording.indexed" and sent["recordingId"] == "r-late"
    reconcile(message(json.dumps(sent)))

    (verdict,) = cosmos_items(stack_env, "verdicts")
    assert (verdict["verdict"], verdict["recordingIds"], verdict["history"][0]["verdict"]) == (
        "recorded",
        ["r-late"],
        "missing",
    )
    (indexed,) = cosmos_items(stack_env, "recording_index")
    assert (indexed["id"], indexed["verdict"], indexed["observedUserId"]) == ("r-late", "recorded", TRADER)
    alerts = [a["action"] for a in cosmos_items(stack_env, "audit") if a["category"] == "alert"]
    assert sorted(alerts) == ["reconciliation.missing", "reconciliation.resolved"]


def test_concurrent_evaluations_of_one_call_store_one_verdict_per_user(stack_env: Settings) -> None:
    runtime = container_for(stack_env).reconciliation
    runtime.reconciler.snapshots.add(snapshot(TRADER))
    runtime.reconciler.snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user
    runtime.reconciler.calls.save_if_newer(call("c-busy", [party(TRADER), party(CLIENT)]), {"id": "c-busy"})

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: runtime.reconciler.reconcile_call("c-busy"), range(8)))

    assert all(o.verdicts[0].verdict == "missing" for o in outcomes)
    (verdict,) = cosmos_items(stack_env, "verdicts")
    assert verdict["history"] == []
    alerts = [a for a in cosmos_items(stack_env, "audit") if a["category"] == "alert"]
    assert len(alerts) == 1


def test_the_hook_reports_failure_instead_of_failing_the_lifecycle(stack_env: Settings) -> None:
    from verbatim.platform.queues import InMemoryQueue

    broken = InMemoryQueue(fail=True)
    assert announce_indexed(broken, recording("r-x", "c-x", TRADER), utcnow()) is False


def test_the_daily_run_decides_a_verdict_that_waited_for_a_policy_when_the_audits_message_was_lost(
    stack_env: Settings,
) -> None:
    runtime = container_for(stack_env).reconciliation
    runtime.reconciler.calls.save_if_newer(call("c-early", [party(TRADER), party(CLIENT)]), {"id": "c-early"})
    runtime.reconciler.reconcile_call("c-early")  # before the first audit: nobody observed yet
    assert {(v["userId"], v["verdict"]) for v in cosmos_items(stack_env, "verdicts")} == {
        (TRADER, "pending"),
        (CLIENT, "pending"),
    }

    # The audit observes both (after the call), but its `policies.observed` message never arrives.
    first_audit = T0 + timedelta(minutes=10)
    runtime.reconciler.snapshots.add(snapshot(TRADER, since=first_audit))
    runtime.reconciler.snapshots.add(snapshot(CLIENT, records=False, since=first_audit))
    run = runtime.reporter.run(T0.date())

    (verdict,) = cosmos_items(stack_env, "verdicts")
    assert (verdict["userId"], verdict["verdict"], verdict["reason"]) == (TRADER, "missing", "no_invitation")
    assert run.reevaluated_calls == 1
    assert (run.counts["expected"], run.counts["missing"], run.counts["pending"]) == (1, 1, 0)


def test_re_evaluating_an_unchanged_call_on_cosmos_is_four_reads_and_no_write(
    stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per stored version on the Cosmos emulator: the call record (a point read), the recordings, the policy
    histories and the call's verdicts (one query each, whatever the number of participants); an outcome that
    did not change writes nothing (the verdicts read up front carry their etags, so no verdict is read again)."""
    runtime = container_for(stack_env).reconciliation
    people = [TRADER, CLIENT, "u-guest-1", "u-guest-2", "u-guest-3", "u-guest-4"]
    for user in people:
        runtime.reconciler.snapshots.add(snapshot(user, records=user == TRADER))
    record = call("c-six", [party(user) for user in people])
    runtime.reconciler.calls.save_if_newer(record, {"id": "c-six"})
    assert runtime.reconciler.reconcile_call("c-six").changed == 1  # the trader's `missing` verdict, written

    sent: list[tuple[str, bool]] = []
    send = RequestsTransport.send

    def counting(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        sent.append((request.method, request.headers.get("Content-Type") == "application/query+json"))
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting)
    outcome = runtime.reconciler.reconcile_call("c-six")

    assert outcome.changed == 0 and [v.verdict for v in outcome.verdicts] == ["missing"]
    assert sorted(sent) == [("GET", False), ("POST", True), ("POST", True), ("POST", True)], sent


def test_a_batch_of_stored_versions_on_cosmos_reads_each_container_once_and_decides_as_alone(
    stack_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three 6-person meetings handled as one batch (concurrent trigger invocations): four reads for the whole
    batch (call records, verdicts, policy histories, recordings: one query each) whatever the number of calls,
    and the verdicts are those of evaluating each call alone, which the second pass confirms (nothing changes)."""
    runtime = container_for(stack_env).reconciliation
    reconciler = runtime.reconciler
    for user in [TRADER, CLIENT, "u-guest-1", "u-guest-2", "u-guest-3", "u-guest-4"]:
        reconciler.snapshots.add(snapshot(user, records=user == TRADER))
    ids = []
    for n in range(3):
        people = [TRADER, CLIENT, *(f"u-guest-{g}" for g in range(1, 5))]
        record = call(f"c-batch-{n}", [party(user) for user in people], start=T0 + timedelta(minutes=10 * n))
        reconciler.calls.save_if_newer(record, {"id": record.id})
        ids.append(record.id)
    sealed = recording("r-batch-0", "c-batch-0", TRADER, start=T0)
    CosmosRecordingStore(container_for(stack_env).cosmos("recordings")).update("r-batch-0", lambda _: sealed)

    queries: Counter[str] = Counter()  # container -> queries sent to it
    point_reads: list[str] = []
    send = RequestsTransport.send

    def counting(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        path = request.url.split("/colls/", 1)[-1]
        if request.headers.get("Content-Type") == "application/query+json":
            queries[path.split("/", 1)[0]] += 1
        elif request.method == "GET" and "/docs/" in path:
            point_reads.append(path)
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting)
    answers = reconciler.handle_many(
        [CallRecordStored(call_record_id=i, version=1, type="groupCall", stored_at="2025-03-03T10:00:00Z") for i in ids]
    )
    monkeypatch.setattr(RequestsTransport, "send", send)

    outcomes = [a[0] for a in answers if isinstance(a, list)]
    assert [o.call_id for o in outcomes] == ids
    decided = [sorted((v.user_id, v.verdict) for v in o.verdicts if v.user_id == TRADER) for o in outcomes]
    assert decided == [[(TRADER, "recorded")], [(TRADER, "missing")], [(TRADER, "missing")]]
    # One query per container for the three calls (the search index's own read before its write aside), and no
    # point read of a call record or a verdict.
    assert {name: n for name, n in queries.items() if name != "recording_index"} == {
        "calls": 1,
        "verdicts": 1,
        "policy_snapshots": 1,
        "recordings": 1,
    }, queries
    assert point_reads == [], point_reads

    for call_id, outcome in zip(ids, outcomes, strict=True):
        again = reconciler.reconcile_call(call_id)
        assert again.changed == 0 and again.verdicts == outcome.verdicts


@pytest.mark.parametrize("handled", ["alone", "in a batch"])
def test_an_evaluation_that_read_a_recording_before_its_seal_does_not_overwrite_the_verdict_the_seal_decided(
    stack_env: Settings, handled: str
) -> None:
    """Two evaluations of one call at once on Cosmos (chaos, issue 23): the call record's evaluation reads the
    recording while it is still `stopped` (being sealed); before it writes, the seal's `recording.indexed` is
    handled and decides `recorded`. The slower evaluation, decided on what it read before, must not put its
    `pending (recording_pending)` over that — nothing would re-evaluate the call after it, so the verdict would
    stay pending for good. Each evaluation reads the verdicts, then the recordings; a write that finds the
    verdicts changed since is decided again on fresh reads."""
    runtime = container_for(stack_env).reconciliation
    real = runtime.reconciler
    real.snapshots.add(snapshot(TRADER))
    real.snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user
    real.calls.save_if_newer(call("c-race", [party(TRADER), party(CLIENT)]), {"id": "c-race"})
    records = CosmosRecordingStore(container_for(stack_env).cosmos("recordings"))
    start = T0 + timedelta(seconds=1)
    stopped = recording("r-race", "c-race", TRADER, start=start, seconds=59, status="stopped")
    sealed = recording("r-race", "c-race", TRADER, start=start, seconds=59)
    records.update("r-race", lambda _: stopped)
    sealed_meanwhile: list[list[Any]] = []

    class SealedWhileReading:
        """The recordings as the slower evaluation reads them: the seal lands right after its read."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def _sealed_after(self, found: Any) -> Any:
            if not sealed_meanwhile:
                records.update("r-race", lambda _: sealed)
                sealed_meanwhile.append([o.verdicts for o in real.recording_indexed("r-race")])
            return found

        def for_call(self, *args: Any) -> Any:
            return self._sealed_after(self.inner.for_call(*args))

        def for_calls(self, *args: Any) -> Any:  # a batch's prefetch
            return self._sealed_after(self.inner.for_calls(*args))

    slower = Reconciler(
        calls=real.calls,
        snapshots=real.snapshots,
        recordings=SealedWhileReading(real.recordings),
        verdicts=real.verdicts,
        alerts=real.alerts,
        index=real.index,
    )
    if handled == "alone":
        slower.reconcile_call("c-race")
    else:
        real.calls.save_if_newer(call("c-other", [party(CLIENT)], start=T0 + timedelta(hours=1)), {"id": "c-other"})
        stored = [
            CallRecordStored(call_record_id=c, version=1, type="peerToPeer", stored_at="2025-03-03T10:00:00Z")
            for c in ("c-race", "c-other")
        ]
        assert all(isinstance(answer, list) for answer in slower.handle_many(stored))

    assert [[v.verdict for v in verdicts] for verdicts in sealed_meanwhile[0]] == [["recorded"]]
    (verdict,) = cosmos_items(stack_env, "verdicts")
    assert (verdict["verdict"], verdict["recordingIds"]) == ("recorded", ["r-race"])
