"""Issue 21: two recorder instances record the same call leg for the same policy user (ConcurrentInvitationCount 2
or a paired application, office-docs-powershell New-CsTeamsComplianceRecordingApplication.md). The lifecycle
pairs the two recordings by tenant, call chain, observed user and policy; seals both (neither is discarded);
computes the union of what their sealed evidence covers, attributing each stretch to the recording whose
evidence holds it; and seals that pair manifest into each member's folder with a `paired` ledger entry, so
each recording still verifies on its own. Service level, over the in-memory ports (as tests/lifecycle/
test_service.py); the Cosmos adapter of the pair store is proven on the emulator at the end."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import numpy as np
import pytest
from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos.documents import SSLConfiguration

from devstack.testkit.captures import RATE, speech, stage_capture
from tests.conftest import Cosmos
from tests.lifecycle.events import T0, started, stopped
from tests.lifecycle.memory import memory_deps
from tests.lifecycle.test_access_copy import decode_to_16k
from tests.lifecycle.test_service import assert_written_once, run_to_seal, verify
from verbatim.contracts.lifecycle import PairMember, PairSpan, RecordingPair, RecordingStatus
from verbatim.contracts.recorder import CaptureProgress, ObservedUser, RecordingStarted
from verbatim.evidence.progress import InMemoryProgress
from verbatim.evidence.worm import InMemoryWorm
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.pairs import (
    CosmosPairStore,
    InMemoryPairStore,
    PairKey,
    attribute,
    join,
)
from verbatim.lifecycle.records import record_event
from verbatim.platform.blobs import InMemoryBlobStore

CHAIN = "chain-shared"
KEY = PairKey("tenant-1", CHAIN, "u-trader", "StrictRecording")


@pytest.fixture
def deps() -> LifecycleDeps:
    return memory_deps(progress=InMemoryProgress(), pairs=InMemoryPairStore())


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def member(
    rid: str, instance: str, *spans: tuple[float, float, bool], status: RecordingStatus = "sealed"
) -> PairMember:
    return PairMember(
        recording_id=rid,
        recorder_instance=instance,
        call_id=f"leg-{rid}",
        status=status,
        final=status in ("sealed", "not_recorded"),
        spans=[PairSpan(part=i, start=at(a), end=at(b), interrupted=x) for i, (a, b, x) in enumerate(spans)],
        manifest_blob=f"{rid}/manifest.json" if spans else None,
        manifest_sha256="0" * 64 if spans else None,
        ledger_seq=1 if spans else None,
    )


# --- the union and its attribution (pure) -------------------------------------------------------------------


def test_the_union_of_a_killed_capture_and_a_whole_one_is_attributed_to_each_instance_where_it_holds_the_audio() -> (
    None
):
    killed = member("rec-a", "recorder-1", (0.0, 8.0, True))
    survivor = member("rec-b", "recorder-2", (0.04, 20.0, False))
    coverage = attribute([killed, survivor])
    assert [(i.recording_id, i.recorder_instance, i.start, i.end) for i in coverage] == [
        ("rec-a", "recorder-1", at(0.0), at(8.0)),  # it held the start, and keeps it while it covers
        ("rec-b", "recorder-2", at(8.0), at(20.0)),
    ]
    assert sum(i.seconds for i in coverage) == 20.0


def test_gaps_in_one_capture_are_filled_from_the_other_and_a_gap_in_both_stays_a_gap() -> None:
    a = member("rec-a", "recorder-1", (0.0, 5.0, True), (9.0, 20.0, False))  # salvaged, then continued
    b = member("rec-b", "recorder-2", (3.0, 7.0, True), (12.0, 14.0, True))
    coverage = attribute([a, b])
    assert [(i.recording_id, i.part, i.start, i.end) for i in coverage] == [
        ("rec-a", 0, at(0.0), at(5.0)),
        ("rec-b", 0, at(5.0), at(7.0)),
        ("rec-a", 1, at(9.0), at(20.0)),  # 7 s to 9 s: neither captured it, nobody is credited with it
    ]
    for interval in coverage:  # every stretch is inside a sealed span of the member it is attributed to
        owner = a if interval.recording_id == "rec-a" else b
        assert any(s.start <= interval.start and s.end >= interval.end for s in owner.spans)


def test_the_pair_is_the_same_whatever_order_its_updates_arrive_in_and_however_often() -> None:
    updates = [
        member("rec-a", "recorder-1", status="capturing"),
        member("rec-b", "recorder-2", status="capturing"),
        member("rec-a", "recorder-1", status="salvaged"),
        member("rec-a", "recorder-1", (0.0, 8.0, True)),
        member("rec-b", "recorder-2", status="stopped"),
        member("rec-b", "recorder-2", (0.0, 20.0, False)),
    ]
    results = set()
    for order in itertools.permutations(updates):
        pair: RecordingPair | None = None
        for update in [*order, *order[:2]]:  # and a redelivery of the first two
            pair = join(pair, KEY, update)
        assert pair is not None
        results.add(pair.model_dump_json())
    (final,) = results
    pair = RecordingPair.model_validate_json(final)
    assert pair.complete and [m.status for m in pair.members] == ["sealed", "sealed"]
    assert pair.union_seconds == 20.0


def test_a_pair_is_not_complete_while_a_member_is_still_capturing_or_alone() -> None:
    alone = join(None, KEY, member("rec-b", "recorder-2", (0.0, 20.0, False)))
    assert not alone.complete
    waiting = join(alone, KEY, member("rec-a", "recorder-1", status="capturing"))
    assert not waiting.complete and waiting.union_seconds == 20.0


# --- the lifecycle: two recordings of one call leg ------------------------------------------------------------


def leg(recording_id: str, instance: str, user: str = "u-trader", start: float = 0.0) -> RecordingStarted:
    event = started(recording_id, heartbeat=5.0, at=at(start))
    return event.model_copy(
        update={
            "recorder_instance": instance,
            "call_chain_id": CHAIN,
            "tenant_id": "tenant-1",
            "observed_user": ObservedUser(id=user, upn=f"{user}@contoso.com"),
            "policy": event.policy.model_copy(update={"identifier": "StrictRecording"}),
        }
    )


def salvaged_after_a_kill(deps: LifecycleDeps, recording_id: str, seconds: float) -> None:
    """The instance was SIGKILLed: its staged blocks are there, nothing committed, its heartbeat stopped."""
    staged = stage_capture(deps.staging, recording_id, speech(seconds), commit=False, started_at=T0)
    assert deps.staging.delete(staged.capture_blob)
    progress = deps.progress
    assert isinstance(progress, InMemoryProgress)
    progress.write(
        CaptureProgress(
            recording_id=recording_id,
            call_id=f"call-{recording_id}",
            recorder_instance="recorder-1",
            state="capturing",
            updated_at=at(seconds),
            started_at=T0,
            blob_container="captures",
            blob_name=staged.evidence_blob,
            heartbeat_interval_seconds=5.0,
        )
    )
    deps.clock = lambda: at(seconds + 60)
    assert activities.check_recording(deps, recording_id).state == "silent"
    activities.salvage(deps, recording_id)
    run_to_seal(deps, recording_id)


def two_legs(deps: LifecycleDeps) -> tuple[str, str]:
    killed, survivor = (f"rec-{uuid.uuid4().hex[:8]}" for _ in range(2))
    activities.receive_event(deps, leg(killed, "recorder-1"))
    # The second invitation was answered half a second later than the first.
    activities.receive_event(deps, leg(survivor, "recorder-2", start=0.5))
    staged = stage_capture(deps.staging, survivor, speech(12), started_at=at(0.5))
    activities.receive_event(deps, stopped(survivor, staged.manifest.tracks[0].sha256, 12.0, at=at(0.5)))
    run_to_seal(deps, survivor)
    return killed, survivor


def test_both_captures_are_sealed_and_the_pair_manifest_attributes_the_union_to_the_instances(
    deps: LifecycleDeps,
) -> None:
    killed, survivor = two_legs(deps)
    pairs = deps.pairs
    assert isinstance(pairs, InMemoryPairStore)
    waiting = pairs.get(KEY.id)
    assert waiting is not None and not waiting.complete and waiting.manifests == []  # the killed one is not final

    salvaged_after_a_kill(deps, killed, 6.0)

    pair = pairs.get(KEY.id)
    assert pair is not None and pair.complete
    assert {m.recording_id: m.status for m in pair.members} == {killed: "sealed", survivor: "sealed"}
    assert pair.union_seconds == 12.5
    assert [(i.recorder_instance, i.start, i.end) for i in pair.coverage] == [
        ("recorder-1", at(0.0), at(6.0)),  # the killed instance's salvaged blocks hold the first 6 s
        ("recorder-2", at(6.0), at(12.5)),
    ]
    assert sorted(ref.recording_id for ref in pair.manifests) == sorted([killed, survivor])
    for recording_id in (killed, survivor):
        record = deps.store.get(recording_id)
        assert record is not None and record.status == "sealed"  # neither is discarded
        assert verify(deps, recording_id) == []
    assert_written_once(deps)
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    (a,) = [n for n in recordings.names(f"{killed}/") if "/pair-" in n and n.endswith(".json")]
    (b,) = [n for n in recordings.names(f"{survivor}/") if "/pair-" in n and n.endswith(".json")]
    assert recordings.read(a) == recordings.read(b)  # one manifest, in each member's folder
    worm = deps.worm
    assert isinstance(worm, InMemoryWorm)
    assert {a, b} <= {name for name, _ in worm.until}  # kept as long as the member's evidence


def test_sealing_the_pair_again_writes_nothing_and_appends_nothing(deps: LifecycleDeps) -> None:
    killed, survivor = two_legs(deps)
    salvaged_after_a_kill(deps, killed, 6.0)
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    size = ledger.size()
    pairs = deps.pairs
    assert isinstance(pairs, InMemoryPairStore)
    writes = pairs.writes
    for recording_id in (survivor, killed, survivor):  # retried index activities, in any order
        record = deps.store.get(recording_id)
        assert record is not None
        activities.pair_recording(deps, record)
    assert ledger.size() == size and pairs.writes == writes
    assert_written_once(deps)


def test_a_changed_pair_manifest_fails_verification_of_each_member(deps: LifecycleDeps) -> None:
    killed, survivor = two_legs(deps)
    salvaged_after_a_kill(deps, killed, 6.0)
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    (name,) = [n for n in recordings.names(f"{survivor}/") if "/pair-" in n and n.endswith(".json")]
    recordings.write(name, recordings.read(name).replace(b"recorder-1", b"recorder-9"))
    assert "pair.altered" in verify(deps, survivor)
    assert "pair.altered" not in verify(deps, killed)  # its own copy is intact


def test_the_pair_access_copy_is_the_union_each_stretch_from_the_capture_that_holds_it(deps: LifecycleDeps) -> None:
    """The killed instance's capture holds 0-6 s, the survivor's 0.5-12.5 s: the pair's access copy plays 12.5 s,
    the first 6 from the killed capture (so the survivor's missing first half second is filled) and the rest from
    the survivor's, each stretch its own evidence; the same bytes in both folders, pinned by each `paired` entry,
    kept as the evidence is, and checked by verify."""
    killed, survivor = two_legs(deps)
    salvaged_after_a_kill(deps, killed, 6.0)
    pairs = deps.pairs
    assert isinstance(pairs, InMemoryPairStore)
    pair = pairs.get(KEY.id)
    assert pair is not None and pair.complete
    recordings = deps.recordings
    assert isinstance(recordings, InMemoryBlobStore)
    (a,) = [n for n in recordings.names(f"{killed}/") if n.endswith(".opus") and "/pair-" in n]
    (b,) = [n for n in recordings.names(f"{survivor}/") if n.endswith(".opus") and "/pair-" in n]
    copy = recordings.read(a)
    assert recordings.read(b) == copy
    assert {ref.access_copy_blob for ref in pair.manifests} == {a, b}
    assert {ref.access_copy_sha256 for ref in pair.manifests} == {hashlib.sha256(copy).hexdigest()}
    worm = deps.worm
    assert isinstance(worm, InMemoryWorm)
    assert {a, b} <= {name for name, _ in worm.until}

    audio = decode_to_16k(copy)
    assert abs(len(audio) - 12.5 * RATE) <= 1 and pair.union_seconds == 12.5
    killed_audio, survivor_audio = speech(6.0), speech(12.0)  # what each capture holds (stage_capture's audio)
    expected = np.concatenate([killed_audio, survivor_audio[int(5.5 * RATE) :]])
    for lo, hi in ((0.0, 0.5), (0.0, 6.0), (6.0, 12.5)):
        window = slice(int(lo * RATE), int(hi * RATE))
        assert np.corrcoef(audio[window], expected[window])[0, 1] > 0.85, (lo, hi)
    # The first half second is the killed capture's: the survivor had not answered yet.
    assert np.abs(audio[: RATE // 2].astype(np.int32)).mean() > 100

    assert verify(deps, survivor) == [] and verify(deps, killed) == []
    recordings.write(b, copy[:-100] + bytes(100))
    assert "pair.access_copy.altered" in verify(deps, survivor)
    assert "pair.access_copy.altered" not in verify(deps, killed)


def test_another_policy_user_in_the_same_call_is_another_pair(deps: LifecycleDeps) -> None:
    activities.receive_event(deps, leg(f"rec-{uuid.uuid4().hex[:8]}", "recorder-1"))
    activities.receive_event(deps, leg(f"rec-{uuid.uuid4().hex[:8]}", "recorder-2", user="u-sales"))
    pairs = deps.pairs
    assert isinstance(pairs, InMemoryPairStore)
    assert len(pairs.docs) == 2 and all(len(p.members) == 1 for _, p in pairs.docs.values())


def test_an_event_folded_twice_leaves_one_member(deps: LifecycleDeps) -> None:
    event = leg(f"rec-{uuid.uuid4().hex[:8]}", "recorder-1")
    record_event(deps.store, event)
    activities.receive_event(deps, event)
    activities.receive_event(deps, event)
    pairs = deps.pairs
    assert isinstance(pairs, InMemoryPairStore)
    (pair,) = [p for _, p in pairs.docs.values()]
    assert len(pair.members) == 1


# --- the Cosmos adapter ---------------------------------------------------------------------------------------


@pytest.fixture
def cosmos_pairs(cosmos_service: Cosmos) -> Iterator[CosmosPairStore]:
    ssl = SSLConfiguration()
    ssl.SSLCaCerts = str(cosmos_service.ca_cert)
    client = CosmosClient(cosmos_service.endpoint, credential=cosmos_service.key, ssl_config=ssl)
    name = f"pairs{uuid.uuid4().hex[:8]}"
    database = client.create_database_if_not_exists(name)
    yield CosmosPairStore(database.create_container_if_not_exists("recording_pairs", PartitionKey("/id")))
    client.delete_database(name)


@pytest.mark.integration
def test_the_cosmos_pair_store_folds_concurrent_members_into_one_document(cosmos_pairs: CosmosPairStore) -> None:
    a = member("rec-a", "recorder-1", (0.0, 8.0, True))
    b = member("rec-b", "recorder-2", (0.0, 20.0, False))

    def fold(update: PairMember) -> RecordingPair:
        return cosmos_pairs.update(KEY.id, lambda pair: join(pair, KEY, update))

    # at the same time, as the two members' activities (and a retry) do: the etag check makes them take turns
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(fold, [a, b, a, b, a, b]))
    stored = cosmos_pairs.get(KEY.id)
    assert stored is not None and stored.complete and stored.union_seconds == 20.0
    assert [m.recording_id for m in stored.members] == ["rec-a", "rec-b"]
