"""A retention test world in the session's emulators: recordings sealed by the lifecycle's own activities (real
FLAC evidence, optional Opus access copy, manifest, ledger), the retention services on a simulated clock, and
the recordings container reached through a request-capturing transport (the WORM requests Azurite answers
with 501 are asserted there)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlparse

from azure.core.pipeline.transport import HttpRequest

from devstack.testkit.captures import speech, stage_capture
from tests.lifecycle.transport import CapturingTransport, capturing_container
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.policy import EffectivePolicy, PolicySnapshot
from verbatim.contracts.recorder import (
    CallParticipant,
    Identity,
    ObservedUser,
    RecordingStarted,
    RecordingStopped,
)
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name
from verbatim.evidence.names import sealed_folder
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import record_event
from verbatim.platform import clients
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore, snapshot_id
from verbatim.wiring import Container
from verbatim.wiring.retention import RetentionServices

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
# Retention classes of the tests (RETENTION_CLASSES); "default" keeps the built-in 1827 days.
CLASSES = [
    {"name": "cftc-oral", "days": 30, "legal_basis": "CFTC Rule 1.35(a) (shortened for the tests)"},
    {"name": "mifid2-extended", "days": 2557, "legal_basis": "MiFID II Art 16(7): seven years on request"},
]
TRADER = ("u-trader", "trader@contoso.com")
SALES = ("u-sales", "sales@contoso.com")
CLIENT_PHONE = "+442071234567"


class SimClock:
    """The simulated time every retention service reads."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


