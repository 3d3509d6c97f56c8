"""The sweep's query on the Cosmos emulator: the sealed parts whose access copies are still pending, sealed before
a time (a JOIN over each record's `seal.parts`, compared with the stored ISO 8601 times)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import RecordingRecord, SealedPartIndex, SealIndex
from verbatim.lifecycle.access_requests import CosmosPendingAccessCopies
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.platform import clients, layout
from verbatim.platform.settings import Settings

pytestmark = pytest.mark.integration


def sealed_record(recording_id: str, sealed_at: datetime, *, pending: bool, status: str = "sealed") -> RecordingRecord:
    part = SealedPartIndex(
        part=0,
        manifest_blob=f"{recording_id}/manifest.json",
        manifest_sha256="0" * 64,
        ledger_seq=1,
        duration_seconds=6.0,
        interrupted=False,
        sealed_at=sealed_at,
        access_pending=pending,
    )
    seal = SealIndex.model_validate(
        {
            "manifest_blob": part.manifest_blob,
            "manifest_sha256": part.manifest_sha256,
            "ledger_seq": 1,
            "evidence_blob": f"{recording_id}/audio.flac",
            "evidence_sha256": "1" * 64,
            "duration_seconds": 6.0,
            "interrupted": False,
            "retention_class": "mifid2",
            "retention_until": (sealed_at + timedelta(days=1827)).isoformat(),
            "legal_holds": [],
            "worm": "emulator-not-enforced",
            "sealed_at": sealed_at.isoformat(),
            "parts": [part.model_dump(mode="json")],
        }
    )
    return RecordingRecord.model_validate(
        {
            "id": recording_id,
            "status": status,
            "facts": RecordingFacts(recording_id=recording_id, call_id=recording_id, recorder_instance="recorder-0"),
            "seal": seal,
        }
    )


def test_only_parts_pending_since_before_the_threshold_are_found(stack_env: Settings) -> None:
    container = clients.cosmos_database(stack_env).get_container_client(layout.RECORDINGS)
    store = CosmosRecordingStore(container)
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    old, recent, done, deleting, recording = (
        f"rec-{tag}-{n}" for n in ("old", "recent", "done", "deleting", "recording")
    )
    for record in (
        sealed_record(old, now - timedelta(minutes=45), pending=True),
        sealed_record(recent, now - timedelta(minutes=5), pending=True),
        sealed_record(done, now - timedelta(minutes=45), pending=False),
        sealed_record(deleting, now - timedelta(minutes=45), pending=True, status="deleting"),
        # Not sealed yet (`seal: null`), as most records are while calls flow: the JOIN leaves it out. Before the
        # emulator's JOIN was made to skip it (devstack/cosmos/join-missing-arrays.js) the whole query failed
        # ("Cannot read properties of null (reading 'parts')"): chaos seed 1 at 16:18, every sweep of the run.
        RecordingRecord.model_validate(
            {
                "id": recording,
                "status": "capturing",
                "facts": RecordingFacts(recording_id=recording, call_id=recording, recorder_instance="recorder-0"),
            }
        ),
    ):
        store.update(record.id, lambda _, r=record: r)

    found = CosmosPendingAccessCopies(container).pending(now - timedelta(minutes=30))

    mine = sorted((p.recording_id, p.part) for p in found if p.recording_id.startswith(f"rec-{tag}-"))
    assert mine == [(old, 0)]
    (part,) = [p for p in found if p.recording_id == old]
    assert abs((part.sealed_at - (now - timedelta(minutes=45))).total_seconds()) < 1
