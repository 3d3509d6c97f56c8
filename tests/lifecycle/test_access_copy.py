"""The Opus access copy: chunked transcoding from staged FLAC blocks into one valid Ogg Opus stream."""

from __future__ import annotations

import io
import shutil
import subprocess

import av
import numpy as np
import pytest
from azure.storage.blob import ContainerClient

from devstack.testkit.captures import RATE, speech, stage_capture
from tests.lifecycle.transport import CapturingTransport
from verbatim.contracts.evidence import EvidenceTrack
from verbatim.evidence.access_copy import (
    EVIDENCE_TAG,
    assemble_access_copy,
    discard_access_chunks,
    encode_access_chunk,
    plan_access_copy,
    read_samples,
)
from verbatim.evidence.finalise import finalise
from verbatim.evidence.kinds import ACCESS_COPY, EVIDENCE, KIND_TAG
from verbatim.evidence.ogg import InvalidOgg, read_ogg_opus
from verbatim.platform.blobs import AzureBlobStore

MAX_BYTES_PER_HOUR = 12_000_000


def decode_to_16k(ogg: bytes) -> np.ndarray:
    with av.open(io.BytesIO(ogg)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)


def make_access_copy(
    container: ContainerClient, scratch: ContainerClient, recording_id: str, track: EvidenceTrack, chunk_seconds: int
) -> tuple[bytes, int]:
    plans = plan_access_copy(track, chunk_seconds)
    scratch_store = AzureBlobStore(scratch)
    names = [encode_access_chunk(AzureBlobStore(container), scratch_store, recording_id, track, plan) for plan in plans]
    copy = assemble_access_copy(AzureBlobStore(container), scratch_store, recording_id, track, names)
    data = container.download_blob(copy.blob_name).readall()
    assert copy.source_sha256 == track.sha256
    assert copy.bytes == len(data)
    return data, len(plans)


@pytest.fixture
def evidence(
    recordings: tuple[ContainerClient, CapturingTransport],
) -> tuple[ContainerClient, EvidenceTrack, np.ndarray]:
    container, _ = recordings
    pcm = speech(25.3)
    staged = stage_capture(container, "rec-ac", pcm)
    [track] = finalise(
        AzureBlobStore(container), AzureBlobStore(container), staged.manifest, recording_id=staged.manifest.recording_id
    )
    return container, track, pcm


def test_a_sample_range_is_read_from_only_the_blocks_that_hold_it(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray],
) -> None:
    container, track, pcm = evidence

    middle = read_samples(AzureBlobStore(container), track, 70_000, 150_000)

    assert np.array_equal(middle, pcm[70_000:150_000])  # FLAC is lossless: bit-exact


def test_chunks_join_into_one_valid_ogg_opus_stream_of_the_exact_duration(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray], scratch: ContainerClient
) -> None:
    container, track, pcm = evidence

    data, chunk_count = make_access_copy(container, scratch, "rec-ac", track, chunk_seconds=6)

    assert chunk_count == 5
    stream = read_ogg_opus(data)  # CRCs, one logical stream, BOS/EOS, page sequence
    assert stream.comments[EVIDENCE_TAG] == track.sha256
    assert stream.input_sample_rate == RATE
    assert stream.duration_samples_48k == len(pcm) * 3
    decoded = decode_to_16k(data)
    assert abs(len(decoded) - len(pcm)) <= 1
    n = min(len(decoded), len(pcm))
    # Lossy, but the same speech in the same place: high correlation overall and around every chunk joint.
    assert np.corrcoef(decoded[:n], pcm[:n])[0, 1] > 0.85
    for joint in range(6 * RATE, n - RATE // 4, 6 * RATE):
        window = slice(joint - RATE // 4, joint + RATE // 4)
        assert np.corrcoef(decoded[window], pcm[window])[0, 1] > 0.7, f"joint at {joint / RATE} s"
    assert len(data) / (len(pcm) / RATE) * 3600 < MAX_BYTES_PER_HOUR
    assert discard_access_chunks(AzureBlobStore(scratch), "rec-ac") == 5


def test_the_chunked_copy_matches_a_single_pass_encode_closely(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray], scratch: ContainerClient
) -> None:
    container, track, _ = evidence
    chunked, _ = make_access_copy(container, scratch, "rec-ac", track, chunk_seconds=5)
    # Another recording id: a sealed name (the access copy of rec-ac) is written once.
    single, count = make_access_copy(container, scratch, "rec-ac-single", track, chunk_seconds=3600)

    assert count == 1
    a, b = decode_to_16k(chunked), decode_to_16k(single)
    assert len(a) == len(b)
    assert np.corrcoef(a, b)[0, 1] > 0.97


@pytest.mark.skipif(shutil.which("opusinfo") is None, reason="opus-tools not installed")
def test_opusinfo_accepts_the_access_copy(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray], scratch: ContainerClient, tmp_path: object
) -> None:
    container, track, _ = evidence
    data, _ = make_access_copy(container, scratch, "rec-ac", track, chunk_seconds=7)
    path = f"{tmp_path}/access.opus"
    with open(path, "wb") as file:
        file.write(data)

    result = subprocess.run(["opusinfo", path], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout and "ERROR" not in result.stdout
    assert "Playback length: 0m:25.3" in result.stdout


def test_a_damaged_page_is_refused_by_the_reader(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray], scratch: ContainerClient
) -> None:
    container, track, _ = evidence
    data, _ = make_access_copy(container, scratch, "rec-ac", track, chunk_seconds=10)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01

    with pytest.raises(InvalidOgg, match="CRC"):
        read_ogg_opus(bytes(damaged))


def test_evidence_and_access_copy_carry_the_kind_tag_the_tiering_rules_match(
    evidence: tuple[ContainerClient, EvidenceTrack, np.ndarray], scratch: ContainerClient
) -> None:
    container, track, _ = evidence
    plans = plan_access_copy(track, 10)
    store, scratch_store = AzureBlobStore(container), AzureBlobStore(scratch)
    names = [encode_access_chunk(store, scratch_store, "rec-ac", track, plan) for plan in plans]
    copy = assemble_access_copy(store, scratch_store, "rec-ac", track, names)

    assert container.get_blob_client(track.blob_name).get_blob_tags() == {KIND_TAG: EVIDENCE}
    assert container.get_blob_client(copy.blob_name).get_blob_tags() == {KIND_TAG: ACCESS_COPY}
