"""Issue 22's finding under load: a salvage raced the recorder's stop. The lifecycle salvaged the capture with
41 blocks; a 42nd was committed to the same blob afterwards; finalise kept the salvage's 41-block table while the
stored object (42 blocks) decoded to more samples, the access copy could not be made from the table (941,184 of
942,080 samples), and the recording never reached a verdict.

Fencing (issue 14) refuses a leased recorder's late writes, but the sealed block table must describe what is
stored whatever wrote it: finalise builds it from the object's committed block list, measured by decoding, and
says where it differs from the capture manifest. Run against Azurite and the Cosmos emulator, with the
lifecycle's own activities in the order the orchestration runs them."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import pytest
from azure.storage.blob import BlobBlock

from devstack.testkit.audio import decode
from devstack.testkit.captures import flac_blocks, speech, stage_capture
from tests.lifecycle.events import started, stopped
from verbatim.contracts.evidence import RecordingManifest
from verbatim.evidence import names
from verbatim.evidence.blocks import BlockId
from verbatim.evidence.verify import verify_recording
from verbatim.ledger.log.service import TransparencyLog
from verbatim.lifecycle import activities
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import record_event
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.settings import Settings, reload_settings
from verbatim.wiring import container_for


@pytest.fixture
def deps(stack_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LifecycleDeps:
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "ledger.pem"))
    monkeypatch.setenv("RECORDINGS_STORAGE_IS_EMULATOR", "true")
    built = container_for(reload_settings()).lifecycle
    built.chunk_seconds = 4
    return built


def run_to_seal(deps: LifecycleDeps, recording_id: str) -> None:
    """What recording_lifecycle does once the recorder stopped or was salvaged."""
    finalised = activities.finalise_recording(deps, recording_id)
    tasks = activities.plan_access_copy(deps, finalised)
    chunks = [activities.encode_access_chunk(deps, task) for task in tasks]
    access = activities.assemble_access_copy(deps, recording_id, finalised.finalised_blob, chunks)
    summary = activities.seal_recording(deps, recording_id, finalised.finalised_blob, access)
    activities.index_recording(deps, summary, finalised.problems)


def test_a_tail_block_committed_after_the_salvage_is_sealed_as_stored_and_the_recording_gets_a_verdict(
    deps: LifecycleDeps,
) -> None:
    recording_id = f"rec-{uuid.uuid4().hex[:8]}"
    pcm = speech(9.3)  # five 2-s blocks and a short tail block, as the repro's 41 + one of 896 samples
    blocks = flac_blocks(pcm)
    assert len(blocks) >= 3 and blocks[-1][2] < blocks[0][2]
    # The recorder staged every block but the tail and went quiet (no heartbeat): the lifecycle salvages.
    staged = stage_capture(deps.staging, recording_id, pcm, commit=False, blocks_range=(0, len(blocks) - 1))
    deps.staging.delete(staged.capture_blob)
    record_event(deps.store, started(recording_id))
    activities.salvage(deps, recording_id)
    salvaged = names.capture_track_name(recording_id, 0)
    assert isinstance(deps.staging, AzureBlobStore)
    blob = deps.staging.container.get_blob_client(salvaged)
    assert len(blob.get_block_list("committed")[0]) == len(blocks) - 1

    # Then the recorder's stop lands: its tail block is staged and the whole list committed to the blob the
    # salvage described (a write the fence did not stop: the repro's recorder held no lease).
    tail, _, tail_samples = blocks[-1]
    tail_id = BlockId.for_content(len(blocks) - 1, tail).encode()
    blob.stage_block(tail_id, tail)
    blob.commit_block_list([*(BlobBlock(b.block_id) for b in staged.manifest.tracks[0].blocks), BlobBlock(tail_id)])
    stored = blob.download_blob().readall()
    assert stored == b"".join(data for data, _, _ in blocks)
    record_event(deps.store, stopped(recording_id, hashlib.sha256(stored).hexdigest(), len(pcm) / 16000))

    run_to_seal(deps, recording_id)

    record = deps.store.get(recording_id)
    assert record is not None and record.status == "sealed" and record.seal is not None
    manifest = RecordingManifest.model_validate_json(deps.recordings.read(record.seal.manifest_blob))
    [track] = manifest.evidence
    # What is sealed is what is stored: every block of it, the table covering every sample the object holds.
    assert track.sha256 == hashlib.sha256(stored).hexdigest() and track.bytes == len(stored)
    assert track.samples == len(pcm) == sum(b.samples for b in track.blocks)
    assert [b.block_id for b in track.blocks] == [*(b.block_id for b in staged.manifest.tracks[0].blocks), tail_id]
    assert [(b.start_sample, b.samples) for b in track.blocks] == [(s, n) for _, s, n in blocks]
    assert track.blocks[-1].samples == tail_samples
    assert [b.byte_offset for b in track.blocks] == list(np.cumsum([0, *(len(d) for d, _, _ in blocks[:-1])]))
    # ... and the difference from the salvage's own description is written down with it.
    assert any("differs from the capture manifest" in p for p in track.problems), track.problems
    assert manifest.access_copy is not None and manifest.access_copy.duration_seconds == len(pcm) / 16000
    sealed_audio = decode(deps.recordings.read(track.blob_name, version_id=track.version_id))
    assert np.array_equal(sealed_audio, pcm)
    ledger = deps.ledger
    assert isinstance(ledger, TransparencyLog)
    ledger.checkpoint()
    result = verify_recording(recording_id, deps.recordings, ledger)
    assert result.ok, result.findings
