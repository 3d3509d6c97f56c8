"""A small recorded world in the real emulators, for the API, portal and reconciliation integration tests:
a recording captured, finalised, transcoded and sealed by the lifecycle's own activities (real FLAC and Opus
in Azurite, a real ledger in Cosmos), synthetic recording records around it, call records, policy
snapshots, reconciliation run over all of it, a signed checkpoint and a completeness report."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from devstack.testkit.captures import speech, stage_capture, stage_dominant_speakers, stage_speaker, stage_video
from devstack.testkit.records import CLIENT, SALES, T0, TRADER, UPNS, call, party, phone, recording, snapshot
from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import FinalisedRecording
from verbatim.contracts.recorder import CallParticipant, Identity, ObservedUser, RecordingStarted, RecordingStopped
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name
from verbatim.lifecycle import activities
from verbatim.lifecycle.records import record_event
from verbatim.platform import clients
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore
from verbatim.wiring import container_for

PSTN = "+41445550100"


@dataclass
class SealedCall:
    recording_id: str
    call_id: str
    seconds: float
    access_bytes: bytes = b""
    evidence_bytes: bytes = b""
    video_bytes: bytes = b""
    finalised: FinalisedRecording | None = None  # until its access copies are sealed


@dataclass
class World:
    settings: Settings
    sealed: SealedCall | None = None
    synthetic: list[str] = field(default_factory=list)
    missing_call: str = ""
    report_blob: str = ""


def seal_recording(
    settings: Settings,
    *,
    user: str = TRADER,
    seconds: float = 6.0,
    started_at=T0,  # type: ignore[no-untyped-def]
    phone_number: str | None = PSTN,
    video: bool = False,
    cameras: Sequence[tuple[int, str | None, float, float]] = (),
    chain: str | None = None,
    instance: str = "recorder-0",
    speakers: Mapping[str, tuple[int, npt.NDArray[np.int16]]] | None = None,
    access_copy: bool = True,
    dominant: Sequence[tuple[float, str | None]] = (),
) -> SealedCall:
    """What the recorder and the lifecycle do for one call, through their own code. `video`: a screen share
    (source 30001); `cameras`: (source id, participant id, start, end) of each camera stream; `speakers`: the
    participants (`p1`, `p2`) that have a track of their own (unmixed audio), with its source id and samples. Two
    recordings of the same `chain` and user by different `instance`s are a pair (2N recording), sealed as one when
    the second is. `access_copy=False`: stop after the evidence seal, before the access copies are made and sealed.
    `dominant`: the platform's dominant-speaker changes in mixed audio, (seconds, participant id or None for
    nobody); `p1`'s audio source is 50001, `p2`'s 50002."""
    deps = container_for(settings).lifecycle
    deps.chunk_seconds = 4
    recording_id = f"rec-{uuid.uuid4().hex[:10]}"
    chain = chain or f"call-{uuid.uuid4().hex[:10]}"
    staged = stage_capture(deps.staging, recording_id, speech(seconds), started_at=started_at)
    if video:  # a screen share for most of the call (docs/video.md)
        staged = stage_video(deps.staging, staged, start=1.0, end=seconds - 1.0)
    for source_id, participant_id, start, end in cameras:
        staged = stage_video(
            deps.staging,
            staged,
            kind="camera",
            source_id=source_id,
            participant_id=participant_id,
            start=start,
            end=end,
        )
    speakers = speakers or {}
    for source_id, pcm in speakers.values():
        staged = stage_speaker(deps.staging, staged, source_id, pcm)
    sources = {participant: [source_id] for participant, (source_id, _) in speakers.items()}
    if dominant:
        mixed_sources = {"p1": 50_001, "p2": 50_002}
        for participant, source_id in mixed_sources.items():
            sources.setdefault(participant, []).append(source_id)
        changes = [(at, None if who is None else mixed_sources[who]) for at, who in dominant]
        staged = stage_dominant_speakers(deps.staging, staged, changes)
    prefix = capture_prefix(recording_id, 0)
    participants = [
        CallParticipant(
            participant_id="p1",
            identity=Identity(kind="user", id=user, display_name="Tom Trader", upn=UPNS[user]),
            source_ids=sources.get("p1", []),
        ),
    ]
    if phone_number:
        participants.append(
            CallParticipant(
                participant_id="p2",
                identity=Identity(kind="phone", id=phone_number),
                phone_number=phone_number,
                source_ids=sources.get("p2", []),
            )
        )
    common = {"recording_id": recording_id, "call_id": f"leg-{recording_id}", "recorder_instance": instance}
    record_event(
        deps.store,
        RecordingStarted(
            **common,
            event_id=uuid.uuid4().hex,
            occurred_at=started_at,
            sequence=0,
            call_chain_id=chain,
            tenant_id="tenant-1",
            observed_user=ObservedUser(id=user, upn=UPNS[user], display_name="Tom Trader"),
            participants=participants,
            direction="outbound",
            call_type="peerToPeer",
            phone_numbers=[phone_number] if phone_number else [],
            recorder_app_id="app-recorder",
            recorder_version="1.0.0",
            started_at=started_at,
            blob_container=settings.captures_container,
            blob_name=track_blob_name(prefix),
            manifest_blob_name=manifest_blob_name(prefix),
            heartbeat_interval_seconds=5.0,
        ),
    )
    record_event(
        deps.store,
        RecordingStopped(
            **common,
            event_id=uuid.uuid4().hex,
            occurred_at=started_at + timedelta(seconds=seconds),
            sequence=1,
            reason="call_ended",
            ended_at=started_at + timedelta(seconds=seconds),
            blob_container=settings.captures_container,
            blob_name=track_blob_name(prefix),
            manifest_blob_name=manifest_blob_name(prefix),
            duration_seconds=seconds,
            bytes=0,
            block_count=0,
            sha256=staged.manifest.tracks[0].sha256,
        ),
    )
    # As recording_lifecycle: the evidence sealed and indexed first, the access copies made and sealed after it.
    finalised = activities.finalise_recording(deps, recording_id)
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, None)
    activities.index_recording(deps, summary, finalised.problems)
    sealed = SealedCall(
        recording_id=recording_id,
        call_id=chain,
        seconds=seconds,
        evidence_bytes=deps.recordings.read(summary.seal.evidence_blob),
        finalised=finalised,
    )
    if access_copy:
        seal_access_copy(settings, sealed)
    return sealed


def seal_access_copy(settings: Settings, sealed: SealedCall) -> None:
    """The second half of the lifecycle: make the access copies of a recording whose evidence is sealed, seal
    them in their own right, clean up."""
    deps = container_for(settings).lifecycle
    deps.chunk_seconds = 4
    recording_id = sealed.recording_id
    finalised = sealed.finalised
    assert finalised is not None
    tasks = activities.plan_access_copy(deps, finalised)
    names = [activities.encode_access_chunk(deps, task) for task in tasks]
    access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, names) if tasks else None
    activities.seal_access_copy(deps, recording_id, finalised.finalised_blob, access)
    activities.clean_up(deps, recording_id)
    record = deps.store.get(recording_id)
    assert record is not None and record.seal is not None
    media = deps.recordings
    seal = record.seal
    sealed.access_bytes = media.read(seal.access_copy_blob) if seal.access_copy_blob else b""
    sealed.video_bytes = media.read(seal.video_access_copy_blob) if seal.video_access_copy_blob else b""


def build_world(settings: Settings, synthetic: int = 6) -> World:
    world = World(settings)
    runtime = container_for(settings).reconciliation
    database = container_for(settings).database
    snapshots = CosmosPolicySnapshotStore(database.get_container_client("policy_snapshots"))
    for user in (TRADER, SALES):
        snapshots.add(snapshot(user))
    snapshots.add(snapshot(CLIENT, records=False))  # the audit observes every user of the tenant

    sealed = seal_recording(settings)
    world.sealed = sealed
    calls = runtime.reconciler.calls
    calls.save_if_newer(
        call(sealed.call_id, [party(TRADER), phone(PSTN)], seconds=sealed.seconds), {"id": sealed.call_id}
    )

    # Recording records as the lifecycle leaves them (no media): a day of calls of the sales user.
    recordings = database.get_container_client("recordings")
    for n in range(synthetic):
        start = T0 + timedelta(hours=1, minutes=10 * n)
        chain = f"syn-call-{n}"
        record = recording(
            f"syn-{n}",
            chain,
            SALES,
            start=start,
            seconds=60 if n % 3 else 30,
            interrupted=n % 3 == 0,
            direction="inbound" if n % 2 else "outbound",
            call_type="groupCall" if n == 5 else "peerToPeer",
        )
        recordings.upsert_item(record.model_dump(mode="json"))
        calls.save_if_newer(call(chain, [party(SALES), party(CLIENT)], start=start), {"id": chain})
        world.synthetic.append(record.id)
    world.missing_call = "call-nobody-recorded"
    calls.save_if_newer(call(world.missing_call, [party(SALES), party(CLIENT)], start=T0 + timedelta(hours=5)), {})

    for call_id in (sealed.call_id, *(f"syn-call-{n}" for n in range(synthetic)), world.missing_call):
        runtime.reconciler.reconcile_call(call_id)
    runtime.ledger.checkpoint()
    world.report_blob = runtime.reporter.run(T0.date(), actor="test-admin").blob
    return world


def blob_bytes(settings: Settings, container: str, name: str) -> bytes:
    service = clients.blob_service(settings.recordings_storage_connection)
    return service.get_container_client(container).download_blob(name).readall()


__all__ = ["PSTN", "RecordingFacts", "World", "blob_bytes", "build_world", "seal_recording"]
