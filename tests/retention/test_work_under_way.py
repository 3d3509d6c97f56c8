"""Work already under way when the retention sweep deletes a recording never leaves the recording's data behind.

The access copy is made after the evidence seal, by the `access-copies` trigger, possibly minutes late (a killed
Functions host holds its message for the visibility timeout). The sweep's deletion can therefore land at any point
while the copy is made: each interleaving is forced here on the real parts (Azurite, the Cosmos emulator, the real
encoder and ledger) by running the sweep at one chosen step of `activities.make_access_copy`. Whatever the
moment, nothing of the recording is left in `recordings`, scratch or captures, everything deleted is in the
ledger (the deletion certificate, then a `deleted.late` entry for what was written after it), and the tombstone
keeps no personal data — late recorder events included. A hold placed while the deletion runs is in
test_hold_race.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest

from tests.retention.world import CLIENT_PHONE, T0, TRADER, RetentionWorld, phone_participant
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.lifecycle import AccessCopyRequest, RecordingRecord
from verbatim.contracts.recorder import (
    CallParticipant,
    Identity,
    ObservedUser,
    ParticipantsChanged,
    RecordingContinued,
    RecordingStarted,
)
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import DeletionUnderWay, finalised_name
from verbatim.retention.deletion import LATE_DELETION
from verbatim.retention.recordings import CosmosRetentionRecordings
from verbatim.retention.storage import RecordingBlobs, StoredObject
from verbatim.search.index import CosmosRecordingIndex, SearchQuery


class HostKilled(RuntimeError):
    """The Functions host died mid-invocation: the queue delivers the message again later."""


class Step:
    """`inner` with one method wrapped: the first call whose arguments `when` accepts runs `before` first (and,
    with `then_kill`, dies right after the call, as a killed host would)."""

    def __init__(
        self,
        inner: object,
        method: str,
        when: Callable[..., bool],
        before: Callable[[], object],
        *,
        then_kill: bool = False,
    ) -> None:
        self._inner, self._method, self._when, self._then_kill = inner, method, when, then_kill
        self._before: Callable[[], object] | None = before
        self.ran = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def step(*args: Any, **kwargs: Any) -> Any:
            before = self._before
            if before is None or not self._when(*args, **kwargs):
                return attr(*args, **kwargs)
            self._before = None
            before()
            self.ran = True
            result = attr(*args, **kwargs)
            if self._then_kill:
                raise HostKilled(f"the host died after {self._method}")
            return result

        return step


def named(suffix: str) -> Callable[..., bool]:
    return lambda name, *_, **__: str(name).endswith(suffix)


def appending(kind: str) -> Callable[..., bool]:
    return lambda entry_kind, *_, **__: str(entry_kind) == kind


def expired_recording(world: RetentionWorld) -> RecordingRecord:
    """A 30-day recording whose evidence is sealed and whose access copy is still to be made, 31 days on."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(access_pending=True, seconds=9.0, others=[phone_participant("p2", CLIENT_PHONE)])
    assert record.seal is not None and record.seal.parts[0].access_pending
    world.clock.set(T0 + timedelta(days=31))
    return record


def request(record: RecordingRecord) -> AccessCopyRequest:
    return AccessCopyRequest(recording_id=record.id, part=0, finalised_blob=finalised_name(record.id, 0))


def sweep(world: RetentionWorld, recording_id: str) -> Callable[[], None]:
    def run() -> None:
        report = world.runtime.sweep.run()
        assert report.deleted == [recording_id], report

    return run


def kinds(world: RetentionWorld, recording_id: str) -> list[str]:
    return [e.kind for e in world.runtime.ledger.entries_for_subject(f"recording:{recording_id}")]


def assert_nothing_left(world: RetentionWorld, recording_id: str) -> None:
    deps = world.deps
    assert world.blobs_of(recording_id) == []
    assert deps.scratch.names(f"access-chunks/{recording_id}/") == []
    assert not deps.scratch.exists(finalised_name(recording_id, 0))
    assert deps.staging.names(f"{capture_prefix(recording_id, 0)}/", uncommitted=True) == []
    tombstone = world.record(recording_id)
    assert tombstone.status == "deleted"
    assert tombstone.facts.observed_user is None and tombstone.facts.participants == []
    assert tombstone.facts.phone_numbers == []