@dataclass
class RetentionWorld:
    settings: Settings
    clock: SimClock
    runtime: RetentionServices
    transport: CapturingTransport
    deps: LifecycleDeps
    container: Container
    sealed: list[str] = field(default_factory=list)

    def assign_class(self, user_id: str, retention_class: str, *, group_id: str | None = None) -> None:
        """What the policy coverage audit records: the user's effective policy (with its retention class)."""
        store = CosmosPolicySnapshotStore(
            clients.cosmos_database(self.settings).get_container_client("policy_snapshots")
        )
        since = T0 - timedelta(days=400)
        store.add(
            PolicySnapshot(
                id=snapshot_id(user_id, since),
                user_id=user_id,
                valid_from=since,
                effective=EffectivePolicy(
                    user_id=user_id,
                    policy_name="traders",
                    source="group" if group_id else "direct",
                    group_id=group_id,
                    records=True,
                    retention_class=retention_class,
                ),
            )
        )

    def seal(
        self,
        *,
        user: tuple[str, str] = TRADER,
        others: Sequence[CallParticipant] = (),
        started_at: datetime = T0,
        seconds: float = 2.0,
        access_copy: bool = False,
        call_chain_id: str | None = None,
        access_after: bool = False,
        between: Callable[[str], None] = lambda _: None,
        access_pending: bool = False,
        salvaged: bool = False,
    ) -> RecordingRecord:
        """A recording sealed by the lifecycle's activities: with `access_after`, exactly as the orchestration does
        it now (the access copy sealed after the evidence); with `access_pending`, the evidence sealed and indexed
        and the access copy left to the `access-copies` trigger (`activities.make_access_copy`); otherwise in one
        step, as recordings sealed before (recording manifest v1 with `access_copy`). With `salvaged`, the recorder
        died before it committed anything: the lifecycle salvages (fences and commits) generation 0, whose staged
        blocks then stay in the captures container (its recorder may not know yet that it was fenced)."""
        deps = self.deps
        recording_id = f"rec-{uuid.uuid4().hex[:10]}"
        staged = stage_capture(deps.staging, recording_id, speech(seconds), started_at=started_at, commit=not salvaged)
        if salvaged:
            assert deps.staging.delete(staged.capture_blob)  # killed: no capture manifest either
        prefix = capture_prefix(recording_id, 0)
        participants = [
            CallParticipant(participant_id="p1", identity=Identity(kind="user", id=user[0], upn=user[1])),
            *others,
        ]
        common = {"recording_id": recording_id, "call_id": f"leg-{recording_id}", "recorder_instance": "recorder-0"}
        names = {
            "blob_container": self.settings.captures_container,
            "blob_name": track_blob_name(prefix),
            "manifest_blob_name": manifest_blob_name(prefix),
        }
        record_event(
            deps.store,
            RecordingStarted(
                **common,
                **names,
                event_id=uuid.uuid4().hex,
                occurred_at=started_at,
                sequence=0,
                call_chain_id=call_chain_id or f"chain-{recording_id}",
                tenant_id="tenant-1",
                observed_user=ObservedUser(id=user[0], upn=user[1], display_name="Observed User"),
                participants=participants,
                direction="outbound",
                call_type="peerToPeer" if len(participants) < 3 else "groupCall",
                phone_numbers=[p.phone_number for p in participants if p.phone_number],
                recorder_app_id="app-recorder",
                recorder_version="1.0.0",
                started_at=started_at,
                heartbeat_interval_seconds=5.0,
            ),
        )
        if salvaged:
            activities.salvage(deps, recording_id, reason="the recorder instance is gone (test)")
        else:
            record_event(
                deps.store,
                RecordingStopped(
                    **common,
                    **names,
                    event_id=uuid.uuid4().hex,
                    occurred_at=started_at + timedelta(seconds=seconds),
                    sequence=1,
                    reason="call_ended",
                    ended_at=started_at + timedelta(seconds=seconds),
                    duration_seconds=seconds,
                    bytes=len(staged.data),
                    block_count=len(staged.blocks),
                    sha256=staged.manifest.tracks[0].sha256,
                ),
            )
        finalised = activities.finalise_recording(deps, recording_id)
        if access_pending:
            summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, None)
            activities.index_recording(deps, summary, finalised.problems)
            self.sealed.append(recording_id)
            return self.record(recording_id)
        if access_after:
            # As recording_lifecycle does now: the evidence sealed and indexed, then (after `between`, e.g. a hold
            # placed meanwhile) the access copy made and sealed in its own right.
            summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, None)
            activities.index_recording(deps, summary, finalised.problems)
            between(recording_id)
            tasks = activities.plan_access_copy(deps, finalised)
            chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
            access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks)
            activities.seal_access_copy(deps, recording_id, finalised.finalised_blob, access)
            activities.clean_up(deps, recording_id)
            self.sealed.append(recording_id)
            return self.record(recording_id)
        access = None
        if access_copy:
            tasks = activities.plan_access_copy(deps, finalised)
            chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
            access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks)
        summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access)
        record = activities.index_recording(deps, summary, finalised.problems)
        activities.clean_up(deps, recording_id)
        self.sealed.append(recording_id)
        return record

    def record(self, recording_id: str) -> RecordingRecord:
        found = self.runtime.recordings.read(recording_id)
        assert found is not None
        return found.record

    def blobs_of(self, recording_id: str) -> list[str]:
        folder = sealed_folder(recording_id)  # everything sealed of the recording (verbatim.evidence.names)
        return sorted(b.name for b in self.runtime.media.list_blobs(name_starts_with=folder))

    def worm_requests(self, recording_id: str) -> list[HttpRequest]:
        return [r for r in self.transport.worm_requests() if f"/{recording_id}/" in unquote(urlparse(r.url).path)]


def phone_participant(pid: str, number: str) -> CallParticipant:
    return CallParticipant(participant_id=pid, identity=Identity(kind="phone", id=number), phone_number=number)


def user_participant(pid: str, user_id: str, upn: str | None = None) -> CallParticipant:
    return CallParticipant(participant_id=pid, identity=Identity(kind="user", id=user_id, upn=upn))


def build_world(settings: Settings, clock: SimClock) -> RetentionWorld:
    media, transport = capturing_container(
        settings.recordings_storage_connection.connection_string.get_secret_value()  # type: ignore[union-attr]
    )
    # The WORM requests and deletes go through the capturing transport.
    container = Container(settings, clock=clock, recordings=media)
    deps = container.lifecycle
    deps.clock = clock
    deps.chunk_seconds = 4
    return RetentionWorld(settings, clock, container.retention, transport, deps, container)
