"""Finalise against Azurite with real FLAC evidence: commit or check the staged blocks, re-hash, decode."""

from __future__ import annotations

import hashlib

from azure.storage.blob import BlobBlock, ContainerClient

from devstack.testkit.captures import RATE, speech, stage_capture
from tests.lifecycle.transport import CapturingTransport
from verbatim.evidence.blocks import BlockId
from verbatim.evidence.finalise import finalise
from verbatim.platform.blobs import AzureBlobStore


def test_a_committed_capture_is_verified_block_by_block_and_measured_by_decoding(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    staged = stage_capture(container, "rec-ok", speech(9.5))

    [track] = finalise(
        AzureBlobStore(container), AzureBlobStore(container), staged.manifest, recording_id=staged.manifest.recording_id
    )

    assert track.problems == []
    assert track.sha256 == hashlib.sha256(staged.data).hexdigest()
    assert track.bytes == len(staged.data)
    assert track.samples == int(9.5 * RATE)
    assert track.duration_seconds == 9.5
    assert [b.sha256 for b in track.blocks] == [hashlib.sha256(b).hexdigest() for b, _, _ in staged.blocks]


def test_blocks_the_recorder_staged_but_never_committed_are_committed_by_finalise(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    staged = stage_capture(container, "rec-uncommitted", speech(6), commit=False)
    blob = container.get_blob_client(staged.evidence_blob)
    assert blob.get_block_list("committed")[0] == []

    [track] = finalise(
        AzureBlobStore(container), AzureBlobStore(container), staged.manifest, recording_id=staged.manifest.recording_id
    )

    assert [b.id for b in blob.get_block_list("committed")[0]] == [b.block_id for b in staged.manifest.tracks[0].blocks]
    assert track.problems == []
    assert blob.download_blob().readall() == staged.data


def test_a_block_that_differs_from_what_the_recorder_hashed_is_recorded_as_a_problem(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    staged = stage_capture(container, "rec-bad", speech(6), commit=False)
    blob = container.get_blob_client(staged.evidence_blob)
    # Block 1 is re-staged under its id with one byte flipped (a storage or transfer fault).
    block_id = staged.manifest.tracks[0].blocks[1].block_id
    corrupted = bytearray(staged.blocks[1][0])
    corrupted[100] ^= 0xFF
    blob.stage_block(block_id, bytes(corrupted))

    [track] = finalise(
        AzureBlobStore(container), AzureBlobStore(container), staged.manifest, recording_id=staged.manifest.recording_id
    )

    assert any(p.startswith("block 1 (bytes") for p in track.problems)
    assert any("SHA-256 of the stored object" in p for p in track.problems)
    assert track.sha256 != staged.manifest.tracks[0].sha256


def test_a_committed_list_that_misses_blocks_is_reported_not_repaired(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> None:
    container, _ = recordings
    staged = stage_capture(container, "rec-short", speech(6), commit=False)
    blocks = staged.manifest.tracks[0].blocks
    container.get_blob_client(staged.evidence_blob).commit_block_list([BlobBlock(b.block_id) for b in blocks[:-1]])

    [track] = finalise(
        AzureBlobStore(container), AzureBlobStore(container), staged.manifest, recording_id=staged.manifest.recording_id
    )

    assert any("differs from the capture manifest" in p for p in track.problems)
    assert BlockId.for_content(0, staged.blocks[0][0]).encode() == blocks[0].block_id
