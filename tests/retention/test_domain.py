"""Retention's domain without I/O: which class a recording gets, when it is due, extend-only classes, who a hold
or a data subject matches, the lease, and the sweep's batches over in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import RecordingRecord, SealIndex
from verbatim.contracts.policy import EffectivePolicy, PolicySnapshot
from verbatim.contracts.recorder import CallParticipant, Identity, ObservedUser
from verbatim.contracts.retention import (
    DataSubject,
    HoldQuery,
    HoldRequest,
    LegalHold,
    Officer,
    RetentionClass,
    RetentionClassConfig,
)
from verbatim.ledger import InMemoryLedgerStore, Ledger
from verbatim.ledger.canonical import canonical_sha256
from verbatim.platform.errors import NotFound, RetentionViolation
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore
from verbatim.retention.classes import InMemoryRetentionClassStore, RetentionCatalog
from verbatim.retention.deletion import evaluate
from verbatim.retention.holds import matches, scope_sha256
from verbatim.retention.lease import SWEEP_LEASE, InMemoryLeaseStore, LeaseLost, Leases
from verbatim.retention.people import custodians_match, hold_scope_matches, keys_in_recording, keys_of_value
from verbatim.retention.recordings import InMemoryRetentionRecordings
from verbatim.retention.selection import ClassRetention
from verbatim.retention.sweep import RetentionSweep, SweepLimits

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def klass(name: str, days: int) -> RetentionClass:
    return RetentionClass(name=name, days=days, legal_basis=f"basis of {name}", defined_at=T0, applied_days=days)


CLASSES = {c.name: c for c in (klass("default", 1827), klass("cftc-oral", 366), klass("finra", 2192))}


def facts(user: str = "u-1", upn: str = "Trader@Contoso.com", **extra: object) -> RecordingFacts:
    return RecordingFacts(
        recording_id="r-1",
        call_id="c-1",
        recorder_instance="rec-0",
        observed_user=ObservedUser(id=user, upn=upn),
        started_at=T0,
        ended_at=T0 + timedelta(minutes=5),
        **extra,  # type: ignore[arg-type]
    )


def snapshot(
    user: str, at: datetime, retention_class: str | None, group: str | None = None, **kw: object
) -> PolicySnapshot:
    return PolicySnapshot(
        id=f"{user}:{at.isoformat()}",
        user_id=user,
        valid_from=at,
        effective=EffectivePolicy(
            user_id=user, policy_name="p", group_id=group, retention_class=retention_class, records=True
        ),
        **kw,  # type: ignore[arg-type]
    )


# --- class selection ----------------------------------------------------------------------------------------


def test_the_class_comes_from_the_observed_users_policy_at_call_time() -> None:
    store = InMemoryPolicySnapshotStore(
        [
            snapshot("u-1", T0 - timedelta(days=10), "cftc-oral"),
            snapshot("u-1", T0 + timedelta(days=1), "finra", changed_after=T0 + timedelta(hours=12)),
        ]
    )
    decision = ClassRetention(lambda: CLASSES, "default", snapshots=store).decide(facts(), T0 + timedelta(hours=1))
    assert decision.retention_class.name == "cftc-oral" and decision.until == T0 + timedelta(days=366)
    assert decision.term().basis == "basis of cftc-oral"


def test_the_longest_class_wins_between_policy_and_group_mapping_and_inside_a_change_window() -> None:
    grouped = InMemoryPolicySnapshotStore([snapshot("u-1", T0 - timedelta(days=10), "cftc-oral", group="g-1")])
    retention = ClassRetention(lambda: CLASSES, "default", snapshots=grouped, group_classes={"g-1": "finra"})
    decision = retention.decide(facts(), T0)
    assert decision.retention_class.name == "finra" and decision.rule == "group g-1"

    window = InMemoryPolicySnapshotStore(
        [
            snapshot("u-1", T0 - timedelta(days=10), "cftc-oral"),
            snapshot("u-1", T0 + timedelta(hours=1), "default", changed_after=T0 - timedelta(hours=1)),
        ]
    )
    decision = ClassRetention(lambda: CLASSES, "default", snapshots=window).decide(facts(), T0)
    assert decision.retention_class.name == "default" and "change window" in decision.rule


def test_without_a_policy_or_with_an_unknown_class_the_default_class_applies() -> None:
    store = InMemoryPolicySnapshotStore([snapshot("u-1", T0 - timedelta(days=1), "no-such-class")])
    retention = ClassRetention(lambda: CLASSES, "default", snapshots=store)
    assert retention.decide(facts(), T0).rule == "default class"
    assert retention.decide(facts(user="u-unknown"), T0).retention_class.name == "default"
    no_start = facts().model_copy(update={"started_at": None})
    assert retention.decide(no_start, T0 + timedelta(days=2)).until == T0 + timedelta(days=1829)
    with pytest.raises(LookupError):
        ClassRetention(lambda: {}, "default").decide(facts(), T0)


# --- due or not -------------------------------------------------------------------------------------------------


def test_evaluate_says_held_retained_or_due_and_counts_a_lengthened_class_at_once() -> None:
    until = T0 + timedelta(days=366)
    args = ("sealed", "cftc-oral", until, T0)
    assert evaluate(*args, ["h-1"], CLASSES, until + timedelta(days=1)).decision == "held"
    assert evaluate(*args, [], CLASSES, until - timedelta(seconds=1)).decision == "retained"
    assert evaluate(*args, [], CLASSES, until).decision == "due"
    longer = {**CLASSES, "cftc-oral": klass("cftc-oral", 400)}
    later = evaluate(*args, [], longer, until + timedelta(days=1))
    assert later.decision == "retained" and later.until == T0 + timedelta(days=400)
    assert evaluate("stopped", None, None, T0, [], CLASSES, until).decision == "not_sealed"
    assert evaluate("deleted", "x", until, T0, [], CLASSES, until).decision == "deleted"


# --- extend-only classes ----------------------------------------------------------------------------------------


def test_classes_are_created_lengthened_and_never_shortened_and_every_change_is_in_the_ledger() -> None:
    ledger = Ledger(InMemoryLedgerStore(), "main", None)
    catalog = RetentionCatalog(InMemoryRetentionClassStore(), ledger, lambda: T0)
    created = catalog.sync([RetentionClassConfig(name="finra", days=2192, legal_basis="FINRA 4511")])
    assert created.created == ["finra"]
    assert catalog.sync([RetentionClassConfig(name="finra", days=2192, legal_basis="FINRA 4511")]).created == []
    refused = catalog.sync([RetentionClassConfig(name="finra", days=365, legal_basis="FINRA 4511")])
    assert "shorter" in refused.refused["finra"] and catalog.get("finra").days == 2192
    with pytest.raises(RetentionViolation, match="can only be extended"):
        catalog.extend("finra", 2000, actor="o", reason="r")
    before, after, seq = catalog.extend("finra", 2557, actor="officer", reason="SEC asked")
    assert (before.days, after.days, after.applied_days) == (2192, 2557, 2192) and seq is not None
    assert catalog.extend("finra", 2557, actor="o", reason="again")[2] is None  # no change, no entry
    with pytest.raises(NotFound):
        catalog.extend("nope", 1, actor="o", reason="r")
    kinds = [e.kind for e in ledger.store.entries(ledger.chain, 1, 10)]
    assert kinds == ["retention.class_defined", "retention.extended"]


# --- who a hold or a subject matches ------------------------------------------------------------------------------


def with_participants(*participants: CallParticipant, **extra: object) -> RecordingFacts:
    return facts(participants=list(participants), **extra)


def test_custodians_match_the_observed_user_or_any_participant_by_id_upn_or_phone() -> None:
    call = with_participants(
        CallParticipant(participant_id="p1", identity=Identity(kind="user", id="U-2", upn="sales@contoso.com")),
        CallParticipant(
            participant_id="p2", identity=Identity(kind="phone", id="+442071234567"), phone_number="+442071234567"
        ),
    )
    assert custodians_match(["trader@CONTOSO.com"], call)
    assert custodians_match(["u-2"], call)
    assert custodians_match(["+44 (20) 7123-4567"], call)
    assert not custodians_match(["other@contoso.com", "u-3"], call)
    assert keys_in_recording(call)["upn:trader@contoso.com"] == "observed_user"
    assert keys_in_recording(call)["id:u-2"] == "participant"


def test_a_hold_matches_by_time_range_and_query() -> None:
    call = with_participants(
        CallParticipant(participant_id="p1", identity=Identity(kind="user", id="u-2", display_name="Carol Client"))
    )
    assert hold_scope_matches(["u-1"], T0 - timedelta(days=1), T0 + timedelta(minutes=1), None, call)
    assert not hold_scope_matches(["u-1"], T0 + timedelta(hours=1), None, None, call)
    assert not hold_scope_matches(["u-1"], None, T0 - timedelta(seconds=1), None, call)
    assert hold_scope_matches(["u-1"], None, None, HoldQuery(text="carol"), call)
    assert not hold_scope_matches(["u-1"], None, None, HoldQuery(text="dave"), call)
    assert hold_scope_matches([], None, None, HoldQuery(participants=["u-2"]), call)
    assert not hold_scope_matches(["u-1"], None, None, HoldQuery(call_types=["groupCall"]), call)


def test_requests_without_a_scope_are_invalid() -> None:
    with pytest.raises(ValidationError, match="custodians"):
        HoldRequest(matter_id="m", description="d")
    with pytest.raises(ValidationError, match="before"):
        HoldRequest(matter_id="m", description="d", custodians=["u"], **{"from": T0}, until=T0 - timedelta(days=1))
    with pytest.raises(ValidationError, match="at least one"):
        DataSubject()


def held_by(**fields: object) -> LegalHold:
    base: dict[str, object] = {
        "id": "hold-1",
        "matter_id": "M-1",
        "description": "probe",
        "created_by": Officer(subject="officer-a"),
        "created_at": T0,
    }
    return LegalHold.model_validate(base | fields)


def test_a_hold_by_recording_id_covers_exactly_the_listed_recordings() -> None:
    """Listed recordings are held whatever the hold's time range; a hold that names no people holds nothing else
    (with no custodians the people-matching alone would select every recording)."""
    listed = facts().model_copy(update={"recording_id": "rec-listed"})
    other = facts().model_copy(update={"recording_id": "rec-other"})
    only_ids = held_by(recording_ids=["rec-listed"], until=T0 - timedelta(days=30))
    both = held_by(recording_ids=["rec-listed"], custodians=["u-9"])

    assert matches(only_ids, listed) and not matches(only_ids, other)
    assert matches(both, listed) and not matches(both, other)
    assert matches(held_by(custodians=["u-1"]), other)  # a hold by people as before
    assert not matches(only_ids.model_copy(update={"status": "released"}), listed)


def test_a_hold_request_by_recording_ids_is_validated() -> None:
    request = HoldRequest.model_validate({"matterId": "m", "description": "d", "recordingIds": ["a1b2", "c-3"]})
    assert request.recording_ids == ["a1b2", "c-3"]
    for bad in (["a1b2", "a1b2"], [" a1b2"], ["a" * 129], [""], ["a/b"]):
        with pytest.raises(ValidationError):
            HoldRequest.model_validate({"matterId": "m", "description": "d", "recordingIds": bad})


def test_a_stored_version_1_hold_reads_and_its_scope_hashes_as_before() -> None:
    stored = held_by(custodians=["Trader@Contoso.com"]).model_dump(mode="json", by_alias=True)
    stored = {k: v for k, v in stored.items() if k != "recordingIds"} | {"schemaVersion": 1}

    hold = LegalHold.model_validate(stored)

    assert hold.schema_version == 2 and hold.recording_ids == [] and hold.selects_people
    before = {  # the scope as the ledger committed to it before holds by id existed
        "matter_id": "M-1",
        "description": "probe",
        "custodians": ["trader@contoso.com"],
        "from": None,
        "until": None,
        "query": None,
    }
    assert scope_sha256(hold) == canonical_sha256(before)
    assert scope_sha256(hold.model_copy(update={"recording_ids": ["r1"]})) != scope_sha256(hold)


@given(st.lists(st.sampled_from([" ", "-", "(", ")", "."]), max_size=6), st.text("0123456789", min_size=8, max_size=13))
def test_a_phone_number_matches_however_it_is_written(separators: list[str], digits: str) -> None:
    written = "+" + "".join(d + (separators[i] if i < len(separators) else "") for i, d in enumerate(digits))
    assert f"phone:+{digits}" in keys_of_value(written)


# --- the lease ----------------------------------------------------------------------------------------------------


def test_the_lease_admits_one_holder_until_it_expires_and_hands_over_the_cursor() -> None:
    leases = Leases(InMemoryLeaseStore(), timedelta(minutes=5))
    first = leases.acquire(SWEEP_LEASE, "a", "run-a", T0)
    assert first is not None and leases.acquire(SWEEP_LEASE, "b", "run-b", T0 + timedelta(minutes=4)) is None
    first = leases.renew(first, T0 + timedelta(minutes=4), "2025-04-01T00:00:00Z")
    assert leases.acquire(SWEEP_LEASE, "b", "run-b", T0 + timedelta(minutes=8)) is None  # renewed
    taken = leases.acquire(SWEEP_LEASE, "b", "run-b", T0 + timedelta(minutes=10))
    assert taken is not None and taken.resumed_from == "2025-04-01T00:00:00Z"
    with pytest.raises(LeaseLost):
        leases.renew(first, T0 + timedelta(minutes=10), None)
    leases.release(taken, T0 + timedelta(minutes=11), finished=True)
    again = leases.acquire(SWEEP_LEASE, "c", "run-c", T0 + timedelta(minutes=12))
    assert again is not None and again.resumed_from is None


# --- the sweep's batches --------------------------------------------------------------------------------------------


class RecordingDeleterStub:
    def __init__(self, recordings: InMemoryRetentionRecordings) -> None:
        self.recordings = recordings
        self.deleted: list[str] = []

    def delete(self, recording_id: str, **_: object) -> None:
        found = self.recordings.read(recording_id)
        assert found is not None
        self.recordings.replace(found.record.model_copy(update={"status": "deleted"}), found.etag)
        self.deleted.append(recording_id)


def sealed(recording_id: str, start: datetime, holds: list[str] | None = None) -> RecordingRecord:
    return RecordingRecord(
        id=recording_id,
        status="sealed",
        facts=facts().model_copy(update={"recording_id": recording_id, "started_at": start}),
        seal=SealIndex(
            manifest_blob="m",
            manifest_sha256="0" * 64,
            ledger_seq=1,
            evidence_blob="e",
            evidence_sha256="0" * 64,
            duration_seconds=1.0,
            interrupted=False,
            retention_class="cftc-oral",
            retention_until=start + timedelta(days=366),
            legal_holds=holds or [],
            worm="azure",
            sealed_at=start,
        ),
    )


def test_the_sweep_deletes_in_bounded_batches_renewing_its_lease_with_a_cursor() -> None:
    recordings = InMemoryRetentionRecordings()
    for i in range(7):
        recordings.put(sealed(f"r-{i}", T0 + timedelta(hours=i), holds=["h"] if i == 3 else None))
    recordings.put(sealed("r-late", T0 + timedelta(days=1, hours=1)))  # due an hour after the sweep
    deleter = RecordingDeleterStub(recordings)
    store = InMemoryLeaseStore()
    renewals: list[str | None] = []
    leases = Leases(store, timedelta(minutes=5))
    real_renew = leases.renew

    def renew(lease, now, cursor):  # type: ignore[no-untyped-def]
        renewals.append(cursor)
        return real_renew(lease, now, cursor)

    leases.renew = renew  # type: ignore[method-assign]
    now = T0 + timedelta(days=367)
    sweep = RetentionSweep(
        recordings,
        deleter,
        lambda: CLASSES,
        leases,
        limits=SweepLimits(batch_size=2, page_size=4),
        clock=lambda: now,  # type: ignore[arg-type]
    )
    report = sweep.run()
    assert report.outcome == "completed" and report.held == 1 and report.evaluated == 8
    assert deleter.deleted == [f"r-{i}" for i in (0, 1, 2, 4, 5, 6)] and report.retained == 1
    assert len(renewals) >= 4 and renewals[0] is not None
    state, _ = store.docs[SWEEP_LEASE]
    assert state.holder is None and state.cursor is None and state.completed_at == now
