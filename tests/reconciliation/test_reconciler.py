"""Reconciliation at the service layer (in-memory stores): one verdict per (call, policy user) with coverage,
gaps and the likely reason for every scenario the platform produces; late recordings and newer call-record
versions update verdicts; redeliveries change nothing; missing and partial raise alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import (
    CLIENT,
    SALES,
    T0,
    TRADER,
    call,
    party,
    phone,
    recording,
    snapshot,
)
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.callrecords import CallRecord, CallRecordStored
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.reconciliation import RecordingIndexed
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.reconciliation.service import Reconciler, parse_request
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore
from verbatim.search.index import InMemoryRecordingIndex, SearchQuery


class World:
    def __init__(self) -> None:
        self.calls = InMemoryCallRecordStore()
        # The coverage audit observes every user of the tenant, recorded or not: the client too.
        self.snapshots = InMemoryPolicySnapshotStore(
            [snapshot(TRADER), snapshot(SALES, strict=False), snapshot(CLIENT, records=False)]
        )
        self.records: dict[str, RecordingRecord] = {}
        self.verdicts = InMemoryVerdictStore()
        self.audit = InMemoryAuditLog()
        self.index = InMemoryRecordingIndex()
        self.reconciler = Reconciler(
            calls=self.calls,
            snapshots=self.snapshots,
            recordings=InMemoryRecordingFinder(lambda: list(self.records.values())),
            verdicts=self.verdicts,
            alerts=self.audit,
            index=self.index,
            clock=lambda: T0 + timedelta(hours=1),
        )

    def store_call(self, record: CallRecord) -> None:
        self.calls.save_if_newer(record, {"id": record.id})

    def add(self, *records: RecordingRecord) -> None:
        for record in records:
            self.records[record.id] = record

    def verdict(self, call_id: str, user: str = TRADER):  # type: ignore[no-untyped-def]
        return self.verdicts.verdicts[f"{call_id}:{user}"]

    def alerts(self) -> list[str]:
        return [e.action for e in self.audit.events if e.category == "alert"]


@pytest.fixture
def world() -> World:
    return World()


def test_a_fully_recorded_call_is_recorded_and_only_policy_users_are_expected(world: World) -> None:
    world.add(recording("r1", "c1", TRADER, start=T0 + timedelta(seconds=2), seconds=58))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)]))

    (outcome,) = world.reconciler.handle(stored("c1"))

    assert [v.user_id for v in outcome.verdicts] == [TRADER]  # the client has no recording policy
    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason, verdict.recording_ids) == ("recorded", "recorded", ["r1"])
    assert verdict.recorded_seconds == 58 and verdict.policy.policy_name == "Traders" and verdict.policy.strict
    assert world.alerts() == []
    assert world.index.get("r1") is not None and world.index.get("r1").verdict == "recorded"  # type: ignore[union-attr]


def test_a_call_without_any_recording_is_missing_for_want_of_an_invitation_and_alerts(world: World) -> None:
    world.store_call(call("c2", [party(SALES), phone("+41445550100")]))

    world.reconciler.reconcile_call("c2")

    verdict = world.verdict("c2", SALES)
    assert (verdict.verdict, verdict.reason, verdict.explained, verdict.coverage) == (
        "missing",
        "no_invitation",
        False,
        0,
    )
    assert [(g.start, g.end) for g in verdict.gaps] == [(verdict.call_start, verdict.call_end)]
    assert world.alerts() == ["reconciliation.missing"]
    (alert,) = world.audit.events
    assert alert.detail["callId"] == "c2" and alert.detail["reason"] == "no_invitation"


def test_a_recorder_crash_is_partial_with_the_gap_and_a_late_recording_of_the_rest_resolves_it(world: World) -> None:
    world.add(recording("r1", "c3", TRADER, seconds=25, interrupted=True))
    world.store_call(call("c3", [party(TRADER), party(CLIENT)], seconds=60))

    world.reconciler.reconcile_call("c3")

    verdict = world.verdict("c3")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert verdict.coverage == pytest.approx(25 / 60, abs=1e-3)
    (gap,) = verdict.gaps
    assert gap.seconds == 35 and gap.start.startswith("2025-03-03T09:00:25")
    assert world.alerts() == ["reconciliation.partial"]

    # A second recorder leg (a paired recorder, or a re-invite) covered the rest; it is sealed later.
    world.add(recording("r2", "c3", TRADER, start=T0 + timedelta(seconds=24), seconds=36))
    world.reconciler.handle(RecordingIndexed(recording_id="r2", at="2025-03-03T10:00:00.000000Z"))

    verdict = world.verdict("c3")
    assert (verdict.verdict, verdict.recording_ids) == ("recorded", ["r1", "r2"])
    assert [(h.verdict, h.reason) for h in verdict.history] == [("partial", "recorder_crashed")]
    assert world.alerts() == ["reconciliation.partial", "reconciliation.resolved"]


def test_a_call_blocked_by_a_strict_policy_with_the_recorder_down_is_missing_but_explained(world: World) -> None:
    reason = "recorder app-1 failed (rejected: unreachable) and RequiredBeforeCallEstablishment is true"
    world.store_call(call("c4", [party(TRADER), party(CLIENT)], seconds=3, setup_failure=reason))

    world.reconciler.reconcile_call("c4")

    verdict = world.verdict("c4")
    assert (verdict.verdict, verdict.reason, verdict.call_blocked, verdict.explained) == (
        "missing",
        "call_blocked_by_policy",
        True,
        True,
    )
    assert "RequiredBeforeCallEstablishment" in verdict.reason_detail and verdict.gaps == []


def test_a_recorder_that_rejected_the_invitation_is_named_as_the_reason(world: World) -> None:
    world.add(
        recording("r1", "c5", SALES, status="not_recorded", failure_stage="answer", failure_reason="no media capacity")
    )
    world.store_call(call("c5", [party(SALES), party(CLIENT)]))

    world.reconciler.reconcile_call("c5")

    verdict = world.verdict("c5", SALES)
    assert (verdict.verdict, verdict.reason, verdict.explained) == ("missing", "recorder_rejected", False)
    assert "answer" in verdict.reason_detail and "no media capacity" in verdict.reason_detail


def test_a_recording_still_being_sealed_is_pending_without_an_alert_until_it_is_sealed(world: World) -> None:
    world.add(recording("r1", "c6", TRADER, status="stopped"))
    world.store_call(call("c6", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c6")
    assert (world.verdict("c6").verdict, world.verdict("c6").reason) == ("pending", "recording_pending")
    assert world.alerts() == []

    world.add(recording("r1", "c6", TRADER))
    world.reconciler.handle(RecordingIndexed(recording_id="r1", at="2025-03-03T10:00:00.000000Z"))
    assert world.verdict("c6").verdict == "recorded"


def test_a_recorder_that_joined_a_group_call_late_is_partial_with_the_start_missing(world: World) -> None:
    joined, left = T0, T0 + timedelta(minutes=10)
    world.add(recording("r1", "c7", TRADER, start=T0 + timedelta(minutes=2), seconds=480, call_type="groupCall"))
    world.store_call(
        call("c7", [party(TRADER, joined, left), party(CLIENT, joined, left)], seconds=600, call_type="groupCall")
    )

    world.reconciler.reconcile_call("c7")

    verdict = world.verdict("c7")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_joined_late")
    assert verdict.coverage == pytest.approx(0.8) and verdict.gaps[0].seconds == 120


def test_redelivered_and_out_of_order_messages_change_nothing_and_newer_versions_are_used(world: World) -> None:
    world.store_call(call("c9", [party(TRADER), party(CLIENT)], version=1))
    for _ in range(3):
        world.reconciler.handle(stored("c9", version=1))
    assert world.alerts() == ["reconciliation.missing"]
    first = world.verdict("c9")

    world.store_call(call("c9", [party(TRADER), party(CLIENT)], version=2, seconds=90))
    world.reconciler.handle(stored("c9", version=2))
    world.reconciler.handle(stored("c9", version=1))  # the stale message arrives last: the newest record wins

    verdict = world.verdict("c9")
    assert verdict.call_record_version == 2 and verdict.gaps[0].seconds == 90
    assert first.call_record_version == 1 and len(verdict.history) == 1
    assert world.alerts() == ["reconciliation.missing", "reconciliation.missing"]  # one per version


def test_a_user_observed_by_no_audit_is_expected_when_the_recorder_reported_on_them(world: World) -> None:
    world.add(recording("r1", "c10", "u-unobserved"))
    world.store_call(call("c10", [party("u-unobserved"), party(CLIENT)]))

    world.reconciler.reconcile_call("c10")

    verdict = world.verdict("c10", "u-unobserved")
    assert verdict.verdict == "recorded" and verdict.policy.certain is False


def test_users_of_other_tenants_are_never_expected(world: World) -> None:
    world.snapshots.add(snapshot("u-guest-trader"))
    world.store_call(call("c11", [party(CLIENT), party("u-guest-trader", tenant="other-tenant")]))

    assert world.reconciler.reconcile_call("c11").verdicts == []


def test_the_index_finds_reconciled_recordings_by_verdict_participant_phone_and_observed_user(world: World) -> None:
    world.add(recording("r1", "c12", TRADER, phone_numbers=("+41 44 555 01 00",)))
    world.add(recording("r2", "c13", TRADER, seconds=20, interrupted=True, start=T0 + timedelta(hours=1)))
    world.store_call(call("c12", [party(TRADER), phone("+41445550100")]))
    world.store_call(call("c13", [party(TRADER), party(CLIENT)], start=T0 + timedelta(hours=1)))
    for call_id in ("c12", "c13"):
        world.reconciler.reconcile_call(call_id)

    def ids(**filters: object) -> list[str]:
        return [item.id for item in world.index.search(SearchQuery(**filters))[0]]  # type: ignore[arg-type]

    assert ids() == ["r2", "r1"]
    assert ids(verdict="partial") == ["r2"]
    assert ids(participant="+41445550100") == ids(participant="+41 44 555 01 00") == ["r1"]
    assert ids(participant="client@fabrikam.com") == ["r2", "r1"]
    assert ids(observed_user="TRADER@contoso.com") == ids(observed_user=TRADER) == ["r2", "r1"]
    assert ids(start_from="2025-03-03T09:30:00.000000Z") == ["r2"]


def test_messages_are_told_apart_by_schema_and_bad_ones_are_rejected() -> None:
    body = stored("c1").model_dump_json(by_alias=True)
    assert isinstance(parse_request(body), CallRecordStored)
    assert isinstance(parse_request('{"schema": "recording.indexed", "recordingId": "r", "at": "x"}'), RecordingIndexed)
    from verbatim.platform.errors import InvalidInput

    for bad in (b"not json", b'{"schema": "other"}', b'{"schema": "callrecord.stored"}'):
        with pytest.raises(InvalidInput):
            parse_request(bad)


def stored(call_id: str, version: int = 1) -> CallRecordStored:
    return CallRecordStored(
        call_record_id=call_id, version=version, type="peerToPeer", stored_at="2025-03-03T10:00:00.000000Z"
    )