# Where the sweep lands while the access copy is made: what `make_access_copy` is doing at that moment.
WHILE_ENCODING = "while its chunks are encoded (the evidence goes from under the encoder)"
BEFORE_ACCESS_COPY = "after the chunks are encoded, before access.opus is written"
BEFORE_ACCESS_SEAL = "after access.opus is written, before access.json"
BEFORE_ACCESS_ENTRY = "after access.json is written, before the access_copy.sealed entry"


@pytest.mark.parametrize("moment", [WHILE_ENCODING, BEFORE_ACCESS_COPY, BEFORE_ACCESS_SEAL, BEFORE_ACCESS_ENTRY])
def test_a_deletion_while_the_access_copy_is_made_leaves_nothing_behind(world: RetentionWorld, moment: str) -> None:
    record = expired_recording(world)
    deps = world.deps
    run_sweep = sweep(world, record.id)
    step: Step
    if moment == WHILE_ENCODING:
        step = Step(deps.scratch, "write", named(".vopk"), run_sweep)
        deps = dataclasses.replace(deps, scratch=step)  # type: ignore[arg-type]
    elif moment in (BEFORE_ACCESS_COPY, BEFORE_ACCESS_SEAL):
        suffix = "/access.opus" if moment == BEFORE_ACCESS_COPY else "/access.json"
        step = Step(deps.recordings, "write", named(suffix), run_sweep)
        deps = dataclasses.replace(deps, recordings=step)  # type: ignore[arg-type]
    else:
        step = Step(deps.ledger, "append", appending(EntryKind.ACCESS_COPY_SEALED), run_sweep)
        deps = dataclasses.replace(deps, ledger=step)  # type: ignore[arg-type]

    sealed = activities.make_access_copy(deps, request(record))

    assert step.ran
    assert sealed.access_manifest_blob is None  # nothing was sealed for a recording that is gone
    assert_nothing_left(world, record.id)
    tombstone = world.record(record.id)
    assert tombstone.seal is not None and tombstone.seal.access_copy_blob is None
    assert tombstone.seal.parts[0].access_manifest_blob is None
    history = kinds(world, record.id)
    assert history[:2] == [EntryKind.SEALED, EntryKind.DELETED]
    if moment == WHILE_ENCODING:  # the copy was never made
        assert history[2:] == []
    elif moment in (BEFORE_ACCESS_COPY, BEFORE_ACCESS_SEAL):
        # What came after the certificate (access.opus; access.json, never sealed) is certified apart.
        assert history[2:] == [LATE_DELETION]
    else:  # both were there when the deletion listed the folder: the certificate has them
        assert history[2:] == [EntryKind.ACCESS_COPY_SEALED]
    entries = world.runtime.ledger.entries_for_subject(f"recording:{record.id}")
    certified = {
        str(b["blob"]).rsplit("/", 1)[1]
        for e in entries
        if e.kind in (EntryKind.DELETED, LATE_DELETION)
        for b in e.details["deleted"]  # type: ignore[union-attr]
        if isinstance(b, dict)
    }
    assert {"audio.flac", "capture.json", "manifest.json"} <= certified
    assert ("access.opus" in certified) == (moment != WHILE_ENCODING)
    deletion = tombstone.deletion
    assert deletion is not None
    for late in (e for e in entries if e.kind == LATE_DELETION):
        assert late.details["certificate_seq"] == deletion.certificate_seq


def test_a_host_killed_after_writing_the_copy_of_a_deleted_recording_leaves_nothing_once_delivered_again(
    world: RetentionWorld,
) -> None:
    record = expired_recording(world)
    step = Step(world.deps.recordings, "write", named("/access.opus"), sweep(world, record.id), then_kill=True)
    killed = dataclasses.replace(world.deps, recordings=step)  # type: ignore[arg-type]
    with pytest.raises(HostKilled):
        activities.make_access_copy(killed, request(record))
    assert [n.rsplit("/", 1)[1] for n in world.blobs_of(record.id)] == ["access.opus"]  # written after the deletion

    activities.make_access_copy(world.deps, request(record))  # the message, delivered again

    assert_nothing_left(world, record.id)
    assert kinds(world, record.id) == [EntryKind.SEALED, EntryKind.DELETED, LATE_DELETION]


