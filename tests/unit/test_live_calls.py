"""The live view's service (`verbatim/api/live.py`) over in-memory stores: which calls show, how a silent recorder
is told from a live one (more than two heartbeat intervals without a heartbeat), paging, roles, and the record
of each read (an audit record per poll, one ledger entry per reader and hour)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from verbatim.api.live import InMemoryCapturingRecordings, LiveCalls
from verbatim.contracts.recorder import (
    CallParticipant,
    CaptureProgress,
    Identity,
    ObservedUser,
    ParticipantsChanged,
    RecordingStarted,
    RecordingStopped,
)
from verbatim.evidence import names
from verbatim.evidence.progress import InMemoryProgress
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.ledger.access import AccessLog
from verbatim.lifecycle.records import InMemoryRecordingStore, record_event
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.platform.auth import Principal
from verbatim.platform.errors import Forbidden, InvalidInput

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OFFICER = Principal(subject="officer-1", name="Oscar Officer", roles=frozenset({"Compliance.Officer"}))
TOM = CallParticipant(participant_id="p1", identity=Identity(kind="user", id="tom", display_name="Tom Trader"))
CLIENT = CallParticipant(participant_id="p2", identity=Identity(kind="phone", id="+41445550100"))


class World:
    def __init__(self) -> None:
        self.now = T0
        self.records = InMemoryRecordingStore()
        self.progress = InMemoryProgress()
        self.ledger_store = InMemoryLedgerStore()
        self.audit = InMemoryAuditLog()
        access = AccessLog(ledger=Ledger(self.ledger_store, "main", None), audit=self.audit, clock=lambda: self.now)
        self.live = LiveCalls(
            InMemoryCapturingRecordings(lambda: [record for _, record in self.records.docs.values()]),
            self.progress,
            access,
            clock=lambda: self.now,
        )

    def common(self, recording_id: str) -> dict[str, str]:
        return {"recording_id": recording_id, "call_id": f"leg-{recording_id}", "recorder_instance": "recorder-7"}

    def start(self, recording_id: str, at: datetime) -> None:
        record_event(
            self.records,
            RecordingStarted(
                **self.common(recording_id),
                event_id=uuid.uuid4().hex,
                occurred_at=at,
                sequence=0,
                call_chain_id=f"chain-{recording_id}",
                observed_user=ObservedUser(id="tom", upn="tom@contoso.com", display_name="Tom Trader"),
                participants=[TOM, CLIENT],
                direction="outbound",
                call_type="peerToPeer",
                recorder_app_id="app",
                recorder_version="1.0.0",
                started_at=at,
                blob_container="recordings",
                blob_name=names.capture_track_name(recording_id, 0),
                manifest_blob_name=names.capture_manifest_name(recording_id, 0),
                heartbeat_interval_seconds=5.0,
            ),
        )

    def heartbeat(self, recording_id: str, at: datetime, state: str = "capturing") -> None:
        self.progress.write(
            CaptureProgress(
                **self.common(recording_id),
                state=state,  # type: ignore[arg-type]
                updated_at=at,
                started_at=T0,
                blob_container="recordings",
                blob_name=names.capture_track_name(recording_id, 0),
                heartbeat_interval_seconds=5.0,
            )
        )

    def stop(self, recording_id: str, at: datetime) -> None:
        record_event(
            self.records,
            RecordingStopped(
                **self.common(recording_id),
                event_id=uuid.uuid4().hex,
                occurred_at=at,
                sequence=9,
                reason="call_ended",
                ended_at=at,
                blob_container="recordings",
                blob_name=names.capture_track_name(recording_id, 0),
                manifest_blob_name=names.capture_manifest_name(recording_id, 0),
                duration_seconds=(at - T0).total_seconds(),
                bytes=0,
                block_count=0,
                sha256="0" * 64,
            ),
        )


def test_a_call_shows_while_recorded_with_its_people_and_heartbeat_and_leaves_when_it_stops() -> None:
    world = World()
    world.start("rec-1", T0)
    world.heartbeat("rec-1", T0 + timedelta(seconds=5))
    world.now = T0 + timedelta(seconds=6)

    (call,) = world.live.page({}, OFFICER, None).items

    assert (call.recording_id, call.recorder_instance, call.state, call.modalities) == (
        "rec-1",
        "recorder-7",
        "capturing",
        ["audio"],
    )
    assert [p.display_name or p.phone_number or p.id for p in call.participants] == ["Tom Trader", "+41445550100"]
    assert call.last_heartbeat == "2026-03-02T09:00:05.000000Z" and call.silent_for_seconds == 1.0
    world.stop("rec-1", T0 + timedelta(seconds=7))
    assert world.live.page({}, OFFICER, None).items == []


def test_a_participant_who_left_is_not_listed() -> None:
    world = World()
    world.start("rec-1", T0)
    left = CLIENT.model_copy(update={"left_at": T0 + timedelta(seconds=3)})
    record_event(
        world.records,
        ParticipantsChanged(
            **world.common("rec-1"),
            event_id=uuid.uuid4().hex,
            occurred_at=T0 + timedelta(seconds=3),
            sequence=1,
            participants=[TOM, left],
        ),
    )
    world.heartbeat("rec-1", T0 + timedelta(seconds=4))
    world.now = T0 + timedelta(seconds=5)
    (call,) = world.live.page({}, OFFICER, None).items
    assert [p.display_name for p in call.participants] == ["Tom Trader"]


@pytest.mark.parametrize(
    ("quiet", "state"),
    [(9.9, "capturing"), (10.0, "capturing"), (10.1, "silent")],
)
def test_a_recorder_is_silent_after_more_than_two_heartbeat_intervals(quiet: float, state: str) -> None:
    world = World()
    world.start("rec-1", T0)
    world.heartbeat("rec-1", T0)
    world.now = T0 + timedelta(seconds=quiet)
    (call,) = world.live.page({}, OFFICER, None).items
    assert call.state == state and call.heartbeat_interval_seconds == 5.0


def test_a_spilling_recorder_shows_as_spilling_and_one_without_any_heartbeat_goes_silent_from_its_start() -> None:
    world = World()
    world.start("rec-1", T0)
    world.heartbeat("rec-1", T0, state="spilling")
    world.start("rec-2", T0)  # never sent a heartbeat: its start event is the last sign of life
    world.now = T0 + timedelta(seconds=3)
    assert {c.recording_id: c.state for c in world.live.page({}, OFFICER, None).items} == {
        "rec-1": "spilling",
        "rec-2": "capturing",
    }
    world.now = T0 + timedelta(seconds=11)
    assert {c.state for c in world.live.page({}, OFFICER, None).items} == {"silent"}


def test_pages_follow_the_continuation_and_bad_limits_are_400s() -> None:
    world = World()
    for n in range(5):
        world.start(f"rec-{n}", T0 + timedelta(seconds=n))
    first = world.live.page({"limit": "2"}, OFFICER, None)
    rest = world.live.page({"limit": "3", "continuation": first.continuation or ""}, OFFICER, None)
    assert len(first.items) == 2 and first.continuation and rest.continuation is None
    assert {c.recording_id for c in first.items + rest.items} == {f"rec-{n}" for n in range(5)}
    for bad in ("0", "101", "-1", "x", "²"):
        with pytest.raises(InvalidInput):
            world.live.page({"limit": bad}, OFFICER, None)


def test_only_officers_and_auditors_read_it() -> None:
    world = World()
    admin = Principal(subject="admin-1", roles=frozenset({"Recorder.Admin"}))
    with pytest.raises(Forbidden):
        world.live.page({}, admin, None)
    assert world.audit.events == []


def test_every_poll_is_audited_with_the_calls_it_showed_and_the_ledger_keeps_one_entry_per_hour() -> None:
    world = World()
    world.start("rec-1", T0)
    for second in range(0, 10, 2):
        world.now = T0 + timedelta(seconds=second)
        world.live.page({}, OFFICER, "watching the floor")
    world.now = T0 + timedelta(hours=1)
    world.live.page({}, OFFICER, "watching the floor")

    assert [(e.action, e.actor, e.detail["results"]) for e in world.audit.events] == [
        ("live.read", "officer-1", ["rec-1"])
    ] * 6
    entries = [e for e in world.ledger_store.entries_for_subject("main", "recordings:live") if e.kind == "accessed"]
    assert [(e.actor, e.details["action"], e.details["reason"]) for e in entries] == [
        ("officer-1", "live.read", "watching the floor")
    ] * 2