class ClaimedRecordings(CosmosRetentionRecordings):
    """Runs `after_claim` once, right after the sweep's claim (status `deleting`) is stored."""

    def __init__(self, real: CosmosRetentionRecordings, after_claim: Callable[[], None]) -> None:
        super().__init__(real._container)
        self.after_claim: Callable[[], None] | None = after_claim

    def replace(self, record: RecordingRecord, etag: str) -> bool:
        stored = super().replace(record, etag)
        action = self.after_claim
        if stored and record.status == "deleting" and action is not None:
            self.after_claim = None
            action()
        return stored


def test_the_access_copy_of_a_recording_being_deleted_is_tried_again_after_the_deletion(
    world: RetentionWorld,
) -> None:
    record = expired_recording(world)
    refused: list[DeletionUnderWay] = []

    def deliver() -> None:
        with pytest.raises(DeletionUnderWay) as raised:
            activities.make_access_copy(world.deps, request(record))
        refused.append(raised.value)

    world.runtime.recordings = ClaimedRecordings(world.runtime.recordings, deliver)  # type: ignore[assignment]
    world.runtime.sweep.run()
    assert len(refused) == 1 and refused[0].status == 409
    assert world.record(record.id).status == "deleted"

    activities.make_access_copy(world.deps, request(record))  # delivered again: the deletion is done

    assert_nothing_left(world, record.id)
    assert kinds(world, record.id) == [EntryKind.SEALED, EntryKind.DELETED]


def test_late_recorder_events_write_no_personal_data_back_into_the_tombstone(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(access_after=True, others=[phone_participant("p2", CLIENT_PHONE)])
    world.clock.set(T0 + timedelta(days=31))
    assert world.runtime.sweep.run().deleted == [record.id]
    prefix = capture_prefix(record.id, 0)
    common: dict[str, Any] = {
        "recording_id": record.id,
        "call_id": f"leg-{record.id}",
        "recorder_instance": "recorder-0",
        "occurred_at": T0 + timedelta(seconds=1),
    }
    late_participant = CallParticipant(
        participant_id="p3", identity=Identity(kind="user", id="u-late", upn="late@contoso.com")
    )
    started = RecordingStarted(
        **common,
        event_id="late-started",
        sequence=7,
        blob_container=world.settings.captures_container,
        blob_name=track_blob_name(prefix),
        manifest_blob_name=manifest_blob_name(prefix),
        call_chain_id=f"chain-{record.id}",
        tenant_id="tenant-1",
        observed_user=ObservedUser(id=TRADER[0], upn=TRADER[1], display_name="Observed User"),
        participants=[late_participant, phone_participant("p2", CLIENT_PHONE)],
        direction="outbound",
        call_type="groupCall",
        phone_numbers=[CLIENT_PHONE],
        recorder_app_id="app-recorder",
        recorder_version="1.0.0",
        started_at=T0,
        heartbeat_interval_seconds=5.0,
    )
    changed = ParticipantsChanged(**common, event_id="late-roster", sequence=8, participants=[late_participant])
    before = world.record(record.id)

    for event in (started, changed):
        activities.receive_event(world.deps, event)

    after = world.record(record.id)
    assert after.status == "deleted"
    assert after.facts == before.facts and after.facts.observed_user is None
    assert after.facts.participants == [] and after.facts.phone_numbers == []
    assert 7 not in after.sequences_seen and 8 not in after.sequences_seen


class DeletionDuringIndexWrite(CosmosRecordingIndex):
    """The search index as reconciliation writes it: `action` runs right after the write's first read of the
    recording's entries (the deletion lands between that read and the write)."""

    def __init__(self, real: CosmosRecordingIndex, action: Callable[[], None]) -> None:
        super().__init__(real._container)
        self.action: Callable[[], None] | None = action

    def _documents(self, recording_id: str) -> list[dict[str, Any]]:
        found = super()._documents(recording_id)
        action, self.action = self.action, None
        if action is not None:
            action()
        return found


@pytest.mark.parametrize("landing", ["before the late write", "between the late write's read and its write"])
def test_a_search_entry_written_late_from_before_the_deletion_never_brings_the_people_back(
    world: RetentionWorld, landing: str
) -> None:
    """Reconciliation reads the record, then writes its search entry seconds later; a deletion in between replaces
    the entry with the tombstone's (no people), which the late write must not undo."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(access_after=True, others=[phone_participant("p2", CLIENT_PHONE)])
    index = world.container.recording_index
    assert record.seal is not None and record.seal.access_copy_blob is not None
    before_copy = record.model_copy(update={"seal": record.seal.model_copy(update={"access_copy_blob": None})})
    index.put(before_copy)  # indexed once its evidence was sealed; the late write says its copy is sealed too
    assert [r.id for r in index.search(SearchQuery(participant=CLIENT_PHONE))[0]] == [record.id]
    world.clock.set(T0 + timedelta(days=31))
    if landing == "before the late write":
        sweep(world, record.id)()
        index.put(record)  # the record as read before the deletion
    else:
        DeletionDuringIndexWrite(index, sweep(world, record.id)).put(record)

    entry = index.get(record.id)
    assert entry is not None and entry.status == "deleted"
    assert entry.observed_user.id is None and entry.observed_user.user_principal_name is None
    assert entry.participants == []
    for person in (CLIENT_PHONE, TRADER[0], TRADER[1]):
        assert index.search(SearchQuery(participant=person))[0] == []
        assert index.search(SearchQuery(observed_user=person))[0] == []


def test_a_recording_whose_continuation_is_still_open_is_deleted_only_once_every_part_is_sealed(
    world: RetentionWorld,
) -> None:
    """A continuation (what the recorder captured after a salvage) is sealed into the same folder after part 0:
    a deletion before then would leave that part behind, so the sweep waits for it (and reports why)."""
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(access_after=True)
    continued = RecordingContinued(
        recording_id=record.id,
        call_id=f"leg-{record.id}",
        recorder_instance="recorder-0",
        occurred_at=T0 + timedelta(seconds=2),
        event_id="continued-1",
        sequence=5,
        generation=1,
        first_block=3,
        first_sample=48_000,
        kept_blocks=3,
        reason="the lifecycle fenced generation 0",
    )
    activities.receive_event(world.deps, continued)
    world.clock.set(T0 + timedelta(days=31))

    report = world.runtime.sweep.run()
    assert report.deleted == [] and report.retained == 1
    status = world.runtime.deleter.status(record.id)
    assert not status.deletable and "part 1 of the recording is still being captured or sealed" in status.reason
    assert len(world.blobs_of(record.id)) == 5

    activities.mark_not_recorded(world.deps, record.id, "the continuation held no audio", part=1)
    assert world.runtime.sweep.run().deleted == [record.id]
    assert world.blobs_of(record.id) == []


class WrittenAfterTheListing(RecordingBlobs):
    """The recordings container as the deletion sees it: `write` runs once, after the deletion listed the folder
    (a writer under way that wrote then, and looked while the record still said `deleting`)."""

    def __init__(self, real: RecordingBlobs, write: Callable[[], None]) -> None:
        self.container = real.container
        self._real = real
        self._write: Callable[[], None] | None = write

    def objects(self, record: RecordingRecord) -> list[StoredObject]:
        return self._real.objects(record)

    def everything(self, record: RecordingRecord, *, scratch: bool = True) -> list[StoredObject]:
        return self._real.everything(record, scratch=scratch)

    def delete(self, objects: Iterable[StoredObject]) -> int:
        deleted = self._real.delete(objects)
        write, self._write = self._write, None
        if write is not None:
            write()
        return deleted


def test_what_is_written_after_the_deletion_listed_the_folder_goes_with_the_tombstone(world: RetentionWorld) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal(access_after=True)
    world.clock.set(T0 + timedelta(days=31))
    late_name = f"{record.id}/pair-0123456789abcdef.json"
    deleter = world.runtime.deleter
    deleter._blobs = WrittenAfterTheListing(  # type: ignore[assignment]
        deleter._blobs, lambda: world.deps.recordings.write(late_name, b"{}", content_type="application/json")
    )

    assert world.runtime.sweep.run().deleted == [record.id]

    assert world.blobs_of(record.id) == []
    assert kinds(world, record.id)[-2:] == [EntryKind.DELETED, LATE_DELETION]
    late = world.runtime.ledger.entries_for_subject(f"recording:{record.id}")[-1]
    assert [b["blob"] for b in late.details["deleted"]] == [late_name]  # type: ignore[union-attr,index]
